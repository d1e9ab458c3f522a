/* tls.c - see tls.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "util/bytes.h"
#include "util/errmsg.h"
#include "util/secrets.h"
#include "transport/tls.h"

/* The largest plaintext of one TLS record. */
#define TLS_RECORD 16384
/* Bytes taken from the socket at once: GnuTLS asks for a record's 5-byte
 * header and then its body, two system calls a record without this. */
#define TLS_READ_AHEAD (64 * 1024)
/* A pre-shared key file larger than this is not one. */
#define TLS_PSK_FILE_MAX (1024 * 1024)

struct tls_psk {
    char *user;
    unsigned char *key;
    size_t key_len;
};

struct tls_creds {
    gnutls_certificate_credentials_t x509;     /* or NULL */
    gnutls_psk_server_credentials_t psk;       /* or NULL */
    gnutls_priority_t priority;
    bool verify_peer;
    struct tls_psk *keys;
    size_t key_count;
};

struct tls {
    gnutls_session_t session;
    int fd;
    bool recv_wait;             /* the receiving thread's */
    bool send_wait;             /* the sending thread's */
    bool unsent;                /* a record met a full socket */
    unsigned char out[TLS_RECORD];  /* small pieces gathered into one */
    size_t in_start, in_end;    /* encrypted bytes read ahead, in in[] */
    unsigned char in[TLS_READ_AHEAD];
};

/* ------------------------------------------------------------------ */
/* Credentials                                                         */
/* ------------------------------------------------------------------ */

/* One USER:HEXKEY line (without its newline) into k. */
static int psk_line(char *line, struct tls_psk *k, const char *file,
                    unsigned number)
{
    char *colon = strchr(line, ':');
    size_t hex = colon ? strlen(colon + 1) : 0;
    if (!colon || colon == line || !hex || hex % 2)
        return spd_set_error(EINVAL, "%s:%u: not USER:HEXKEY (as psktool "
                             "writes them)", file, number);
    *colon = '\0';
    k->key_len = hex / 2;
    k->key = malloc(k->key_len);
    k->user = strdup(line);
    if (!k->key || !k->user)
        return spd_set_error(ENOMEM, "out of memory");
    for (size_t i = 0; i < k->key_len; i++) {
        int hi = hex_digit(colon[1 + 2 * i]), lo = hex_digit(colon[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return spd_set_error(EINVAL, "%s:%u: the key is not hexadecimal",
                                 file, number);
        k->key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* The whole of the secrets file into a new NUL-terminated buffer. */
static int read_secrets(const char *file, char **text)
{
    int fd = secrets_open(file);
    if (fd < 0)
        return fd;
    struct stat st;
    char *buf = NULL;
    int r = fstat(fd, &st) ? spd_set_error(errno, "%s: %s", file,
                                           strerror(errno))
            : st.st_size > TLS_PSK_FILE_MAX
            ? spd_set_error(EFBIG, "%s: larger than %d bytes", file,
                            TLS_PSK_FILE_MAX)
            : 0;
    if (!r && !(buf = malloc((size_t)st.st_size + 1)))
        r = spd_set_error(ENOMEM, "out of memory");
    ssize_t got = r ? 0 : read(fd, buf, (size_t)st.st_size);
    if (!r && got < 0)
        r = spd_set_error(errno, "%s: %s", file, strerror(errno));
    close(fd);
    if (r) {
        free(buf);
        return r;
    }
    buf[got] = '\0';
    *text = buf;
    return 0;
}

static int load_psk(struct tls_creds *c, const char *file)
{
    char *text;
    int r = read_secrets(file, &text);
    if (r)
        return r;
    unsigned number = 0;
    for (char *line = text, *next; !r && *line; line = next) {
        next = line + strcspn(line, "\n");
        if (*next)
            *next++ = '\0';
        number++;
        line[strcspn(line, "\r")] = '\0';
        if (!*line || *line == '#')
            continue;
        struct tls_psk *keys = realloc(c->keys, (c->key_count + 1) *
                                                sizeof *keys);
        if (!keys) {
            r = spd_set_error(ENOMEM, "out of memory");
            break;
        }
        c->keys = keys;
        memset(&keys[c->key_count], 0, sizeof *keys);
        r = psk_line(line, &keys[c->key_count++], file, number);
    }
    free(text);
    if (!r && !c->key_count)
        r = spd_set_error(EINVAL, "%s: no USER:HEXKEY line", file);
    return r;
}

/* GnuTLS asks for the key of user during a handshake. */
static int psk_lookup(gnutls_session_t session, const char *user,
                      gnutls_datum_t *key)
{
    const struct tls_creds *c = gnutls_session_get_ptr(session);
    for (size_t i = 0; i < c->key_count; i++) {
        if (strcmp(c->keys[i].user, user))
            continue;
        key->data = gnutls_malloc(c->keys[i].key_len);
        if (!key->data)
            return -1;
        memcpy(key->data, c->keys[i].key, c->keys[i].key_len);
        key->size = (unsigned)c->keys[i].key_len;
        return 0;
    }
    return -1;
}

/* DIR/NAME into path, and whether it can be read. */
static int cert_file(const char *dir, const char *name, char *path,
                     size_t size, bool required)
{
    snprintf(path, size, "%s/%s", dir, name);
    if (!access(path, R_OK))
        return 0;
    if (errno == ENOENT && !required)
        return 1;
    return spd_set_error(errno, "%s: %s", path, strerror(errno));
}

static int gnutls_failed(int r, const char *path)
{
    return spd_set_error(EINVAL, "%s: %s", path, gnutls_strerror(r));
}

static int load_x509(struct tls_creds *c, const char *dir)
{
    struct stat st;
    errno = 0;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return spd_set_error(errno ? errno : ENOTDIR, "%s: not a directory "
                             "(of ca-cert.pem, server-cert.pem and "
                             "server-key.pem)", dir);
    if (gnutls_certificate_allocate_credentials(&c->x509))
        return spd_set_error(ENOMEM, "out of memory");
    char ca[PATH_MAX], crl[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    int r, has_ca = 1, has_crl = 1;
    if ((r = cert_file(dir, "server-cert.pem", cert, sizeof cert, true)) ||
        (r = cert_file(dir, "server-key.pem", key, sizeof key, true)) ||
        (has_ca = cert_file(dir, "ca-cert.pem", ca, sizeof ca,
                            c->verify_peer)) < 0 ||
        (has_crl = cert_file(dir, "ca-crl.pem", crl, sizeof crl, false)) < 0)
        return r ? r : -errno;
    r = gnutls_certificate_set_x509_key_file(c->x509, cert, key,
                                             GNUTLS_X509_FMT_PEM);
    if (r < 0)
        return spd_set_error(EINVAL, "%s, %s: %s", cert, key,
                             gnutls_strerror(r));
    if (has_ca == 0) {
        r = gnutls_certificate_set_x509_trust_file(c->x509, ca,
                                                   GNUTLS_X509_FMT_PEM);
        if (r <= 0)
            return r ? gnutls_failed(r, ca)
                     : spd_set_error(EINVAL, "%s: no certificate", ca);
    }
    if (has_crl == 0 && (r = gnutls_certificate_set_x509_crl_file(
                             c->x509, crl, GNUTLS_X509_FMT_PEM)) < 0)
        return gnutls_failed(r, crl);
    gnutls_certificate_set_known_dh_params(c->x509, GNUTLS_SEC_PARAM_MEDIUM);
    return 0;
}

int tls_creds_new(struct tls_creds **creds, const char *certificates,
                  const char *psk_file, bool verify_peer)
{
    if (!certificates == !psk_file)
        return spd_set_error(EINVAL, "TLS needs either certificates or "
                             "pre-shared keys (one of the two)");
    if (verify_peer && !certificates)
        return spd_set_error(EINVAL, "verifying clients needs certificates "
                             "(a CA), not pre-shared keys");
    struct tls_creds *c = calloc(1, sizeof *c);
    if (!c)
        return spd_set_error(ENOMEM, "out of memory");
    c->verify_peer = verify_peer;
    int r;
    if (certificates) {
        r = load_x509(c, certificates);
    } else if (!(r = load_psk(c, psk_file))) {
        if (gnutls_psk_allocate_server_credentials(&c->psk))
            r = spd_set_error(ENOMEM, "out of memory");
        else {
            gnutls_psk_set_server_credentials_function(c->psk, psk_lookup);
            gnutls_psk_set_server_known_dh_params(c->psk,
                                                  GNUTLS_SEC_PARAM_MEDIUM);
        }
    }
    /* The defaults, and the key exchanges with pre-shared keys. */
    const char *prio = c->psk ? "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK" : "NORMAL";
    int g;
    if (!r && (g = gnutls_priority_init(&c->priority, prio, NULL)) < 0)
        r = spd_set_error(EINVAL, "TLS priorities: %s", gnutls_strerror(g));
    if (r) {
        tls_creds_free(c);
        return r;
    }
    *creds = c;
    return 0;
}

void tls_creds_free(struct tls_creds *c)
{
    if (!c)
        return;
    if (c->x509)
        gnutls_certificate_free_credentials(c->x509);
    if (c->psk)
        gnutls_psk_free_server_credentials(c->psk);
    if (c->priority)
        gnutls_priority_deinit(c->priority);
    for (size_t i = 0; i < c->key_count; i++) {
        if (c->keys[i].key)
            gnutls_memset(c->keys[i].key, 0, c->keys[i].key_len);
        free(c->keys[i].key);
        free(c->keys[i].user);
    }
    free(c->keys);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    struct tls *t = ptr;
    int flags = t->recv_wait ? 0 : MSG_DONTWAIT;
    if (t->in_start == t->in_end) {
        if (len >= sizeof t->in)
            return recv(t->fd, buf, len, flags);
        ssize_t got = recv(t->fd, t->in, sizeof t->in, flags);
        if (got <= 0)
            return got;
        t->in_start = 0;
        t->in_end = (size_t)got;
    }
    size_t n = t->in_end - t->in_start;
    if (n > len)
        n = len;
    memcpy(buf, t->in + t->in_start, n);
    t->in_start += n;
    return (ssize_t)n;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov,
                        int count)
{
    struct tls *t = ptr;
    struct msghdr msg = { .msg_iov = (struct iovec *)iov,
                          .msg_iovlen = (size_t)count };
    return sendmsg(t->fd, &msg, MSG_NOSIGNAL |
                                (t->send_wait ? 0 : MSG_DONTWAIT));
}

struct tls *tls_accept(const struct tls_creds *creds, int fd,
                       const char *peer)
{
    struct tls *t = calloc(1, sizeof *t);
    if (!t || gnutls_init(&t->session, GNUTLS_SERVER)) {
        fprintf(stderr, "spd: nbd: TLS with %s: out of memory\n", peer);
        free(t);
        return NULL;
    }
    gnutls_session_t s = t->session;
    t->fd = fd;
    t->recv_wait = t->send_wait = true;
    gnutls_session_set_ptr(s, (void *)creds);
    gnutls_priority_set(s, creds->priority);
    if (creds->x509) {
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds->x509);
        if (creds->verify_peer) {
            gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
            gnutls_session_set_verify_cert(s, NULL, 0);
        }
    } else {
        gnutls_credentials_set(s, GNUTLS_CRD_PSK, creds->psk);
    }
    gnutls_transport_set_ptr(s, t);
    gnutls_transport_set_pull_function(s, tls_pull);
    gnutls_transport_set_vec_push_function(s, tls_push);

    int r;
    do
        r = gnutls_handshake(s);
    while (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_WARNING_ALERT_RECEIVED);
    if (r < 0) {
        /* The socket's timeout, or the handshake deadline shut it down. */
        const char *why = r == GNUTLS_E_AGAIN ? "timed out"
                          : r == GNUTLS_E_PREMATURE_TERMINATION
                          ? "the connection ended (the client left, or its "
                            "handshake time was up)"
                          : gnutls_strerror(r);
        fprintf(stderr, "spd: nbd: TLS handshake with %s failed: %s\n", peer,
                why);
        gnutls_deinit(s);
        free(t);
        return NULL;
    }
    t->send_wait = false;
    return t;
}

ssize_t tls_recv(struct tls *t, void *buf, size_t len, bool wait)
{
    t->recv_wait = wait;
    for (;;) {
        ssize_t r = gnutls_record_recv(t->session, buf, len);
        if (r >= 0)
            return r;
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;               /* closed without saying goodbye */
        errno = r == GNUTLS_E_AGAIN ? EAGAIN : ECONNRESET;
        return -1;
    }
}

bool tls_pending(struct tls *t)
{
    return gnutls_record_check_pending(t->session) > 0 ||
           t->in_start < t->in_end;
}

/* One record's worth from iov[*i] (byte *off on): straight from a piece
 * that fills a record, else small pieces gathered into t->out. */
static size_t next_record(struct tls *t, const struct iovec *iov, unsigned n,
                          unsigned i, size_t off, const void **data)
{
    if (iov[i].iov_len - off >= TLS_RECORD || i + 1 == n) {
        *data = (const char *)iov[i].iov_base + off;
        size_t len = iov[i].iov_len - off;
        return len < TLS_RECORD ? len : TLS_RECORD;
    }
    size_t len = 0;
    for (; i < n && len < TLS_RECORD; i++, off = 0) {
        size_t take = iov[i].iov_len - off;
        if (take > TLS_RECORD - len)
            take = TLS_RECORD - len;
        memcpy(t->out + len, (const char *)iov[i].iov_base + off, take);
        len += take;
    }
    *data = t->out;
    return len;
}

ssize_t tls_sendv(struct tls *t, const struct iovec *iov, unsigned n)
{
    size_t total = 0, off = 0;
    unsigned i = 0;
    for (;;) {
        while (i < n && off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        if (i == n)
            break;
        ssize_t r;
        if (t->unsent) {
            r = gnutls_record_send(t->session, NULL, 0);
        } else {
            const void *data;
            size_t len = next_record(t, iov, n, i, off, &data);
            r = gnutls_record_send(t->session, data, len);
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            t->unsent = true;
            break;
        }
        if (r <= 0) {
            errno = EPIPE;
            return total ? (ssize_t)total : -1;
        }
        t->unsent = false;
        total += (size_t)r;
        for (size_t left = (size_t)r; left; ) {
            size_t take = iov[i].iov_len - off;
            if (take > left)
                take = left;
            left -= take;
            off += take;
            if (off == iov[i].iov_len && left) {
                i++;
                off = 0;
            }
        }
    }
    if (!total) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)total;
}

int tls_read_full(struct tls *t, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t got = tls_recv(t, p, len, true);
        if (got <= 0)
            return -1;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

int tls_write_full(struct tls *t, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    t->send_wait = true;
    while (len) {
        ssize_t r = gnutls_record_send(t->session, p, len);
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0)
            break;
        p += r;
        len -= (size_t)r;
    }
    t->send_wait = false;
    return len ? -1 : 0;
}

void tls_close(struct tls *t)
{
    if (!t)
        return;
    t->send_wait = false;
    gnutls_bye(t->session, GNUTLS_SHUT_WR);
    gnutls_deinit(t->session);
    free(t);
}
