/* net.c - see net.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "memunit.h"
#include "net.h"

#define TRICKLE_WAIT_MS 1

int64_t fuzz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void msg_add(struct msg *m, const void *data, size_t len)
{
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2 + 256;
        m->p = realloc(m->p, m->cap);
        memunit_require(m->p != NULL, "out of memory");
    }
    if (len)
        memcpy(m->p + m->len, data, len);
    m->len += len;
}

void fuzz_pump(int fd, const uint8_t *out, size_t len, bool hang_up,
               size_t trickle)
{
    uint8_t sink[65536];
    size_t sent = 0;
    bool shut = false;
    int64_t deadline = fuzz_now_ms() + FUZZ_CLOSE_TIMEOUT_MS;

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        if (sent == len && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        if (shut && hang_up)
            return;
        int64_t left = deadline - fuzz_now_ms();
        if (left <= 0) {
            fprintf(stderr, "fuzz: the server kept the connection open %d "
                    "ms after the client stopped sending (%zu of %zu bytes "
                    "sent)\n", FUZZ_CLOSE_TIMEOUT_MS, sent, len);
            memunit_require(false, "server closes a finished connection");
        }
        struct pollfd pfd = { .fd = fd,
                              .events = POLLIN | (shut ? 0 : POLLOUT) };
        if (poll(&pfd, 1, (int)left) < 0) {
            memunit_require(errno == EINTR, "poll");
            continue;
        }
        if (pfd.revents & POLLOUT) {
            size_t chunk = len - sent;
            if (trickle && chunk > trickle)
                chunk = trickle;
            ssize_t n = send(fd, out + sent, chunk, MSG_NOSIGNAL);
            if (n > 0 && trickle) {
                struct pollfd wait = { .fd = fd, .events = POLLIN };
                poll(&wait, 1, TRICKLE_WAIT_MS);
            }
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                sent = len;             /* the server stopped reading */
            else if (hang_up)
                sent = len;             /* the socket is full: give up */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return;                 /* closed by the server */
        }
    }
}

void fuzz_wait_connections_gone(struct server *srv)
{
    int64_t deadline = fuzz_now_ms() + FUZZ_CLOSE_TIMEOUT_MS;
    for (;;) {
        pthread_mutex_lock(&srv->lock);
        unsigned n = srv->conn_count;
        pthread_mutex_unlock(&srv->lock);
        if (n == 0)
            return;
        memunit_require(fuzz_now_ms() < deadline, "connection threads finish");
        usleep(100);
    }
}
