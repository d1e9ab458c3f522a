/* net.h - the client side the network fuzz targets (fuzz_nbd, fuzz_iscsi)
 * share: building a message, sending a server the fuzzed bytes, and
 * waiting for its connection threads to finish. */
#ifndef SPD_FUZZ_NET_H
#define SPD_FUZZ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/server.h"

/* How long the server may keep a connection whose client stopped sending,
 * and its connection threads may take to finish. */
#define FUZZ_CLOSE_TIMEOUT_MS 10000

int64_t fuzz_now_ms(void);

/* A message built up to send: msg_add appends bytes (free p when done). */
struct msg {
    uint8_t *p;
    size_t len, cap;
};
void msg_add(struct msg *m, const void *data, size_t len);

/* Send len bytes of out on fd while draining the server's answers (all at
 * once, or with trickle non-zero that many bytes at a time with a pause
 * after each), then shut down the write side and read until the server
 * closes; or, to hang up, send what the socket takes at once and return. */
void fuzz_pump(int fd, const uint8_t *out, size_t len, bool hang_up,
               size_t trickle);

/* Wait until the server's connection threads are done with every client. */
void fuzz_wait_connections_gone(struct server *srv);

#endif
