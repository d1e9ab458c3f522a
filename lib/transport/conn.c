/* conn.c - see conn.h. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "transport/conn.h"
#include "transport/net.h"
#include "transport/tls.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int conn_init(struct conn *c, int fd, const struct conn_ops *ops,
              size_t in_cap)
{
    c->fd = fd;
    c->ops = ops;
    c->send_ms = 60000;
    c->in_cap = in_cap;
    c->in = malloc(in_cap);
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!c->in || c->wake_fd < 0) {
        free(c->in);
        if (c->wake_fd >= 0)
            close(c->wake_fd);
        return -1;
    }
    pthread_mutex_init(&c->lock, NULL);
    return 0;
}

void conn_fini(struct conn *c)
{
    free(c->in);
    close(c->wake_fd);
    pthread_mutex_destroy(&c->lock);
}

void conn_wake(struct conn *c)
{
    uint64_t one = 1;
    if (write(c->wake_fd, &one, sizeof one) < 0) {
        /* Only a full counter fails, and then a wake is pending anyway. */
    }
}

/* Wake the connection thread from poll() when it waits for what just
 * happened. c->lock held. */
static void wake_if_waiting(struct conn *c)
{
    if (c->sleeping && !c->woken && (c->want_release || c->head)) {
        c->woken = true;
        conn_wake(c);
    }
}

unsigned conn_iov_add(struct iovec *iov, unsigned n, unsigned max,
                      size_t *skip, const void *base, size_t len)
{
    if (*skip >= len) {
        *skip -= len;
        return n;
    }
    if (n == max)
        return n;
    iov[n].iov_base = (uint8_t *)base + *skip;
    iov[n].iov_len = len - *skip;
    *skip = 0;
    return n + 1;
}

void conn_done_locked(struct conn *c)
{
    c->pending--;
    wake_if_waiting(c);
}

/* The head message is gone (sent or dropped). */
static void release_head(struct conn *c)
{
    struct conn_out *o = c->head;
    c->head = o->next;
    if (!c->head)
        c->tail = NULL;
    c->head_off = 0;
    c->ops->release(c, o);
}

/* The peer is gone: nothing queued will reach it. */
static void drop_all(struct conn *c)
{
    c->broken = true;
    c->queued = 0;
    while (c->head)
        release_head(c);
}

/* Account for sent bytes: release the messages they complete. */
static void advance(struct conn *c, size_t sent)
{
    c->queued -= sent;
    c->sent_total += sent;
    while (c->head && sent >= c->head->bytes - c->head_off) {
        sent -= c->head->bytes - c->head_off;
        release_head(c);
    }
    if (c->head)
        c->head_off += sent;
}

/* Send what the socket takes without waiting. c->lock held. */
static void send_now(struct conn *c)
{
    while (c->head && !c->broken) {
        struct iovec iov[CONN_IOV_MAX];
        unsigned n = 0;
        size_t total = 0, skip = c->head_off;
        for (struct conn_out *o = c->head; o && n < CONN_IOV_MAX;
             o = o->next) {
            unsigned k = c->ops->fill(c, o, skip, iov + n, CONN_IOV_MAX - n);
            size_t got = 0;
            for (unsigned i = n; i < n + k; i++)
                got += iov[i].iov_len;
            n += k;
            total += got;
            if (got < o->bytes - skip)
                break;              /* out of iovecs inside o */
            skip = 0;
        }
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
        ssize_t sent = c->tls ? tls_sendv(c->tls, iov, n)
                              : sendmsg(c->fd, &msg,
                                        MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (sent <= 0) {
            drop_all(c);
            return;
        }
        advance(c, (size_t)sent);
        if ((size_t)sent < total)
            return;                 /* the socket is full */
    }
}

void conn_queue_locked(struct conn *c, struct conn_out *o)
{
    if (c->broken) {
        c->ops->release(c, o);
        return;
    }
    o->next = NULL;
    if (c->tail)
        c->tail->next = o;
    else
        c->head = o;
    c->tail = o;
    c->queued += o->bytes;
    if (!c->busy)
        send_now(c);
    wake_if_waiting(c);
}

void conn_queue(struct conn *c, struct conn_out *o)
{
    pthread_mutex_lock(&c->lock);
    conn_queue_locked(c, o);
    pthread_mutex_unlock(&c->lock);
}

void conn_flush_if(struct conn *c, size_t bytes)
{
    if (__atomic_load_n(&c->queued, __ATOMIC_RELAXED) < bytes)
        return;
    pthread_mutex_lock(&c->lock);
    send_now(c);
    pthread_mutex_unlock(&c->lock);
}

/* Parse what the buffer holds; false when input is to end. */
static bool parse_batch(struct conn *c, bool *paused, bool *requests)
{
    enum conn_parse r;
    while ((r = c->ops->parse(c)) == CONN_PARSED || r == CONN_KEEPALIVE) {
        *requests |= r == CONN_PARSED;
        if (__atomic_load_n(&c->queued, __ATOMIC_RELAXED) > CONN_QUEUE_MAX) {
            r = CONN_PAUSE;
            break;
        }
    }
    *paused = r == CONN_PAUSE;
    if (r == CONN_NEED_MORE) {
        /* Make room for the next recv(): drop what was parsed. */
        size_t left = c->in_end - c->in_start;
        if (c->in_start && left)
            memmove(c->in, c->in + c->in_start, left);
        c->in_start = 0;
        c->in_end = left;
    }
    return r != CONN_CLOSE;
}

/* The milliseconds poll() may sleep before a timeout is due, or -1. */
static int poll_timeout(const struct conn *c, bool reading, bool sending,
                        bool retry, int64_t now, int64_t last_request,
                        int64_t last_ping, int64_t last_out)
{
    int64_t due = INT64_MAX;
    if (retry)
        due = now + CONN_RETRY_MS;
    if (reading && c->idle_ms && last_request + c->idle_ms < due)
        due = last_request + c->idle_ms;
    if (reading && c->ping_ms && last_ping + c->ping_ms < due)
        due = last_ping + c->ping_ms;
    if (sending && last_out + c->send_ms < due)
        due = last_out + c->send_ms;
    if (due == INT64_MAX)
        return -1;
    return due <= now ? 0 : (int)(due - now < 86400000 ? due - now : 86400000);
}

void conn_run(struct conn *c)
{
    bool reading = !atomic_load(&c->stop), paused = false, finished = false;
    bool ended = false;
    /* Idleness counts from the last request (keepalives do not end it);
     * pings from the last input of any kind. */
    int64_t last_in = now_ms(), last_ping = last_in, last_out = last_in;
    int64_t last_request = last_in;
    uint64_t progress = 0;

    atomic_store(&c->active_ms, last_in);
    /* Blocking receives wake for the timers too. */
    unsigned tick = c->ping_ms && (!c->idle_ms || c->ping_ms < c->idle_ms)
                    ? c->ping_ms : c->idle_ms;
    if (tick) {
        struct timeval tv = { .tv_sec = tick / 1000,
                              .tv_usec = (tick % 1000) * 1000 };
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    pthread_mutex_lock(&c->lock);
    c->busy = true;
    pthread_mutex_unlock(&c->lock);
    for (;;) {
        bool requests = false;
        if (reading && !parse_batch(c, &paused, &requests))
            reading = false;
        /* The idle timeout, checked here rather than only when poll()
         * times out: keepalives arriving in time never let it. Input not
         * taken yet (paused) is no idleness. */
        if (requests)
            last_request = last_in;
        else if (reading && c->idle_ms && c->in_start == c->in_end &&
                 now_ms() - last_request >= c->idle_ms)
            reading = false;
        if (!reading && !ended) {
            ended = true;
            if (c->ops->input_end)
                c->ops->input_end(c);
        }

        pthread_mutex_lock(&c->lock);
        c->busy = false;
        send_now(c);                    /* the batch's replies */
        if (c->broken)
            reading = false;
        bool sending = c->head != NULL;
        if (!reading && !sending && !c->pending) {
            pthread_mutex_unlock(&c->lock);
            if (finished || !c->ops->finish || !c->ops->finish(c))
                break;
            finished = true;
            continue;
        }
        if (c->sent_total != progress) {
            progress = c->sent_total;
            last_out = now_ms();
        }
        bool take_input = reading && !paused && c->in_end < c->in_cap;
        /* Nothing in flight and nothing to send: no other thread can want
         * this one, so it sleeps in recv() itself (one system call per
         * request at queue depth 1). Else poll() lets a completion that
         * could not send all its reply wake it. */
        bool block = take_input && !sending && !c->pending;
        c->want_release = paused || !reading;
        /* Paused with nothing of its own to release: only memory the
         * others hold can make room, and their releases do not wake it. */
        bool retry = paused && !c->pending;
        c->sleeping = !block;
        c->busy = block;            /* no completion can come meanwhile */
        c->woken = false;
        pthread_mutex_unlock(&c->lock);

        int n = 1;
        struct pollfd fds[2] = {
            { .fd = c->fd, .events = (short)((take_input ? POLLIN : 0) |
                                             (sending ? POLLOUT : 0)) },
            { .fd = c->wake_fd, .events = POLLIN },
        };
        if (block) {
            fds[0].revents = POLLIN;
        } else {
            /* Bytes TLS decrypted already are input poll() cannot see. */
            bool decrypted = take_input && c->tls && tls_pending(c->tls);
            int timeout = decrypted ? 0
                          : poll_timeout(c, reading, sending, retry,
                                         now_ms(), last_request, last_ping,
                                         last_out);
            n = poll(fds, 2, timeout);
            if (decrypted) {
                fds[0].revents |= POLLIN;
                n = 1;
            }
            pthread_mutex_lock(&c->lock);
            c->sleeping = false;
            c->busy = true;
            if (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))
                send_now(c);
            pthread_mutex_unlock(&c->lock);
            if (fds[1].revents) {
                uint64_t count;
                if (read(c->wake_fd, &count, sizeof count) < 0) {
                    /* Another read took it: fine. */
                }
            }
        }
        if (atomic_load(&c->stop))
            reading = false;
        paused = false;                 /* try again */
        if (reading && take_input &&
            (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            void *to = c->in + c->in_end;
            size_t room = c->in_cap - c->in_end;
            ssize_t got = c->tls ? tls_recv(c->tls, to, room, block)
                                 : recv(c->fd, to, room,
                                        block ? 0 : MSG_DONTWAIT);
            if (got > 0) {
                c->in_end += (size_t)got;
                last_in = last_ping = now_ms();
                atomic_store_explicit(&c->active_ms, last_in,
                                      memory_order_relaxed);
            } else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                n = !block;         /* blocking: the receive timeout, a tick */
            } else if (got == 0 || errno != EINTR) {
                reading = false;
            }
        }
        if (n != 0)
            continue;
        /* A timeout. */
        int64_t now = now_ms();
        if (sending && now - last_out >= c->send_ms) {
            pthread_mutex_lock(&c->lock);
            if (c->sent_total == progress)
                drop_all(c);            /* the peer takes nothing */
            pthread_mutex_unlock(&c->lock);
        }
        if (reading && c->ping_ms && now - last_ping >= c->ping_ms) {
            last_ping = now;
            if (!c->ops->ping(c))
                reading = false;
        }
    }
}

int conn_read_full(struct conn *c, void *buf, size_t len)
{
    return c->tls ? tls_read_full(c->tls, buf, len)
                  : net_read_full(c->fd, buf, len);
}

int conn_write_full(struct conn *c, const void *buf, size_t len)
{
    return c->tls ? tls_write_full(c->tls, buf, len)
                  : net_write_full(c->fd, buf, len);
}
