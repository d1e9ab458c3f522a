/*
 * server.h - what every network export of libspd (NBD, iSCSI) shares:
 * its options, and the addresses it listens on.
 *
 * Addresses (spd_nbd_server_listen, spd_iscsi_target_listen):
 *   nbd://HOST[:PORT][/NAME]            NBD over TCP ([V6] for IPv6)
 *   nbd+unix:///[NAME]?socket=PATH      NBD over a Unix socket
 *   iscsi://HOST[:PORT]                 iSCSI (HOST:PORT, [V6]:PORT too)
 *   systemd                             every socket passed by systemd
 *                                       socket activation (LISTEN_FDS,
 *                                       LISTEN_PID)
 *   systemd:FDNAME                      those of them whose LISTEN_FDNAMES
 *                                       entry is FDNAME (FileDescriptorName=
 *                                       in the socket unit)
 * Port 0 picks a free port; the export's listener_uri() then tells the
 * real one. Listening on all interfaces takes an explicit 0.0.0.0 or [::].
 */
#ifndef SPD_SERVER_H
#define SPD_SERVER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spd_server_options {
    uint32_t size;              /* SPD_SERVER_OPTIONS_INIT */
    unsigned max_connections;   /* at once, per server; 0: 1024. Beyond
                                   it a client is refused (and a line
                                   saying so goes to stderr) */
    unsigned handshake_timeout; /* seconds for the NBD handshake or the
                                   iSCSI login, and for a client that
                                   stalls within a message or takes none
                                   of our replies; 0: 60, at most
                                   1000000 */
    unsigned idle_timeout;      /* seconds with no request after the
                                   handshake before the connection is
                                   closed; 0: never (iSCSI still pings);
                                   at most 1000000 */
    unsigned socket_mode;       /* permission bits of the Unix sockets a
                                   server creates, whatever the umask;
                                   0: 0600 (only this user connects) */
    unsigned max_connections_per_peer; /* at once from one address, per
                                   server, those still in their handshake
                                   or login included; 0: 64 (and never
                                   more than max_connections). Unix
                                   socket peers are not counted */
    uint64_t max_memory;        /* bytes of data buffers (in flight and
                                   spare) all connections of the process
                                   hold, every export's together; 0: 1 GiB.
                                   The smallest value any server of the
                                   process asks for applies. Beyond it, no
                                   more requests are taken until some are
                                   answered (iSCSI: TASK SET FULL).
                                   At least 1 MiB */
    uint64_t max_connection_memory; /* the same for one connection; 0:
                                   128 MiB; at least 1 MiB. A request
                                   larger than it is served when the
                                   connection holds nothing else (and one
                                   larger than max_memory when nothing in
                                   the process is held) */
} spd_server_options;

#define SPD_SERVER_OPTIONS_INIT .size = sizeof(spd_server_options)

#ifdef __cplusplus
}
#endif

#endif /* SPD_SERVER_H */
