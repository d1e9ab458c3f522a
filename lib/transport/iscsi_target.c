/*
 * iscsi_target.c - the iSCSI target: its names and logical units, CHAP
 * secrets, and the life of each connection (login, then full feature
 * phase until the initiator or the target ends it) on the shared network
 * server core (server.h). Sessions have one connection each;
 * a new login of the same initiator port ends the old session
 * (reinstatement, RFC 7143 "Session Reinstatement").
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "util/secrets.h"
#include "transport/iscsi_int.h"

static const struct server_proto iscsi_proto;

spd_iscsi_target *spd_iscsi_target_create(const spd_server_options *options)
{
    spd_iscsi_target *tgt = calloc(1, sizeof *tgt);
    if (!tgt) {
        spd_set_error(ENOMEM, "out of memory");
        return NULL;
    }
    int r = server_init(&tgt->srv, &iscsi_proto, tgt, options);
    if (r) {
        free(tgt);
        errno = -r;
        return NULL;
    }
    tgt->next_tsih = 1;
    return tgt;
}

/* ------------------------------------------------------------------ */
/* Names and logical units                                             */
/* ------------------------------------------------------------------ */

const struct iscsi_node *iscsi_find_node(const spd_iscsi_target *tgt,
                                         const char *name)
{
    for (const struct iscsi_node *n = tgt->nodes; n; n = n->next)
        if (!strcasecmp(n->name, name))
            return n;
    return NULL;
}

const struct iscsi_chap *iscsi_node_chap(const spd_iscsi_target *tgt,
                                         const struct iscsi_node *node)
{
    return node && node->chap ? node->chap : tgt->chap;
}

const struct iscsi_lu *iscsi_find_lu(const struct iscsi_node *node,
                                     unsigned lun)
{
    for (unsigned i = 0; i < node->lu_count; i++)
        if (node->lus[i].lun == lun)
            return &node->lus[i];
    return NULL;
}

/* iqn in lower case into name: 0 or -EINVAL. */
static int name_lower(const char *iqn, char name[ISCSI_NAME_MAX + 1])
{
    size_t len = iqn ? strlen(iqn) : 0;
    if (!len || len > ISCSI_NAME_MAX)
        return spd_set_error(EINVAL, "an iSCSI name has 1 to %d bytes",
                             ISCSI_NAME_MAX);
    for (size_t i = 0; i <= len; i++)
        name[i] = (char)tolower((unsigned char)iqn[i]);
    if (!iscsi_name_valid(name))
        return spd_set_error(EINVAL, "'%s' is not an iSCSI name "
                             "(iqn.YYYY-MM.domain[:id], eui.<16 hex digits> "
                             "or naa.<16 or 32 hex digits>)", iqn);
    return 0;
}

/* A unit's target port group (spd_params.port_group). */
static uint16_t unit_port_group(const spd_unit *unit)
{
    uint16_t group = spd_unit_params(unit)->port_group;
    return group ? group : SPD_DEFAULT_PORT_GROUP;
}

/* A target's portal group tag, the relative target port identifier of its
 * port: its units' target port group, one for all of them. */
uint16_t iscsi_node_tpgt(const struct iscsi_node *node)
{
    return unit_port_group(node->lus[0].unit);
}

int spd_iscsi_name_check(const char *iqn)
{
    char name[ISCSI_NAME_MAX + 1];
    return name_lower(iqn, name);
}

int spd_iscsi_target_add(spd_iscsi_target *tgt, spd_unit *unit,
                         const char *iqn, unsigned lun)
{
    char name[ISCSI_NAME_MAX + 1];
    int r = name_lower(iqn, name);
    if (r)
        return r;
    size_t len = strlen(name);
    if (lun > ISCSI_MAX_LUN)
        return spd_set_error(EINVAL, "LUN %u: LUNs go from 0 to %d", lun,
                             ISCSI_MAX_LUN);
    if (!unit)
        return spd_set_error(EINVAL, "no unit for LUN %u", lun);

    struct iscsi_node *node = (struct iscsi_node *)iscsi_find_node(tgt, name);
    if (node && iscsi_find_lu(node, lun))
        return spd_set_error(EEXIST, "%s already has LUN %u", name, lun);
    if (node && iscsi_node_tpgt(node) != unit_port_group(unit))
        return spd_set_error(EINVAL, "LUN %u is in target port group %u, "
                             "%s's other LUNs in %u: a target has one",
                             lun, unit_port_group(unit), name,
                             iscsi_node_tpgt(node));
    bool created = !node;
    if (created) {
        node = calloc(1, sizeof *node);
        if (!node)
            return spd_set_error(ENOMEM, "out of memory");
        memcpy(node->name, name, len + 1);
    }
    struct iscsi_lu *lus = realloc(node->lus,
                                   (node->lu_count + 1) * sizeof *lus);
    if (!lus) {
        if (created)
            free(node);
        return spd_set_error(ENOMEM, "out of memory");
    }
    node->lus = lus;
    /* Keep them sorted: REPORT LUNS lists them in order. */
    unsigned at = node->lu_count;
    while (at && lus[at - 1].lun > lun) {
        lus[at] = lus[at - 1];
        at--;
    }
    lus[at] = (struct iscsi_lu){ .lun = lun, .unit = unit };
    node->lu_count++;
    if (created) {
        struct iscsi_node **tail = &tgt->nodes;
        while (*tail)
            tail = &(*tail)->next;
        *tail = node;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* CHAP secrets                                                        */
/* ------------------------------------------------------------------ */

static void chap_free(struct iscsi_chap *chap)
{
    if (!chap)
        return;
    for (unsigned i = 0; i < chap->user_count; i++) {
        free(chap->users[i].name);
        if (chap->users[i].secret)
            explicit_bzero(chap->users[i].secret, chap->users[i].secret_len);
        free(chap->users[i].secret);
    }
    free(chap->users);
    free(chap->mutual_name);
    if (chap->mutual_secret)
        explicit_bzero(chap->mutual_secret, chap->mutual_len);
    free(chap->mutual_secret);
    free(chap);
}

/* Split a line into its first word and the rest (leading blanks gone). */
static char *next_word(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    char *word = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    *p = s;
    return word;
}

static int chap_line(struct iscsi_chap *chap, char *line, const char *file,
                     unsigned lineno)
{
    char *rest = line;
    char *word = next_word(&rest);
    bool mutual = !strcmp(word, "mutual");
    char *user = mutual ? next_word(&rest) : word;
    char *secret = rest;
    size_t secret_len = strlen(secret);

    if (!*user || !*secret)
        return spd_set_error(EINVAL, "%s:%u: want 'USER SECRET' or "
                             "'mutual USER SECRET'", file, lineno);
    if (strlen(user) > 255)
        return spd_set_error(EINVAL, "%s:%u: user name longer than 255 "
                             "bytes", file, lineno);
    if (secret_len < 12 || secret_len > 255)
        return spd_set_error(EINVAL, "%s:%u: a CHAP secret has 12 to 255 "
                             "bytes", file, lineno);
    for (const char *c = user; *c; c++)
        if (!isgraph((unsigned char)*c))
            return spd_set_error(EINVAL, "%s:%u: bad character in the "
                                 "user name", file, lineno);
    if (mutual && chap->mutual_name)
        return spd_set_error(EINVAL, "%s:%u: a second 'mutual' line", file,
                             lineno);

    char *name = strdup(user);
    uint8_t *copy = malloc(secret_len);
    if (!name || !copy) {
        free(name);
        free(copy);
        return spd_set_error(ENOMEM, "out of memory");
    }
    memcpy(copy, secret, secret_len);
    if (mutual) {
        chap->mutual_name = name;
        chap->mutual_secret = copy;
        chap->mutual_len = secret_len;
        return 0;
    }
    struct iscsi_chap_user *users = realloc(chap->users,
        (chap->user_count + 1) * sizeof *users);
    if (!users) {
        free(name);
        free(copy);
        return spd_set_error(ENOMEM, "out of memory");
    }
    chap->users = users;
    users[chap->user_count++] = (struct iscsi_chap_user){
        .name = name, .secret = copy, .secret_len = secret_len };
    return 0;
}

static int chap_read(FILE *f, struct iscsi_chap *chap, const char *file)
{
    char line[1024];
    unsigned lineno = 0;
    int r = 0;
    while (!r && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            r = spd_set_error(EINVAL, "%s:%u: line too long", file, lineno);
            break;
        }
        while (len && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s && *s != '#')
            r = chap_line(chap, s, file, lineno);
    }
    explicit_bzero(line, sizeof line);
    if (r)
        return r;
    if (ferror(f))
        return spd_set_error(EIO, "%s: read error", file);
    if (!chap->user_count)
        return spd_set_error(EINVAL, "%s: no 'USER SECRET' line", file);
    for (unsigned i = 0; chap->mutual_secret && i < chap->user_count; i++)
        if (chap->users[i].secret_len == chap->mutual_len &&
            !memcmp(chap->users[i].secret, chap->mutual_secret,
                    chap->mutual_len))
            return spd_set_error(EINVAL, "%s: the mutual secret must differ "
                                 "from every initiator secret", file);
    return 0;
}

int spd_iscsi_target_set_chap(spd_iscsi_target *tgt, const char *iqn,
                              const char *secrets_file)
{
    struct iscsi_node *node = NULL;
    if (iqn && !(node = (struct iscsi_node *)iscsi_find_node(tgt, iqn)))
        return spd_set_error(ENOENT, "no target called '%s': add its LUNs "
                             "first", iqn);
    int fd = secrets_open(secrets_file);
    if (fd < 0)
        return fd;
    FILE *f = fdopen(fd, "r");
    struct iscsi_chap *chap = calloc(1, sizeof *chap);
    if (!f || !chap) {
        if (f)
            fclose(f);
        else
            close(fd);
        free(chap);
        return spd_set_error(ENOMEM, "out of memory");
    }
    int r = chap_read(f, chap, secrets_file);
    fclose(f);
    if (r) {
        chap_free(chap);
        return r;
    }
    struct iscsi_chap **slot = node ? &node->chap : &tgt->chap;
    chap_free(*slot);
    *slot = chap;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Listening and connections                                           */
/* ------------------------------------------------------------------ */

/* iscsi://HOST[:PORT], HOST:PORT, [V6]:PORT, HOST, or a bare IPv6
 * address. */
static int split_addr(const char *text, char *host, size_t host_size,
                      char *port, size_t port_size)
{
    const char *h, *p = NULL;
    size_t hlen;
    if (!text || !*text)
        text = "127.0.0.1";
    if (!strncmp(text, "iscsi://", 8)) {
        text += 8;
        size_t n = strlen(text);
        if (n && text[n - 1] == '/')
            return spd_set_error(EINVAL, "%s: an iSCSI address has no path",
                                 text);
    }
    h = text;
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return spd_set_error(EINVAL, "%s: missing ']'", text);
        h = text + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            p = close + 2;
        else if (close[1])
            return spd_set_error(EINVAL, "%s: want [ADDRESS]:PORT", text);
    } else {
        const char *colon = strchr(text, ':');
        if (colon && !strchr(colon + 1, ':')) {
            hlen = (size_t)(colon - text);
            p = colon + 1;
        } else {
            hlen = strlen(text);      /* no port, or a bare IPv6 address */
        }
    }
    if (!hlen || hlen >= host_size || memchr(h, '/', hlen))
        return spd_set_error(EINVAL, "%s: bad address", text);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (!p) {
        snprintf(port, port_size, "%d", SPD_ISCSI_DEFAULT_PORT);
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long n = strtoul(p, &end, 10);
    if (!*p || *end || errno || n > 65535 || !isdigit((unsigned char)*p))
        return spd_set_error(EINVAL, "%s: bad port", text);
    snprintf(port, port_size, "%lu", n);
    return 0;
}

int spd_iscsi_target_listen(spd_iscsi_target *tgt, const char *address)
{
    int r = address ? server_listen_systemd(&tgt->srv, address) : 1;
    if (r <= 0)
        return r;
    char host[256], port[8];
    r = split_addr(address, host, sizeof host, port, sizeof port);
    return r ? r : server_listen_tcp(&tgt->srv, host, port);
}

int spd_iscsi_target_listener_uri(const spd_iscsi_target *tgt, unsigned index,
                                  char *buf, size_t size)
{
    return server_listener_uri(&tgt->srv, index, buf, size);
}

int spd_iscsi_target_port(const spd_iscsi_target *tgt)
{
    return server_port(&tgt->srv);
}

static bool same_initiator_port(const struct iscsi_conn *a,
                                const struct iscsi_conn *b)
{
    return a->node == b->node && a->discovery == b->discovery &&
           !memcmp(a->isid, b->isid, sizeof a->isid) &&
           !strcasecmp(a->initiator, b->initiator);
}

static bool tsih_in_use(spd_iscsi_target *tgt, uint16_t tsih)
{
    for (struct conn *c = tgt->srv.conns; c; c = c->next)
        if (iscsi_conn_of(c)->logged_in && iscsi_conn_of(c)->tsih == tsih)
            return true;
    return false;
}

uint16_t iscsi_session_begin(struct iscsi_conn *conn)
{
    spd_iscsi_target *tgt = conn->tgt;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;

    pthread_mutex_lock(&tgt->srv.lock);
    /* Reinstatement: the old session's connection is shut down; its
     * thread finishes what the unit runs and leaves. */
    for (;;) {
        struct iscsi_conn *old = NULL;
        for (struct conn *c = tgt->srv.conns; c && !old; c = c->next)
            if (c != &conn->c && iscsi_conn_of(c)->logged_in &&
                same_initiator_port(iscsi_conn_of(c), conn))
                old = iscsi_conn_of(c);
        if (!old)
            break;
        shutdown(old->c.fd, SHUT_RDWR);
        if (pthread_cond_timedwait(&tgt->srv.changed, &tgt->srv.lock,
                                   &deadline) == ETIMEDOUT)
            break;
    }
    uint16_t tsih;
    do {
        tsih = tgt->next_tsih++;
        if (!tgt->next_tsih)
            tgt->next_tsih = 1;
    } while (!tsih || tsih_in_use(tgt, tsih));
    conn->tsih = tsih;
    conn->logged_in = true;
    /* The I_T nexus its commands come from (SAM-5: initiator port name
     * and ISID, through the target's one port). */
    conn->nexus = (spd_scsi_nexus){ SPD_SCSI_NEXUS_INIT, .has_isid = true };
    if (conn->node)
        conn->nexus.rel_port = iscsi_node_tpgt(conn->node);
    snprintf(conn->nexus.name, sizeof conn->nexus.name, "%s", conn->initiator);
    memcpy(conn->nexus.isid, conn->isid, sizeof conn->isid);
    pthread_mutex_unlock(&tgt->srv.lock);
    server_handshake_done(&conn->c);
    return tsih;
}

static struct conn *iscsi_conn_new(void *owner, int fd)
{
    struct iscsi_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    if (conn_init(&conn->c, fd, &iscsi_conn_ops, ISCSI_INPUT_BUFFER)) {
        free(conn);
        return NULL;
    }
    conn->tgt = owner;
    return &conn->c;
}

static void iscsi_serve(struct conn *c)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    if (!iscsi_login(conn))
        return;
    iscsi_full_feature(conn);
    /* The session is over: an I_T nexus loss for its logical units. */
    for (unsigned i = 0; conn->node && i < conn->node->lu_count; i++)
        spd_unit_scsi_nexus_lost(conn->node->lus[i].unit, &conn->nexus);
}

static void iscsi_conn_free(struct conn *c)
{
    struct iscsi_conn *conn = iscsi_conn_of(c);
    conn_fini(c);
    free(conn->text_in);
    free(conn->text_out);
    free(conn);
}

static const struct server_proto iscsi_proto = {
    .scheme = "iscsi",
    .conn_new = iscsi_conn_new,
    .serve = iscsi_serve,
    .conn_free = iscsi_conn_free,
};

int spd_iscsi_target_start(spd_iscsi_target *tgt)
{
    if (!tgt->nodes)
        return spd_set_error(EINVAL, "the iSCSI target has no LUN");
    return server_start(&tgt->srv);
}

void spd_iscsi_target_stop(spd_iscsi_target *tgt)
{
    server_stop(&tgt->srv);
}

void spd_iscsi_target_destroy(spd_iscsi_target *tgt)
{
    if (!tgt)
        return;
    server_fini(&tgt->srv);
    while (tgt->nodes) {
        struct iscsi_node *n = tgt->nodes;
        tgt->nodes = n->next;
        chap_free(n->chap);
        free(n->lus);
        free(n);
    }
    chap_free(tgt->chap);
    free(tgt);
}
