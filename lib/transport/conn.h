/*
 * conn.h - one connection of a network export after its handshake: the
 * input buffer the protocol parses requests from in batches, and the
 * vectored send queue its replies go out through.
 *
 * Threads: the connection's own thread receives, parses and sends what
 * the others leave; a request completes on whatever thread the unit
 * finished it. A completing thread never blocks on the socket: it queues
 * its reply and, unless the connection thread is in the middle of a batch
 * (which then sends every reply at its end, in one sendmsg()), sends what
 * the socket takes at once without waiting (MSG_DONTWAIT). What remains
 * is sent by the connection thread when poll() says the socket has room
 * (it sleeps in poll() whenever a request is in flight, and in a plain
 * recv() only when none is, so that no completion can need it).
 * A peer that does not read its replies thus holds back only its own
 * connection: once CONN_QUEUE_MAX bytes wait, no more of its requests are
 * taken, and a peer that takes nothing for the send timeout is dropped.
 */
#ifndef SPD_CONN_H
#define SPD_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "transport/memory.h"

/* Bytes waiting to be sent beyond which a connection takes no request. */
#define CONN_QUEUE_MAX (32u * 1024 * 1024)
/* A connection paused with nothing of its own in flight (for want of
 * memory the others of the process hold) tries again this often. */
#define CONN_RETRY_MS 50
/* iovecs gathered into one sendmsg() (the kernel's IOV_MAX). */
#define CONN_IOV_MAX 1024

struct conn;
struct server;
struct tls;

/* A message for the peer; the protocol's message embeds it. */
struct conn_out {
    struct conn_out *next;
    size_t bytes;               /* all bytes it sends */
};

enum conn_parse {
    CONN_PARSED,                /* one request taken: parse again */
    CONN_KEEPALIVE,             /* one message taken that asks nothing of
                                   the unit (an iSCSI NOP-Out): parse
                                   again; the idle timeout runs on */
    CONN_NEED_MORE,             /* the buffer holds no whole request */
    CONN_PAUSE,                 /* no room for the next one until a
                                   message was released */
    CONN_CLOSE,                 /* stop taking requests */
};

struct conn_ops {
    /* Take one request from c->in[c->in_start, c->in_end). */
    enum conn_parse (*parse)(struct conn *c);
    /* The iovecs of o from byte skip on, at most max of them (add them
     * with conn_iov_add): their count. */
    unsigned (*fill)(struct conn *c, struct conn_out *o, size_t skip,
                     struct iovec *iov, unsigned max);
    /* o was sent, or dropped because the peer is gone. c->lock held. */
    void (*release)(struct conn *c, struct conn_out *o);
    /* After ping_ms without input: false ends the connection. Optional. */
    bool (*ping)(struct conn *c);
    /* Input ended (called once, before waiting for what is pending).
     * Optional. */
    void (*input_end)(struct conn *c);
    /* Input ended and everything was answered: true when it queued more
     * (to be sent before the connection closes). Optional. */
    bool (*finish)(struct conn *c);
    /* Nothing was in flight for a second: give spare buffers back.
     * c->lock held. Optional. */
    void (*trim)(struct conn *c);
};

struct conn {
    /* The server's registry (server.c). */
    struct conn *next;
    struct server *server;
    int64_t deadline_ms;        /* of the handshake; 0 when it is over */
    char peer[128];             /* for log lines */
    char host[48];              /* the peer's address ("": Unix socket),
                                   for the limit per peer */
    _Atomic bool stop;          /* the server stops: take no more */

    int fd;
    struct tls *tls;            /* NULL: plain (tls.h) */
    int wake_fd;                /* eventfd: wakes the connection thread */
    const struct conn_ops *ops;
    unsigned ping_ms;           /* 0: no ping */
    unsigned idle_ms;           /* 0: no idle timeout */
    unsigned send_ms;           /* a peer taking nothing this long goes */

    _Atomic int64_t active_ms;  /* when input last came */

    /* Input: the connection thread only. */
    uint8_t *in;
    size_t in_start, in_end, in_cap;

    /* Under lock. */
    pthread_mutex_t lock;
    struct conn_out *head, *tail;
    size_t head_off;            /* bytes of head already sent */
    size_t queued;              /* bytes queued, not sent */
    uint64_t sent_total;        /* progress, for the send timeout */
    unsigned pending;           /* requests and messages not released */
    bool busy;                  /* the connection thread sends at the end
                                   of its batch */
    bool sleeping;              /* the connection thread is in poll() */
    bool want_release;          /* ... and waits for a release */
    bool woken;                 /* wake_fd written since it slept */
    bool broken;                /* a send failed: drop what is queued */
    struct mem_account mem;     /* buffers held, spares included */
};

/* Set up c for the socket fd with an input buffer of in_cap bytes: 0 or
 * -1. The registry fields are the server's. */
int conn_init(struct conn *c, int fd, const struct conn_ops *ops,
              size_t in_cap);
/* Free what conn_init() made (not the socket). */
void conn_fini(struct conn *c);

/* Serve requests until input ends (the peer leaves, parse says CLOSE, the
 * server stops, an idle timeout or a failed ping) and every pending
 * request was answered. */
void conn_run(struct conn *c);

/* Queue a message (c->lock held, or not). */
void conn_queue_locked(struct conn *c, struct conn_out *o);
void conn_queue(struct conn *c, struct conn_out *o);
/* A pending request or message was released. c->lock held. */
void conn_done_locked(struct conn *c);
/* Within a batch: send what is queued now when at least bytes wait. */
void conn_flush_if(struct conn *c, size_t bytes);
/* Wake the connection thread (the server stops). */
void conn_wake(struct conn *c);

/* Read or write exactly len bytes, waiting (through TLS once the
 * connection upgraded): 0, or -1 at EOF, on an error or a timeout. */
int conn_read_full(struct conn *c, void *buf, size_t len);
int conn_write_full(struct conn *c, const void *buf, size_t len);

/* For fill(): add len bytes at base to iov[n], less what *skip says was
 * sent already; the new count (n when nothing was added or n == max). */
unsigned conn_iov_add(struct iovec *iov, unsigned n, unsigned max,
                      size_t *skip, const void *base, size_t len);

#endif
