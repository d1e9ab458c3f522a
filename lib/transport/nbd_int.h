/*
 * nbd_int.h - the NBD server's wire constants (doc/proto.md of the NBD
 * project) and the state shared by nbd_server.c, nbd_handshake.c and
 * nbd_io.c.
 */
#ifndef SPD_NBD_INT_H
#define SPD_NBD_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "transport/net.h"
#include "transport/server.h"
#include "spd/nbd.h"

/* Magics. */
#define NBD_MAGIC              0x4e42444d41474943ull   /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC         0x49484156454f5054ull   /* "IHAVEOPT" */
#define NBD_REP_MAGIC          0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC      0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES      NBD_FLAG_NO_ZEROES

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS          (1u << 0)
#define NBD_FLAG_READ_ONLY          (1u << 1)
#define NBD_FLAG_SEND_FLUSH         (1u << 2)
#define NBD_FLAG_SEND_FUA           (1u << 3)
#define NBD_FLAG_ROTATIONAL         (1u << 4)
#define NBD_FLAG_SEND_TRIM          (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES  (1u << 6)
#define NBD_FLAG_SEND_DF            (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN     (1u << 8)
#define NBD_FLAG_SEND_FAST_ZERO     (1u << 11)

/* Options. */
enum {
    NBD_OPT_EXPORT_NAME = 1,
    NBD_OPT_ABORT = 2,
    NBD_OPT_LIST = 3,
    NBD_OPT_STARTTLS = 5,
    NBD_OPT_INFO = 6,
    NBD_OPT_GO = 7,
    NBD_OPT_STRUCTURED_REPLY = 8,
    NBD_OPT_LIST_META_CONTEXT = 9,
    NBD_OPT_SET_META_CONTEXT = 10,
};

/* Option replies. */
#define NBD_REP_ACK          1u
#define NBD_REP_SERVER       2u
#define NBD_REP_INFO         3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR(n)       ((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP    NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY   NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID  NBD_REP_ERR(3)
#define NBD_REP_ERR_TLS_REQD NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN  NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN NBD_REP_ERR(7)
#define NBD_REP_ERR_TOO_BIG  NBD_REP_ERR(9)

/* Information types of NBD_REP_INFO. */
#define NBD_INFO_EXPORT      0
#define NBD_INFO_NAME        1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* Commands and their flags. */
enum {
    NBD_CMD_READ = 0,
    NBD_CMD_WRITE = 1,
    NBD_CMD_DISC = 2,
    NBD_CMD_FLUSH = 3,
    NBD_CMD_TRIM = 4,
    NBD_CMD_CACHE = 5,
    NBD_CMD_WRITE_ZEROES = 6,
    NBD_CMD_BLOCK_STATUS = 7,
};
#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF        (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Structured reply chunk types and flags. */
#define NBD_REPLY_FLAG_DONE          (1u << 0)
#define NBD_REPLY_TYPE_NONE          0
#define NBD_REPLY_TYPE_OFFSET_DATA   1
#define NBD_REPLY_TYPE_BLOCK_STATUS  5
#define NBD_REPLY_TYPE_ERROR         ((1u << 15) | 1)

/* base:allocation extent flags. */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* Wire errors. */
#define NBD_EPERM     1
#define NBD_EIO       5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* The one meta context Spd serves, and its id on every connection. */
#define NBD_META_BASE_ALLOCATION    "base:allocation"
#define NBD_META_BASE_ALLOCATION_ID 1

/* Requests with payloads beyond this end the connection: the protocol's
 * own threshold for a denial of service (2^25). */
#define NBD_MAX_PAYLOAD (32u * 1024 * 1024)

/* The receive buffer requests are parsed from. */
#define NBD_INPUT_BUFFER (256u * 1024)

struct nbd_export {
    struct nbd_export *next;
    char *name;
    char *description;
    spd_unit *unit;
};

struct spd_nbd_server {
    struct server srv;              /* listeners, connections */
    struct nbd_export *exports;
    spd_nbd_tls_mode tls_mode;
    struct tls_creds *tls_creds;    /* NULL when the mode is off */
    bool nbds_listener;             /* an nbds:// address was listened on */
};

/* A connection, from accept to close. */
struct nbd_conn {
    struct conn c;                  /* socket, input, send queue */
    spd_nbd_server *server;

    /* Negotiated. */
    struct nbd_export *export;
    bool no_zeroes;
    bool structured;
    bool base_allocation;           /* meta context selected */
    /* GO asked for NBD_INFO_BLOCK_SIZE: the client keeps to the block
     * sizes sent. Without it requests may address any byte (nbd_io.c). */
    bool block_sizes_agreed;

    /* Under c.lock. */
    struct nbd_reply *spares;       /* large buffers kept for reuse */
    unsigned spare_count;
};

struct nbd_reply;

/* nbd_handshake.c: negotiate; true when transmission may start. */
bool nbd_handshake(struct nbd_conn *conn);

/* nbd_io.c: serve requests until the client leaves or the server stops. */
void nbd_transmission(struct nbd_conn *conn);
extern const struct conn_ops nbd_conn_ops;

/* nbd_server.c */
struct nbd_export *nbd_find_export(spd_nbd_server *server, const char *name);
uint16_t nbd_export_flags(const struct nbd_export *export);

#endif
