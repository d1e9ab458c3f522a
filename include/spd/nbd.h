/*
 * nbd.h - export storage units over NBD (the Network Block Device
 * protocol, fixed newstyle), to qemu, nbd-client, libnbd and the kernel.
 *
 * Typical use:
 *
 *     spd_nbd_server *s = spd_nbd_server_create(NULL);
 *     spd_nbd_server_add(s, unit, "", NULL);
 *     spd_nbd_server_listen(s, "nbd+unix:///?socket=/run/disk.sock");
 *     spd_nbd_server_start(s);
 *     ... until asked to stop ...
 *     spd_nbd_server_destroy(s);
 *
 * Functions return 0 or a negative errno with spd_errmsg() saying why, or
 * NULL with errno set. Configure (add, listen) before start; the units
 * must outlive the server.
 */
#ifndef SPD_NBD_H
#define SPD_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spd/spd.h"
#include "spd/server.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPD_NBD_DEFAULT_PORT 10809

typedef struct spd_nbd_server spd_nbd_server;

/* A server with no exports and no listeners; options NULL: the defaults
 * (see spd/server.h). NULL with errno on failure. */
spd_nbd_server *spd_nbd_server_create(const spd_server_options *options);

/*
 * Export unit under name ("" or NULL is the default export, which is also
 * what a client asking for "" gets when no export has that name: the
 * first one added). 0, or -EEXIST for a name in use, -EINVAL for a name
 * over 4096 bytes or no unit.
 */
int spd_nbd_server_add(spd_nbd_server *server, spd_unit *unit,
                       const char *name, const char *description);

/*
 * Listen where address says (spd/server.h):
 *   nbd://HOST[:PORT][/NAME]       TCP; HOST an address or name, [v6] too
 *   nbd+unix:///[NAME]?socket=PATH a Unix socket (a stale socket file is
 *                                  replaced, a live one is not)
 *   nbds://..., nbds+unix://...    the same, for a server that requires
 *                                  TLS (start refuses them otherwise)
 *   systemd, systemd:FDNAME        sockets from systemd socket activation
 * The name part is ignored here (it names an export, see
 * spd_nbd_server_add). May be called more than once. 0 or -errno.
 */
int spd_nbd_server_listen(spd_nbd_server *server, const char *address);

/* The URI of listener index (in the order listened), with the real port
 * after port 0: "nbd://127.0.0.1:10809", "nbd://[::1]:10809",
 * "nbd+unix:///?socket=PATH" (nbds, nbds+unix when the server requires
 * TLS). 0, -ENOENT past the last, -ENOSPC when size
 * is too small. */
int spd_nbd_server_listener_uri(const spd_nbd_server *server, unsigned index,
                                char *buf, size_t size);

/* The TCP port of the first TCP listener (useful after port 0), or 0. */
int spd_nbd_server_port(const spd_nbd_server *server);

/*
 * TLS (the NBD protocol's STARTTLS, with GnuTLS). mode:
 *   SPD_NBD_TLS_OFF      no TLS offered (the default)
 *   SPD_NBD_TLS_ON       a client may upgrade to TLS, or not
 *   SPD_NBD_TLS_REQUIRE  every option but STARTTLS and ABORT is answered
 *                        NBD_REP_ERR_TLS_REQD until the client upgraded;
 *                        listener URIs then read nbds:// and nbds+unix://
 * Credentials, exactly one of (unless mode is off):
 *   certificates  a directory with ca-cert.pem, server-cert.pem,
 *                 server-key.pem and, optionally, ca-crl.pem (X.509)
 *   psk_file      pre-shared keys in psktool's format (USER:HEXKEY lines);
 *                 a regular file of this user or root that group and
 *                 others can neither write nor read
 * verify_peer (with certificates): clients must present a certificate the
 * CA signed.
 */
typedef enum spd_nbd_tls_mode {
    SPD_NBD_TLS_OFF,
    SPD_NBD_TLS_ON,
    SPD_NBD_TLS_REQUIRE,
} spd_nbd_tls_mode;

typedef struct spd_nbd_tls {
    uint32_t size;              /* SPD_NBD_TLS_INIT */
    spd_nbd_tls_mode mode;
    const char *certificates;   /* directory, or NULL */
    const char *psk_file;       /* file, or NULL */
    bool verify_peer;
} spd_nbd_tls;

#define SPD_NBD_TLS_INIT .size = sizeof(spd_nbd_tls)

/* Use TLS as tls says (before start). The credentials are loaded now: 0,
 * or -errno with spd_errmsg() naming the file and what is wrong with it
 * (-EINVAL also for a mode or a combination that makes no sense, -EBUSY
 * once the server started). */
int spd_nbd_server_set_tls(spd_nbd_server *server, const spd_nbd_tls *tls);

/* Start accepting clients, each connection served by its own thread. */
int spd_nbd_server_start(spd_nbd_server *server);

/* Stop: close the door, end every connection after the requests it has in
 * flight completed and were answered, and wait for that. A client that
 * does not read its replies is cut off after a few seconds. */
void spd_nbd_server_stop(spd_nbd_server *server);

/* Stop if needed and free; Unix socket files are removed. NULL is a
 * no-op. */
void spd_nbd_server_destroy(spd_nbd_server *server);

/* The export name in an NBD URI (nbd, nbds, nbd+unix, nbds+unix; "" when
 * it has none), in a buffer of size bytes: 0 or -EINVAL. */
int spd_nbd_uri_export_name(const char *uri, char *name, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* SPD_NBD_H */
