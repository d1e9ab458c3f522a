/*
 * server.h - the network server core the NBD server and the iSCSI target
 * share: listening sockets (TCP, Unix, or inherited from systemd), the
 * accept thread, the registry of connections (a thread each) with its
 * caps (in all, per peer address), handshake deadlines, spare buffers
 * given back by idle connections, and stop-and-wait. The protocol gives how to
 * make, serve and free a connection.
 */
#ifndef SPD_SERVER_INT_H
#define SPD_SERVER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/conn.h"
#include "spd/server.h"

struct server_proto {
    const char *scheme;         /* "nbd", "iscsi": URIs and log lines */
    /* A connection for the accepted socket fd (conn_init() done), or
     * NULL. */
    struct conn *(*conn_new)(void *owner, int fd);
    /* Handshake (then server_handshake_done()), then requests. */
    void (*serve)(struct conn *c);
    void (*conn_free)(struct conn *c);
};

struct server_listener {
    int fd;
    char *unix_path;            /* ours, to remove at the end */
};

/* A peer refused lately: named in the log once a while only. */
struct server_refusal {
    char host[48];
    int64_t at;                 /* ms; 0: a free entry */
};
#define SERVER_REFUSALS 32

struct server {
    const struct server_proto *proto;
    void *owner;
    spd_server_options opt;     /* with the defaults filled in */
    struct server_listener *listeners;
    unsigned listener_count;
    int wake_fd;                /* eventfd: stop the accept thread */
    pthread_t accept_thread;
    bool started;
    bool accept_error_logged;

    pthread_mutex_t lock;       /* guards what follows and conn->deadline */
    pthread_cond_t changed;     /* a connection ended */
    struct conn *conns;
    unsigned conn_count;
    bool stopping;
    struct server_refusal refused[SERVER_REFUSALS];
};

/* options may be NULL (the defaults). 0 or -errno with spd_errmsg(). */
int server_init(struct server *s, const struct server_proto *proto,
                void *owner, const spd_server_options *options);
/* Stop if needed, close the listeners (removing our Unix socket files). */
void server_fini(struct server *s);

int server_listen_tcp(struct server *s, const char *host, const char *port);
int server_listen_unix(struct server *s, const char *path);
/* "systemd" or "systemd:FDNAME": 1 when address is not one of those,
 * else 0 or -errno. */
int server_listen_systemd(struct server *s, const char *address);

int server_listener_uri(const struct server *s, unsigned index, char *buf,
                        size_t size);
/* The TCP port of the first TCP listener, or 0. */
int server_port(const struct server *s);

int server_start(struct server *s);
/* Close the door, let each connection answer what it has in flight, and
 * wait; connections that cannot finish (a peer not reading) are cut off
 * after a grace period. */
void server_stop(struct server *s);

/* The handshake of c is over: its deadline no longer applies, the idle
 * timeout does. */
void server_handshake_done(struct conn *c);

#endif
