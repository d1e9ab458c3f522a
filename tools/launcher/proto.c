/* proto.c - the launcher's control protocol: see proto.h. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_add(struct sbuf *b, const void *data, size_t len)
{
    if (b->err)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->err = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

void sb_free(struct sbuf *b)
{
    free(b->p);
    *b = (struct sbuf){ 0 };
}

int proto_split(char *msg, size_t len, char **words, int max)
{
    if (!len || msg[len - 1] != '\0')
        return -1;
    int n = 0;
    for (size_t i = 0; i < len; i += strlen(msg + i) + 1) {
        if (n == max)
            return -1;
        words[n++] = msg + i;
    }
    return n;
}

bool proto_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > PROTO_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789._-+", s[i]))
            return false;
    return true;
}

void proto_value(struct sbuf *b, const char *key, const char *value)
{
    sb_printf(b, "%s ", key);
    for (const char *c = value; *c; c++) {
        char ch = (unsigned char)*c < 32 || *c == 127 ? '?' : *c;
        sb_add(b, &ch, 1);
    }
    sb_add(b, "\n", 1);
}

const char *proto_get(const char *record, const char *key, unsigned nth,
                      char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *line = record; *line && *line != '\n';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen && !strncmp(line, key, klen) && line[klen] == ' ' &&
            nth-- == 0) {
            size_t vlen = len - klen - 1;
            if (vlen >= size)
                vlen = size - 1;
            memcpy(out, line + klen + 1, vlen);
            out[vlen] = '\0';
            return out;
        }
        line += len + (end != NULL);
    }
    return NULL;
}
