/* class.c - launcher classes: parsing a class file, the permission check
 * and the command line of an instance. */
#include "class.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR(...) (snprintf(err, errsize, __VA_ARGS__), -1)

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A user name or number. */
static int user_id(const char *s, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(s);
    char *end;
    if (!pw) {
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (*s < '0' || *s > '9' || *end || errno || v > 0xfffffffeUL)
            return -1;
        pw = getpwuid((uid_t)v);
        *uid = (uid_t)v;
        *gid = pw ? pw->pw_gid : (gid_t)v;
        return 0;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

static int group_id(const char *s, gid_t *gid)
{
    struct group *gr = getgrnam(s);
    char *end;
    if (gr) {
        *gid = gr->gr_gid;
        return 0;
    }
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v > 0xfffffffeUL)
        return -1;
    *gid = (gid_t)v;
    return 0;
}

/* Split value into words (spaces and tabs) kept in c->storage. */
static int template_words(struct lclass *c, const char *value, char *err,
                          size_t errsize)
{
    if (strlen(value) >= sizeof c->storage)
        return ERR("arguments: too long");
    strcpy(c->storage, value);
    c->nwords = 0;
    for (char *save, *w = strtok_r(c->storage, " \t", &save); w;
         w = strtok_r(NULL, " \t", &save)) {
        if (c->nwords == CLASS_WORDS_MAX)
            return ERR("arguments: more than %d words", CLASS_WORDS_MAX);
        c->words[c->nwords++] = w;
        for (char *p = strchr(w, '%'); p; p = strchr(p + 2, '%')) {
            if (p[1] >= '1' && p[1] <= '9') {
                if (p[1] - '0' > c->nargs)
                    c->nargs = p[1] - '0';
            } else if (!p[1] || !strchr("ncr%", p[1])) {
                return ERR("arguments: unknown %%%c in '%s' (%%1..%%9, "
                           "%%n, %%c, %%r or %%%%)", p[1] ? p[1] : ' ', w);
            }
        }
    }
    return 0;
}

static int id_list(const char *value, bool groups, struct lclass *c,
                   char *err, size_t errsize)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", value);
    for (char *save, *w = strtok_r(copy, " \t,", &save); w;
         w = strtok_r(NULL, " \t,", &save)) {
        int *n = groups ? &c->ngroups : &c->nusers;
        uid_t uid;
        gid_t gid;
        if (*n == CLASS_IDS_MAX)
            return ERR("more than %d %s", CLASS_IDS_MAX,
                       groups ? "groups" : "users");
        if (groups ? group_id(w, &gid) : user_id(w, &uid, &gid))
            return ERR("no %s '%s'", groups ? "group" : "user", w);
        if (groups)
            c->groups[(*n)++] = gid;
        else
            c->users[(*n)++] = uid;
    }
    return 0;
}

static int seconds(const char *key, const char *value, int *out, char *err,
                   size_t errsize)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < 1 || v > 3600)
        return ERR("%s: '%s' is not a number of seconds from 1 to 3600",
                   key, value);
    *out = (int)v;
    return 0;
}

static int set_key(struct lclass *c, const char *key, const char *value,
                   bool *group_given, char *err, size_t errsize)
{
    if (!strcmp(key, "executable")) {
        if (value[0] != '/' || strlen(value) >= sizeof c->executable)
            return ERR("executable: '%s' is not an absolute path", value);
        strcpy(c->executable, value);
    } else if (!strcmp(key, "arguments")) {
        return template_words(c, value, err, errsize);
    } else if (!strcmp(key, "directory")) {
        if (value[0] != '/' || strlen(value) >= sizeof c->directory)
            return ERR("directory: '%s' is not an absolute path", value);
        strcpy(c->directory, value);
    } else if (!strcmp(key, "user")) {
        gid_t gid;
        if (user_id(value, &c->uid, &gid))
            return ERR("user: no user '%s'", value);
        if (!*group_given)
            c->gid = gid;
    } else if (!strcmp(key, "group")) {
        if (group_id(value, &c->gid))
            return ERR("group: no group '%s'", value);
        *group_given = true;
    } else if (!strcmp(key, "persistent")) {
        if (strcmp(value, "yes") && strcmp(value, "no"))
            return ERR("persistent: '%s' is not yes or no", value);
        c->persistent = !strcmp(value, "yes");
    } else if (!strcmp(key, "allow-users")) {
        return id_list(value, false, c, err, errsize);
    } else if (!strcmp(key, "allow-groups")) {
        return id_list(value, true, c, err, errsize);
    } else if (!strcmp(key, "ready-timeout")) {
        return seconds(key, value, &c->ready_timeout, err, errsize);
    } else if (!strcmp(key, "stop-timeout")) {
        return seconds(key, value, &c->stop_timeout, err, errsize);
    } else {
        return ERR("unknown key '%s'", key);
    }
    return 0;
}

/* A class file decides what runs as whom: only its owner (root or the
 * launcher's user) may write it. */
static int file_trusted(FILE *f, char *err, size_t errsize)
{
    struct stat st;
    if (fstat(fileno(f), &st))
        return ERR("%s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ERR("not a regular file");
    if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))
        return ERR("writable by others than root (owner %u, mode %o)",
                   (unsigned)st.st_uid, (unsigned)st.st_mode & 07777);
    return 0;
}

static int parse(FILE *f, struct lclass *c, char *err, size_t errsize)
{
    char line[8192];
    bool group_given = false;
    for (int no = 1; fgets(line, sizeof line, f); no++) {
        char *s = trim(line), *eq = strchr(s, '=');
        if (!*s || *s == '#')
            continue;
        if (!eq)
            return ERR("line %d: not KEY = VALUE", no);
        *eq = '\0';
        char e[512];
        if (set_key(c, trim(s), trim(eq + 1), &group_given, e, sizeof e))
            return ERR("line %d: %s", no, e);
    }
    if (!c->executable[0])
        return ERR("no executable");
    return 0;
}

int class_load(const char *dir, const char *name, struct lclass *c,
               char *err, size_t errsize)
{
    char path[4200], e[600];
    if (!proto_name_ok(name))
        return ERR("'%.80s' is not a class name", name);
    snprintf(path, sizeof path, "%s/%s.conf", dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return errno == ENOENT ? ERR("unknown class %s", name)
                               : ERR("class %s: %s", name, strerror(errno));
    }
    *c = (struct lclass){ .uid = geteuid(), .gid = getegid(),
                          .ready_timeout = 30, .stop_timeout = 10 };
    snprintf(c->name, sizeof c->name, "%s", name);
    strcpy(c->directory, "/");
    int r = file_trusted(f, e, sizeof e) ? -1 : parse(f, c, e, sizeof e);
    fclose(f);
    return r ? ERR("class %s (%s): %s", name, path, e) : 0;
}

static bool in_groups(const struct lclass *c, gid_t gid)
{
    for (int i = 0; i < c->ngroups; i++)
        if (c->groups[i] == gid)
            return true;
    return false;
}

bool class_allows(const struct lclass *c, const struct caller *who)
{
    if (who->uid == 0 || in_groups(c, who->gid))
        return true;
    for (int i = 0; i < c->nusers; i++)
        if (c->users[i] == who->uid)
            return true;
    for (int i = 0; i < who->ngroups; i++)
        if (in_groups(c, who->groups[i]))
            return true;
    return false;
}

/* Check one request argument: it lands in argv, where a leading '-'
 * would make it an option and an empty one a hole. */
static int arg_ok(const char *a, int i, char *err, size_t errsize)
{
    if (!*a)
        return ERR("argument %d is empty", i);
    if (a[0] == '-')
        return ERR("argument %d '%.80s' starts with '-': refused, it would "
                   "be an option", i, a);
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p < 32)
            return ERR("argument %d has a control character", i);
    if (strlen(a) > 4096)
        return ERR("argument %d is too long", i);
    return 0;
}

static void expand(struct sbuf *b, const char *w, const char *name,
                   const char *class, const char *run_dir, char **args)
{
    for (; *w; w++) {
        if (*w != '%') {
            sb_add(b, w, 1);
            continue;
        }
        w++;
        const char *v = *w == 'n' ? name : *w == 'c' ? class
                      : *w == 'r' ? run_dir : *w == '%' ? "%"
                      : args[*w - '1'];
        sb_add(b, v, strlen(v));
    }
    sb_add(b, "", 1);
}

char **class_argv(const struct lclass *c, const char *name,
                  const char *run_dir, char **args, int nargs,
                  char *err, size_t errsize)
{
    if (nargs != c->nargs) {
        (void)ERR("class %s takes %d argument%s, not %d", c->name, c->nargs,
            c->nargs == 1 ? "" : "s", nargs);
        return NULL;
    }
    for (int i = 0; i < nargs; i++)
        if (arg_ok(args[i], i + 1, err, errsize))
            return NULL;
    struct sbuf text = { 0 };
    sb_add(&text, c->executable, strlen(c->executable) + 1);
    for (int i = 0; i < c->nwords; i++)
        expand(&text, c->words[i], name, c->name, run_dir, args);
    size_t ptrs = (size_t)(c->nwords + 2) * sizeof(char *);
    char **argv = text.err ? NULL : malloc(ptrs + text.len);
    if (!argv) {
        sb_free(&text);
        (void)ERR("out of memory");
        return NULL;
    }
    char *s = memcpy((char *)argv + ptrs, text.p, text.len);
    for (int i = 0; i <= c->nwords; i++, s += strlen(s) + 1)
        argv[i] = s;
    argv[c->nwords + 1] = NULL;
    sb_free(&text);
    return argv;
}
