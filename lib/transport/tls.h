/*
 * tls.h - TLS on a connection's socket, with GnuTLS: the server's
 * credentials (X.509 certificates or pre-shared keys), and one session per
 * connection that upgraded.
 *
 * A session is used by two threads at once at most, as GnuTLS allows: the
 * connection's thread receives, and whichever thread holds the
 * connection's send lock sends. Sends never wait once the handshake is
 * over (the send queue of conn.h retries), receives wait when asked to;
 * the socket's receive and send timeouts bound every wait.
 */
#ifndef SPD_TLS_H
#define SPD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_creds;
struct tls;

/* Load the credentials: X.509 from the directory certificates
 * (server-cert.pem, server-key.pem, ca-cert.pem, optional ca-crl.pem; the
 * CA is required when verify_peer asks for client certificates), or the
 * pre-shared keys of psk_file (psktool's USER:HEXKEY lines; the file must
 * pass secrets_open()). Exactly one of the two. 0, or -errno with
 * spd_errmsg() naming the file and the problem. */
int tls_creds_new(struct tls_creds **creds, const char *certificates,
                  const char *psk_file, bool verify_peer);
void tls_creds_free(struct tls_creds *creds);

/* The server's side of a TLS handshake on the blocking socket fd: the
 * session, or NULL after a line on stderr naming peer and the reason. */
struct tls *tls_accept(const struct tls_creds *creds, int fd,
                       const char *peer);

/* Receive up to len bytes: their count, 0 at the end, or -1 with errno
 * (EAGAIN: nothing yet without wait, or the receive timeout). */
ssize_t tls_recv(struct tls *t, void *buf, size_t len, bool wait);
/* Whether bytes the session read from the socket wait in it, decrypted
 * or not (poll() cannot see them). */
bool tls_pending(struct tls *t);
/* Send from the n iovecs without waiting: the bytes taken, or -1 with
 * errno (EAGAIN when none). Bytes that met a full socket are kept
 * encrypted and count as taken by a later call: offer the same data
 * again, from the first byte not yet counted. */
ssize_t tls_sendv(struct tls *t, const struct iovec *iov, unsigned n);
/* Read or write exactly len bytes, waiting: 0, or -1. */
int tls_read_full(struct tls *t, void *buf, size_t len);
int tls_write_full(struct tls *t, const void *buf, size_t len);
/* Tell the peer the session ends if the socket takes it at once, and free
 * the session. NULL is a no-op. */
void tls_close(struct tls *t);

#endif
