/*
 * nbd.h - export storage units over NBD (the Network Block Device
 * protocol, fixed newstyle), to qemu, nbd-client, libnbd and the kernel.
 */
#ifndef SPD_NBD_H
#define SPD_NBD_H

#include "spd/spd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPD_NBD_DEFAULT_PORT 10809

typedef struct spd_nbd_server spd_nbd_server;

spd_nbd_server *spd_nbd_server_create(void);

/*
 * Export a unit under a name ("" is the default export, which is also what
 * a client asking for "" gets when no export has that name: the first one
 * added). The unit must outlive the server. 0, or -EEXIST for a name in
 * use, -EINVAL for a name over 4096 bytes.
 */
int spd_nbd_server_add(spd_nbd_server *server, const char *name,
                       spd_unit *unit, const char *description);

/*
 * Listen where an NBD URI says:
 *   nbd://HOST[:PORT][/NAME]       TCP; HOST an address or name, [v6] too
 *   nbd+unix:///[NAME]?socket=PATH a Unix socket
 * The name part is ignored here (it names an export, see
 * spd_nbd_server_add). Listening on all interfaces takes an explicit
 * 0.0.0.0 or [::]. 0 or -errno with spd_errmsg().
 */
int spd_nbd_server_listen(spd_nbd_server *server, const char *uri);

/* The export name in an NBD URI ("" when it has none), in a buffer of
 * size bytes: 0 or -EINVAL. */
int spd_nbd_uri_export_name(const char *uri, char *name, size_t size);

/* The TCP port the first TCP listener got (useful after port 0), or 0. */
int spd_nbd_server_port(const spd_nbd_server *server);

/* Start accepting clients, each connection served by its own thread. */
int spd_nbd_server_start(spd_nbd_server *server);

/* Stop: close the listeners, end every connection after the requests it
 * has in flight completed and were answered, and wait for that. */
void spd_nbd_server_stop(spd_nbd_server *server);

/* Stop if needed and free; Unix socket files are removed. */
void spd_nbd_server_destroy(spd_nbd_server *server);

#ifdef __cplusplus
}
#endif

#endif /* SPD_NBD_H */
