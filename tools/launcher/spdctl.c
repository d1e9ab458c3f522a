/* spdctl - start, stop, list, mount and eject Spd disks through
 * spd-launcherd (spdctl(1)). */
#include "spdctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "spd/version.h"

int ctl_request(const struct ctl *ctl, char **words, int n, struct sbuf *out)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    struct sbuf req = { 0 };
    static char buf[PROTO_REPLY_MAX + 4096];
    for (int k = 0; k < n; k++)
        sb_add(&req, words[k], strlen(words[k]) + 1);
    snprintf(a.sun_path, sizeof a.sun_path, "%s", ctl->socket);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    ssize_t len = -1;
    if (fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof a) &&
        !req.err && req.len <= PROTO_REQUEST_MAX &&
        send(fd, req.p, req.len, MSG_NOSIGNAL) == (ssize_t)req.len)
        len = recv(fd, buf, sizeof buf - 1, 0);
    int err = errno;
    if (fd >= 0)
        close(fd);
    sb_free(&req);
    if (len <= 0) {
        fprintf(stderr, "spdctl: %s: %s\n", ctl->socket,
                len == 0 ? "the launcher closed the connection"
                : err == ENOENT || err == ECONNREFUSED
                    ? "spd-launcherd is not running" : strerror(err));
        return 1;
    }
    buf[len] = '\0';
    if (!strncmp(buf, "ok\n", 3)) {
        sb_add(out, buf + 3, strlen(buf + 3));
        return 0;
    }
    char *msg = strchr(buf, '\n');
    fprintf(stderr, "spdctl: %s\n", msg ? msg + 1 : buf);
    return 1;
}

const char *ctl_next_record(const char *body, size_t *pos, char *out,
                            size_t size)
{
    const char *s = body + *pos, *end = strstr(s, "\n\n");
    if (!*s || !end)
        return NULL;
    size_t len = (size_t)(end - s) + 1;
    *pos += len + 1;
    if (len >= size)
        len = size - 1;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

void ctl_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 32)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* ------------------------------------------------------------------ */
/* Printing records                                                    */
/* ------------------------------------------------------------------ */

static bool is_list_key(const char *key)
{
    return !strcmp(key, "export") || !strcmp(key, "device");
}

static bool is_number_key(const char *key)
{
    return !strcmp(key, "pid") || !strcmp(key, "started") ||
           !strcmp(key, "uptime") || !strcmp(key, "arguments") ||
           !strcmp(key, "user");
}

static void json_key_values(const char *rec, const char *key)
{
    char value[4096];
    ctl_json_string(key);
    printf(": [");
    for (unsigned k = 0; proto_get(rec, key, k, value, sizeof value); k++) {
        printf(k ? ", " : "");
        ctl_json_string(value);
    }
    printf("]");
}

/* One record as a JSON object: "export" and "device" are lists (also
 * when empty), numbers are numbers. */
static void json_record(const char *rec)
{
    char key[64];
    bool lists = false;
    printf("{");
    for (const char *line = rec; *line; line = strchr(line, '\n') + 1) {
        size_t klen = strcspn(line, " \n");
        snprintf(key, sizeof key, "%.*s", (int)klen, line);
        const char *value = line + klen + (line[klen] == ' ');
        int vlen = (int)strcspn(value, "\n");
        if (is_list_key(key)) {
            lists = true;
            continue;
        }
        printf("%s", line == rec ? "" : ", ");
        ctl_json_string(key);
        if (is_number_key(key))
            printf(": %.*s", vlen, value);
        else {
            char v[4096];
            snprintf(v, sizeof v, "%.*s", vlen, value);
            printf(": ");
            ctl_json_string(v);
        }
    }
    if (lists || strstr(rec, "\nstate ")) {
        printf(", ");
        json_key_values(rec, "export");
        printf(", ");
        json_key_values(rec, "device");
    }
    printf("}");
}

static void print_json(const char *body, bool array)
{
    char rec[16384];
    size_t pos = 0;
    printf(array ? "[" : "");
    for (int k = 0; ctl_next_record(body, &pos, rec, sizeof rec); k++) {
        printf(k ? ",\n " : "");
        json_record(rec);
    }
    printf(array ? "]\n" : "\n");
}

static void print_info(const char *rec)
{
    for (const char *line = rec; *line; line = strchr(line, '\n') + 1) {
        int klen = (int)strcspn(line, " \n");
        const char *value = line + klen + (line[klen] == ' ');
        bool secs = !strncmp(line, "uptime ", 7);
        printf("%-11.*s %.*s%s\n", klen, line, (int)strcspn(value, "\n"),
               value, secs ? " s" : "");
    }
}

static void print_table_row(const char *rec)
{
    char class[80], name[80], state[32], pid[32], up[32], what[512];
    proto_get(rec, "class", 0, class, sizeof class);
    proto_get(rec, "name", 0, name, sizeof name);
    proto_get(rec, "state", 0, state, sizeof state);
    proto_get(rec, "pid", 0, pid, sizeof pid);
    if (!proto_get(rec, "uptime", 0, up, sizeof up))
        strcpy(up, "-");
    if (!proto_get(rec, "device", 0, what, sizeof what) &&
        !proto_get(rec, "export", 0, what, sizeof what) &&
        !proto_get(rec, "status", 0, what, sizeof what))
        strcpy(what, "-");
    printf("%-12s %-20s %-9s %-8s %-8s %s\n", class, name, state, pid, up,
           what);
}

static void print_classes_row(const char *rec)
{
    char class[80], exe[4096], allowed[8], persistent[8], err[1024];
    proto_get(rec, "class", 0, class, sizeof class);
    if (proto_get(rec, "error", 0, err, sizeof err)) {
        printf("%-16s (broken: %s)\n", class, err);
        return;
    }
    proto_get(rec, "executable", 0, exe, sizeof exe);
    proto_get(rec, "allowed", 0, allowed, sizeof allowed);
    proto_get(rec, "persistent", 0, persistent, sizeof persistent);
    printf("%-16s %-8s %-11s %s\n", class, allowed, persistent, exe);
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

static int simple(const struct ctl *ctl, char **words, int n,
                  const char *kind)
{
    struct sbuf body = { 0 };
    int r = ctl_request(ctl, words, n, &body);
    const char *b = body.p ? body.p : "";
    char rec[16384];
    size_t pos = 0;
    if (r)
        ;
    else if (ctl->json)
        print_json(b, !strcmp(kind, "list") || !strcmp(kind, "classes"));
    else if (!strcmp(kind, "list")) {
        printf("%-12s %-20s %-9s %-8s %-8s %s\n", "CLASS", "NAME", "STATE",
               "PID", "UPTIME", "DEVICE/EXPORT/STATUS");
        while (ctl_next_record(b, &pos, rec, sizeof rec))
            print_table_row(rec);
    } else if (!strcmp(kind, "classes")) {
        printf("%-16s %-8s %-11s %s\n", "CLASS", "ALLOWED", "PERSISTENT",
               "EXECUTABLE");
        while (ctl_next_record(b, &pos, rec, sizeof rec))
            print_classes_row(rec);
    } else if (!strcmp(kind, "info")) {
        if (ctl_next_record(b, &pos, rec, sizeof rec))
            print_info(rec);
    } else {
        fputs(b, stdout);   /* stop: what had happened, if anything */
    }
    sb_free(&body);
    return r;
}

static void usage(FILE *f)
{
    fputs("usage: spdctl [--socket PATH] [--json] COMMAND\n"
          "  start CLASS NAME [ARG...]   start an instance, wait until ready\n"
          "  stop [--force] CLASS NAME   stop it (refused while in use)\n"
          "  reload CLASS NAME           SIGHUP to it (reopen --debug-log, "
          "read --alua-file)\n"
          "  info CLASS NAME             pid, state, command, exports, device\n"
          "  list                        the instances you may see\n"
          "  classes                     the classes\n"
          "  mount IMAGE [--read-only] [--via fuse] [--mountpoint DIR]\n"
          "        [--no-mount] [--class CLASS]\n"
          "  eject IMAGE|DEVICE|MOUNTPOINT\n"
          "  doctor                      the kernel paths this machine has\n",
          f);
}

/* Options anywhere before "--"; the rest are the command's words. */
static int global_options(struct ctl *ctl, int *argc, char **argv)
{
    int out = 1;
    bool words_only = false;
    for (int k = 1; k < *argc; k++) {
        if (!words_only && !strcmp(argv[k], "--"))
            words_only = true;
        else if (!words_only && !strcmp(argv[k], "--json"))
            ctl->json = true;
        else if (!words_only && !strcmp(argv[k], "--socket") && k + 1 < *argc)
            ctl->socket = argv[++k];
        else if (!words_only && !strncmp(argv[k], "--socket=", 9))
            ctl->socket = argv[k] + 9;
        else if (!words_only && (!strcmp(argv[k], "--help") ||
                                 !strcmp(argv[k], "-h"))) {
            usage(stdout);
            exit(0);
        } else if (!words_only && !strcmp(argv[k], "--version")) {
            printf("spdctl %s\n", SPD_VERSION_STRING);
            exit(0);
        } else
            argv[out++] = argv[k];
    }
    *argc = out;
    return out < 2 ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct ctl ctl = { getenv("SPD_LAUNCHER_SOCKET"), false };
    if (!ctl.socket)
        ctl.socket = PROTO_SOCKET;
    if (global_options(&ctl, &argc, argv)) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    int n = argc - 1;
    char **w = argv + 1;
    bool force = n == 4 && !strcmp(cmd, "stop") && !strcmp(w[1], "--force");
    if (force) {
        char *words[] = { "stop", w[2], w[3], "force" };
        return simple(&ctl, words, 4, "stop");
    }
    if ((!strcmp(cmd, "start") && n >= 3) ||
        (!strcmp(cmd, "stop") && n == 3) || (!strcmp(cmd, "info") && n == 3))
        return simple(&ctl, w, n, !strcmp(cmd, "stop") ? "stop" : "info");
    if (!strcmp(cmd, "reload") && n == 3)
        return simple(&ctl, w, n, "reload");
    if ((!strcmp(cmd, "list") || !strcmp(cmd, "classes")) && n == 1)
        return simple(&ctl, w, n, cmd);
    if (!strcmp(cmd, "mount"))
        return cmd_mount(&ctl, n, w);
    if (!strcmp(cmd, "eject"))
        return cmd_eject(&ctl, n, w);
    if (!strcmp(cmd, "doctor") && n == 1)
        return cmd_doctor(&ctl);
    usage(stderr);
    return 2;
}
