/*
 * out.c - one way to print results, two forms: "key: value" lines for
 * people (nesting by indentation, list items with "- ") or a JSON object
 * for scripts. Decoders call it and never care which.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsitool.h"

#define DEPTH_MAX 8

static struct {
    bool json;
    bool begun;                  /* something printed: the object is open */
    int depth;                   /* open objects and lists, the root one */
    bool list[DEPTH_MAX];        /* frame is a list */
    unsigned count[DEPTH_MAX];   /* members printed in frame */
} out;

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Start a member: its separator and key in JSON; the indent, the list
 * dash and the key in text, then ": " before a value or a line end before
 * what nests under it. */
static void member(const char *key, bool scalar)
{
    if (!out.begun && out.json)
        putchar('{');
    out.begun = true;
    int d = out.depth - 1;
    unsigned n = out.count[d]++;
    if (out.json) {
        printf("%s", n ? ", " : "");
        if (key) {
            json_string(key);
            printf(": ");
        }
        return;
    }
    /* An object in a list shows as its fields, the first one dashed. */
    bool in_item = d > 0 && out.list[d - 1] && !out.list[d];
    int indent = in_item ? d - 1 : d;
    printf("%*s%s", 2 * indent, "", !key || (in_item && n == 0) ? "- "
                                    : in_item ? "  " : "");
    for (const char *k = key; k && *k; k++)
        putchar(*k == '_' ? ' ' : *k);
    printf(key ? scalar ? ": " : ":\n" : "");
}

/* Nothing is printed until the first member: a command refused before
 * it printed anything leaves standard output empty. */
void out_begin(bool json)
{
    out.json = json;
    out.begun = false;
    out.depth = 1;
    out.list[0] = false;
    out.count[0] = 0;
}

void out_end(void)
{
    while (out.depth > 1)
        out_close();
    if (out.json && out.begun)
        printf("}\n");
    fflush(stdout);
}

void out_str(const char *key, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    member(key, true);
    if (out.json)
        json_string(buf);
    else
        printf("%s\n", buf);
}

void out_u64(const char *key, uint64_t value)
{
    member(key, true);
    printf(out.json ? "%llu" : "%llu\n", (unsigned long long)value);
}

void out_bool(const char *key, bool value)
{
    member(key, true);
    printf(out.json ? "%s" : "%s\n", value ? "true" : "false");
}

/* JSON: one hex string. Text: up to 16 bytes on the line, more as a dump
 * with offsets and the printable characters. */
void out_hex(const char *key, const uint8_t *data, size_t len)
{
    bool one_line = out.json || len <= 16;
    member(key, one_line);
    if (one_line) {
        printf(out.json ? "\"" : "");
        for (size_t i = 0; i < len; i++)
            printf(out.json ? "%02x" : i ? " %02x" : "%02x", data[i]);
        printf(out.json ? "\"" : "\n");
        return;
    }
    bool starred = false;
    for (size_t off = 0; off < len; off += 16) {
        size_t n = len - off < 16 ? len - off : 16;
        /* Lines like the one before but the last: one "*", as hexdump -C
         * prints them. */
        if (off && n == 16 && off + 16 < len &&
            !memcmp(data + off, data + off - 16, 16)) {
            if (!starred)
                printf("%*s*\n", 2 * out.depth, "");
            starred = true;
            continue;
        }
        starred = false;
        printf("%*s%08zx ", 2 * out.depth, "", off);
        for (size_t i = 0; i < 16; i++)
            i < n ? printf(" %02x", data[off + i]) : printf("   ");
        printf("  |");
        for (size_t i = 0; i < n; i++)
            putchar(isprint(data[off + i]) ? data[off + i] : '.');
        printf("|\n");
    }
}

void out_open(const char *key, bool list)
{
    if (out.depth == DEPTH_MAX)
        abort();                        /* the decoders nest at most 3 */
    if (out.json || key)
        member(key, false);
    else
        out.count[out.depth - 1]++;     /* its first field has the dash */
    if (out.json)
        putchar(list ? '[' : '{');
    out.list[out.depth] = list;
    out.count[out.depth] = 0;
    out.depth++;
}

void out_close(void)
{
    out.depth--;
    if (out.json)
        putchar(out.list[out.depth] ? ']' : '}');
}
