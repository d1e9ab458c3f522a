/*
 * fuzz_nbd.c - arbitrary bytes from a client of a real spd_nbd_server:
 * the handshake's option parsing, the transmission's request parsing and
 * checks, replies, and the unit core behind them.
 *
 * The server is created once per process on a Unix socket in a temporary
 * directory, with four exports over in-memory devices (memunit.h, checking):
 *   ""      512-byte blocks, unmap reading zeros, 16 KiB max transfer
 *   "ro"    4096-byte blocks, write protected
 *   "nz"    512-byte blocks, unmap without zeros, I/O on LBA 5 fails
 *   "plain" 512-byte blocks, no unmap, two dispatcher threads (requests
 *           complete on other threads, which then send their replies)
 *
 * Input: one mode byte, then the bytes to send.
 *   bit 0    send a valid handshake first (client flags, then GO), so the
 *            bytes arrive in transmission
 *   bits 1-2 the export GO names: "", "ro", "nz", or one that does not
 *            exist (the handshake then goes on with the bytes as options)
 *   bit 3    ask for structured replies and base:allocation before GO
 *   bit 4    the NO_ZEROES client flag
 *   bit 5    GO names "plain" instead
 *   bit 6    hang up: close as soon as the bytes are sent (with bit 0,
 *            once the handshake is answered), leaving the replies unread,
 *            so the server's sends fail
 *   bit 7    trickle: send TRICKLE_CHUNK bytes at a time, giving the
 *            server a moment after each, so requests arrive in several
 *            batches (and reply buffers are reused)
 * Each input: connect, send (while reading whatever the server answers),
 * shut down the write side, read until the server closes (or hang up,
 * bit 6), close, wait until the server has let the connection go.
 *
 * Invariants: no crash or sanitizer report in the server's threads; every
 * device call inside the unit (the device asserts it); the server closes a
 * connection whose client stopped sending within FUZZ_CLOSE_TIMEOUT_MS; and,
 * every CHECK_EVERY inputs, a fresh valid client writes and reads back a
 * block and gets the device's data.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/bytes.h"
#include "memunit.h"
#include "net.h"
#include "spd/nbd.h"
#include "transport/nbd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

#define CHECK_EVERY      8
#define TRICKLE_CHUNK    (16 * 28)      /* 16 requests without payload */

enum {
    MODE_HANDSHAKE = 0x01,
    MODE_EXPORT = 0x06,
    MODE_STRUCTURED = 0x08,
    MODE_NO_ZEROES = 0x10,
    MODE_PLAIN = 0x20,
    MODE_HANG_UP = 0x40,
    MODE_TRICKLE = 0x80,
};

static const char *const export_names[4] = { "", "ro", "nz", "missing" };

static struct {
    bool ready;
    char dir[64];
    char path[96];
    struct memunit *devices[4];
    spd_nbd_server *server;
    unsigned long inputs;
    unsigned long checks;
} fx;

/* ------------------------------------------------------------------ */
/* Setup                                                                */
/* ------------------------------------------------------------------ */

static void teardown(void)
{
    spd_nbd_server_destroy(fx.server);
    for (int i = 0; i < 4; i++)
        memunit_destroy(fx.devices[i]);
    rmdir(fx.dir);
}

static void add_export(int i, const char *name, const spd_params *p,
                       int64_t fail_lba)
{
    struct memunit *d = memunit_create_modes(p, 0, MEMUNIT_FAST |
                                             MEMUNIT_CHECKING | MEMUNIT_EXTENT);
    memunit_require(d != NULL, "unit created");
    memunit_fill(d);
    d->fail_lba = fail_lba;
    d->fail_result = -EIO;
    fx.devices[i] = d;
    if (getenv("SPD_FUZZ_LOG"))         /* to see what a saved input does */
        spd_unit_set_debug_log(d->unit, SPD_DEBUG_ALL, stderr);
    memunit_require(spd_nbd_server_add(fx.server, d->unit, name, "fuzz") == 0,
                 "export added");
}

static void setup(void)
{
    snprintf(fx.dir, sizeof fx.dir, "/tmp/spd-fuzz-nbd-XXXXXX");
    memunit_require(mkdtemp(fx.dir) != NULL, "temporary directory");
    snprintf(fx.path, sizeof fx.path, "%s/sock", fx.dir);
    fx.server = spd_nbd_server_create(NULL);
    memunit_require(fx.server != NULL, "server created");

    spd_params p = { SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x6e, 0x62, 0x64, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
                  0, 0, 1 },
        .block_length = 512, .block_count = 256, .cache_supported = true,
        .unmap_supported = true, .unmap_reads_zero = true,
        .max_transfer_length = 16384,
    };
    add_export(0, "", &p, -1);
    p = (spd_params){ SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x6e, 0x62, 0x64, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
                  0, 0, 2 },
        .block_length = 4096, .block_count = 16, .write_protected = true,
    };
    add_export(1, "ro", &p, -1);
    p = (spd_params){ SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x6e, 0x62, 0x64, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
                  0, 0, 3 },
        .block_length = 512, .block_count = 64, .unmap_supported = true,
    };
    add_export(2, "nz", &p, 5);
    p = (spd_params){ SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x6e, 0x62, 0x64, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
                  0, 0, 4 },
        .block_length = 512, .block_count = 64,
    };
    add_export(3, "plain", &p, -1);
    memunit_require(spd_unit_start(fx.devices[3]->unit, 2) == 0,
                 "dispatcher started");

    char uri[160];
    snprintf(uri, sizeof uri, "nbd+unix:///?socket=%s", fx.path);
    if (spd_nbd_server_listen(fx.server, uri) ||
        spd_nbd_server_start(fx.server)) {
        fprintf(stderr, "fuzz: %s: %s\n", uri, spd_errmsg());
        memunit_require(false, "server listening");
    }
    atexit(teardown);
    fx.ready = true;
}

/* ------------------------------------------------------------------ */
/* The client side                                                      */
/* ------------------------------------------------------------------ */

static int client_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", fx.path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memunit_require(fd >= 0, "socket");
    memunit_require(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0,
                 "connect to the server");
    return fd;
}

static void msg_be32(struct msg *m, uint32_t v)
{
    uint8_t b[4];
    put_be32(b, v);
    msg_add(m, b, 4);
}

static void msg_option(struct msg *m, uint32_t option, const void *data,
                       uint32_t len)
{
    uint8_t hdr[16];
    put_be64(hdr, NBD_OPTS_MAGIC);
    put_be32(hdr + 8, option);
    put_be32(hdr + 12, len);
    msg_add(m, hdr, sizeof hdr);
    msg_add(m, data, len);
}

/* GO for an export, asking for no extra information. */
static void msg_go(struct msg *m, const char *name)
{
    struct msg o = { 0 };
    msg_be32(&o, (uint32_t)strlen(name));
    msg_add(&o, name, strlen(name));
    msg_add(&o, "\0\0", 2);
    msg_option(m, NBD_OPT_GO, o.p, (uint32_t)o.len);
    free(o.p);
}

static void msg_meta_context(struct msg *m, const char *name)
{
    static const char query[] = NBD_META_BASE_ALLOCATION;
    struct msg o = { 0 };
    msg_be32(&o, (uint32_t)strlen(name));
    msg_add(&o, name, strlen(name));
    msg_be32(&o, 1);
    msg_be32(&o, sizeof query - 1);
    msg_add(&o, query, sizeof query - 1);
    msg_option(m, NBD_OPT_SET_META_CONTEXT, o.p, (uint32_t)o.len);
    free(o.p);
}

/* The valid handshake a mode byte asks for. */
static void msg_handshake(struct msg *m, uint8_t mode)
{
    const char *name = mode & MODE_PLAIN
                       ? "plain" : export_names[(mode & MODE_EXPORT) >> 1];
    msg_be32(m, NBD_FLAG_C_FIXED_NEWSTYLE |
                (mode & MODE_NO_ZEROES ? NBD_FLAG_C_NO_ZEROES : 0));
    if (mode & MODE_STRUCTURED) {
        msg_option(m, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
        msg_meta_context(m, name);
    }
    msg_go(m, name);
}

/* Read the server's handshake answers up to GO's last (its ACK or an
 * error); false when the server closed or went quiet first. */
static bool skip_handshake_replies(int fd)
{
    struct timeval tv = { .tv_sec = FUZZ_CLOSE_TIMEOUT_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint8_t buf[256];
    if (net_read_full(fd, buf, 18) < 0)                 /* the greeting */
        return false;
    for (;;) {
        if (net_read_full(fd, buf, 20) < 0)
            return false;
        uint32_t option = get_be32(buf + 8), type = get_be32(buf + 12);
        for (uint32_t len = get_be32(buf + 16); len;) {
            uint32_t n = len < sizeof buf ? len : sizeof buf;
            if (net_read_full(fd, buf, n) < 0)
                return false;
            len -= n;
        }
        if (option == NBD_OPT_GO &&
            (type == NBD_REP_ACK || (type & (1u << 31))))
            return true;
    }
}

/* ------------------------------------------------------------------ */
/* The valid client of the periodic check                              */
/* ------------------------------------------------------------------ */

static void read_exact(int fd, void *buf, size_t len, const char *what)
{
    if (net_read_full(fd, buf, len) < 0) {
        fprintf(stderr, "fuzz: check client: no %s from the server\n", what);
        memunit_require(false, "the server answers a valid client");
    }
}

static void send_request(int fd, uint16_t type, uint64_t cookie,
                         uint64_t offset, uint32_t length)
{
    uint8_t req[28];
    put_be32(req, NBD_REQUEST_MAGIC);
    put_be16(req + 4, 0);
    put_be16(req + 6, type);
    put_be64(req + 8, cookie);
    put_be64(req + 16, offset);
    put_be32(req + 24, length);
    memunit_require(net_write_full(fd, req, sizeof req) == 0, "request sent");
}

static void expect_simple_reply(int fd, uint64_t cookie)
{
    uint8_t reply[16];
    read_exact(fd, reply, sizeof reply, "reply");
    memunit_require(get_be32(reply) == NBD_SIMPLE_REPLY_MAGIC &&
                 get_be32(reply + 4) == 0 && get_be64(reply + 8) == cookie,
                 "a good simple reply to the check client");
}

/* Handshake to the default export, write a block, read four back, and
 * compare with the device's memory. */
static void check_valid_client(void)
{
    struct memunit *d = fx.devices[0];
    size_t size = d->params.block_count * d->params.block_length;
    int fd = client_connect();
    struct timeval tv = { .tv_sec = FUZZ_CLOSE_TIMEOUT_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    uint8_t hello[18];
    read_exact(fd, hello, sizeof hello, "greeting");
    memunit_require(get_be64(hello) == NBD_MAGIC &&
                 get_be64(hello + 8) == NBD_OPTS_MAGIC, "greeting magics");
    struct msg m = { 0 };
    msg_be32(&m, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    msg_go(&m, "");
    memunit_require(net_write_full(fd, m.p, m.len) == 0, "handshake sent");
    free(m.p);
    for (;;) {
        uint8_t hdr[20], data[1024];
        read_exact(fd, hdr, sizeof hdr, "option reply");
        uint32_t type = get_be32(hdr + 12), len = get_be32(hdr + 16);
        memunit_require(get_be64(hdr) == NBD_REP_MAGIC &&
                     get_be32(hdr + 8) == NBD_OPT_GO &&
                     !(type & (1u << 31)) && len <= sizeof data,
                     "GO answered without error");
        read_exact(fd, data, len, "option reply data");
        if (type == NBD_REP_ACK)
            break;
    }

    uint8_t block[512], back[4096];
    uint64_t w_off = (fx.checks * 512 * 7) % size;
    uint64_t r_off = (w_off / 4096) * 4096;
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)(fx.checks + i * 3);
    send_request(fd, NBD_CMD_WRITE, 1, w_off, sizeof block);
    memunit_require(net_write_full(fd, block, sizeof block) == 0, "data sent");
    expect_simple_reply(fd, 1);
    send_request(fd, NBD_CMD_READ, 2, r_off, sizeof back);
    expect_simple_reply(fd, 2);
    read_exact(fd, back, sizeof back, "read data");
    memunit_require(!memcmp(back, d->data + r_off, sizeof back),
                 "the check client reads the device's data");
    memunit_require(!memcmp(back + (w_off - r_off), block, sizeof block),
                 "the check client reads what it wrote");
    send_request(fd, NBD_CMD_DISC, 3, 0, 0);
    fuzz_pump(fd, NULL, 0, false, 0);
    close(fd);
    fuzz_wait_connections_gone(&fx.server->srv);
    fx.checks++;
}

/* ------------------------------------------------------------------ */
/* The entry point                                                      */
/* ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (!fx.ready) {
        setup();
        check_valid_client();
    }
    if (size < 1)
        return 0;

    uint8_t mode = input[0];
    struct msg m = { 0 };
    if (mode & MODE_HANDSHAKE)
        msg_handshake(&m, mode);
    size_t prefix = m.len;
    msg_add(&m, input + 1, size - 1);

    int fd = client_connect();
    if ((mode & MODE_HANDSHAKE) && (mode & MODE_HANG_UP)) {
        /* Hang up in transmission: let the handshake finish first, so
         * the replies to the bytes are what fails to go out. */
        if (net_write_full(fd, m.p, prefix) == 0 &&
            skip_handshake_replies(fd))
            fuzz_pump(fd, m.p + prefix, m.len - prefix, true,
                      mode & MODE_TRICKLE ? TRICKLE_CHUNK : 0);
    } else {
        fuzz_pump(fd, m.p, m.len, mode & MODE_HANG_UP,
                  mode & MODE_TRICKLE ? TRICKLE_CHUNK : 0);
    }
    close(fd);
    free(m.p);
    fuzz_wait_connections_gone(&fx.server->srv);

    if (++fx.inputs % CHECK_EVERY == 0)
        check_valid_client();
    return 0;
}
