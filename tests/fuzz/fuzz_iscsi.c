/*
 * fuzz_iscsi.c - arbitrary bytes from an initiator of a real
 * spd_iscsi_target: the login phase's PDU framing and stages, then the
 * full feature phase's receive path as a connection parses it (BHS, AHS,
 * data segments, header and data digests, CmdSN numbering), every PDU
 * handler (SCSI commands with immediate and solicited data, Data-Out,
 * R2T, task management, NOP, Text, Logout), and the unit core behind them.
 *
 * The target is created once per process on 127.0.0.1 (a free port), one
 * name with two logical units over in-memory devices (memunit.h,
 * checking):
 *   LUN 0  512-byte blocks x 256, unmap reading zeros, 16 KiB max transfer
 *   LUN 1  4096-byte blocks x 16, write protected, I/O on LBA 5 fails
 *
 * Input: one mode byte, then the bytes to send.
 *   bit 0  log in first (a valid Login Request straight to full feature
 *          phase: InitialR2T=No, ImmediateData=Yes, FirstBurstLength
 *          65536, MaxBurstLength 262144), so the bytes arrive as full
 *          feature PDUs. Without it the bytes are the login itself; an
 *          input naming AuthMethod or CHAP_ is skipped then: a failed
 *          authentication waits (iscsi_chap.c), and fuzz_iscsi_chap
 *          covers CHAP.
 *   bit 1  HeaderDigest=CRC32C     bit 2  DataDigest=CRC32C (with bit 0)
 *   bit 3  fix the digests: each PDU of the bytes (framed by its own
 *          TotalAHSLength and DataSegmentLength) gets the right header
 *          and data digests, so the fuzzer gets past them
 *   bit 4  a discovery session instead of a normal one
 *   bit 5  hang up: close as soon as the bytes are sent, replies unread
 *   bit 6  trickle: send TRICKLE_CHUNK bytes at a time, pausing after each
 *   bit 7  number the commands: each PDU of the bytes that carries a
 *          CmdSN gets the next one (immediate ones the current one)
 *
 * Invariants: no crash or sanitizer report in the target's threads; every
 * device call inside the unit (the device asserts it); the target closes
 * a connection whose initiator stopped sending within FUZZ_CLOSE_TIMEOUT_MS;
 * and, every CHECK_EVERY inputs, a fresh valid initiator logs in, pings,
 * writes a block and reads back the device's data.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/bytes.h"
#include "util/crc.h"
#include "memunit.h"
#include "net.h"
#include "spd/iscsi.h"
#include "transport/iscsi_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

#define CHECK_EVERY      8
#define TRICKLE_CHUNK    (8 * ISCSI_BHS_LEN)
#define TARGET_NAME      "iqn.2026-01.org.spd:fuzz"

enum {
    MODE_LOGIN = 0x01,
    MODE_HEADER_DIGEST = 0x02,
    MODE_DATA_DIGEST = 0x04,
    MODE_FIX_DIGESTS = 0x08,
    MODE_DISCOVERY = 0x10,
    MODE_HANG_UP = 0x20,
    MODE_TRICKLE = 0x40,
    MODE_NUMBER = 0x80,
};

static struct {
    bool ready;
    struct memunit *devices[2];
    spd_iscsi_target *target;
    int port;
    unsigned long inputs;
    unsigned long checks;
} fx;

/* ------------------------------------------------------------------ */
/* Setup                                                                */
/* ------------------------------------------------------------------ */

static void teardown(void)
{
    spd_iscsi_target_destroy(fx.target);
    for (int i = 0; i < 2; i++)
        memunit_destroy(fx.devices[i]);
}

static void add_lun(unsigned lun, const spd_params *p, int64_t fail_lba)
{
    struct memunit *d = memunit_create_modes(p, 0, MEMUNIT_FAST |
                                             MEMUNIT_CHECKING | MEMUNIT_EXTENT);
    if (!d)
        fprintf(stderr, "fuzz: %s\n", spd_errmsg());
    memunit_require(d != NULL, "unit created");
    memunit_fill(d);
    d->fail_lba = fail_lba;
    d->fail_result = -EIO;
    fx.devices[lun] = d;
    if (getenv("SPD_FUZZ_LOG"))         /* to see what a saved input does */
        spd_unit_set_debug_log(d->unit, SPD_DEBUG_ALL, stderr);
    memunit_require(spd_iscsi_target_add(fx.target, d->unit, TARGET_NAME,
                                         lun) == 0, "LUN added");
}

static void setup(void)
{
    fx.target = spd_iscsi_target_create(NULL);
    memunit_require(fx.target != NULL, "target created");
    spd_params p = { SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x69, 0x73, 0x63, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
                  0, 0, 1 },
        .block_length = 512, .block_count = 256, .cache_supported = true,
        .unmap_supported = true, .unmap_reads_zero = true,
        .max_transfer_length = 16384,
    };
    add_lun(0, &p, -1);
    p = (spd_params){ SPD_PARAMS_INIT,
        .uuid = { 0x5f, 0x69, 0x73, 0x63, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0,
                  0, 0, 2 },
        .block_length = 4096, .block_count = 16, .write_protected = true,
    };
    add_lun(1, &p, 5);
    if (spd_iscsi_target_listen(fx.target, "iscsi://127.0.0.1:0") ||
        spd_iscsi_target_start(fx.target)) {
        fprintf(stderr, "fuzz: listen: %s\n", spd_errmsg());
        memunit_require(false, "target listening");
    }
    fx.port = spd_iscsi_target_port(fx.target);
    memunit_require(fx.port > 0, "target port");
    atexit(teardown);
    fx.ready = true;
}

/* ------------------------------------------------------------------ */
/* The initiator side                                                   */
/* ------------------------------------------------------------------ */

static int client_connect(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)fx.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memunit_require(fd >= 0, "socket");
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (r && errno == EINTR) {
        /* A signal (the fuzzer's timer) interrupted it: the connection
         * goes on being made; wait for its outcome. */
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int err = 0;
        socklen_t len = sizeof err;
        while (poll(&p, 1, FUZZ_CLOSE_TIMEOUT_MS) < 0 && errno == EINTR)
            continue;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        r = err ? -1 : 0;
        errno = err;
    }
    if (r) {
        fprintf(stderr, "fuzz: connect to 127.0.0.1:%d: %s\n", fx.port,
                strerror(errno));
        memunit_require(false, "connect to the target");
    }
    struct timeval tv = { .tv_sec = FUZZ_CLOSE_TIMEOUT_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void msg_key(struct msg *m, const char *key, const char *value)
{
    msg_add(m, key, strlen(key));
    msg_add(m, "=", 1);
    msg_add(m, value, strlen(value) + 1);
}

/* A PDU with data (no digests) of len bytes, padded. */
static void msg_pdu(struct msg *m, uint8_t *hdr, const void *data,
                    uint32_t len)
{
    static const uint8_t zeros[4];
    put_be24(hdr + 5, len);
    msg_add(m, hdr, ISCSI_BHS_LEN);
    msg_add(m, data, len);
    msg_add(m, zeros, pad4(len));
}

/* Read one PDU of the target's (no digests): its header, and its data
 * into data (at most cap bytes kept); false when the target closed. */
static bool read_pdu(int fd, uint8_t *hdr, uint8_t *data, size_t cap,
                     uint32_t *len)
{
    if (net_read_full(fd, hdr, ISCSI_BHS_LEN) < 0)
        return false;
    uint8_t ahs[1024];
    if (hdr[4] && net_read_full(fd, ahs, hdr[4] * 4u) < 0)
        return false;
    *len = get_be24(hdr + 5);
    uint32_t total = *len + pad4(*len);
    for (uint32_t got = 0; got < total;) {
        uint8_t chunk[4096];
        uint32_t n = total - got < sizeof chunk ? total - got : sizeof chunk;
        if (net_read_full(fd, chunk, n) < 0)
            return false;
        if (got < cap)
            memcpy(data + got, chunk, got + n <= cap ? n : cap - got);
        got += n;
    }
    return true;
}

/* Log in straight to full feature phase with the digests mode asks for:
 * false when the target refused. */
static bool login(int fd, uint8_t mode)
{
    uint8_t hdr[ISCSI_BHS_LEN] = {
        ISCSI_OP_LOGIN_REQ | ISCSI_OP_IMMEDIATE,
        ISCSI_LOGIN_TRANSIT | ISCSI_STAGE_OPERATIONAL << 2 | ISCSI_STAGE_FULL,
    };
    static const uint8_t isid[6] = { 0x80, 0, 0, 0x5f, 0, 1 };
    memcpy(hdr + 8, isid, sizeof isid);
    struct msg text = { 0 }, m = { 0 };
    bool discovery = mode & MODE_DISCOVERY;
    msg_key(&text, "InitiatorName", "iqn.2026-01.org.spd:fuzz-initiator");
    msg_key(&text, "SessionType", discovery ? "Discovery" : "Normal");
    if (!discovery)
        msg_key(&text, "TargetName", TARGET_NAME);
    msg_key(&text, "HeaderDigest",
            mode & MODE_HEADER_DIGEST ? "CRC32C" : "None");
    msg_key(&text, "DataDigest", mode & MODE_DATA_DIGEST ? "CRC32C" : "None");
    msg_key(&text, "MaxRecvDataSegmentLength", "262144");
    if (!discovery) {
        msg_key(&text, "InitialR2T", "No");
        msg_key(&text, "ImmediateData", "Yes");
        msg_key(&text, "FirstBurstLength", "65536");
        msg_key(&text, "MaxBurstLength", "262144");
    }
    msg_pdu(&m, hdr, text.p, (uint32_t)text.len);
    bool ok = net_write_full(fd, m.p, m.len) == 0;
    free(text.p);
    free(m.p);
    uint8_t rsp[ISCSI_BHS_LEN];
    uint32_t len;
    ok = ok && read_pdu(fd, rsp, NULL, 0, &len);
    return ok && (rsp[0] & ISCSI_OP_MASK) == ISCSI_OP_LOGIN_RSP &&
           rsp[36] == 0 && rsp[37] == 0 &&
           (rsp[1] & (ISCSI_LOGIN_TRANSIT | 3)) ==
               (ISCSI_LOGIN_TRANSIT | ISCSI_STAGE_FULL);
}

/* Opcodes of PDUs an initiator numbers with a CmdSN. */
static bool has_cmdsn(uint8_t op)
{
    return op == ISCSI_OP_NOP_OUT || op == ISCSI_OP_SCSI_CMD ||
           op == ISCSI_OP_TMF_REQ || op == ISCSI_OP_TEXT_REQ ||
           op == ISCSI_OP_LOGOUT_REQ;
}

/* Walk the bytes as PDUs, framed as the target frames them, numbering
 * commands and filling in digests as the mode asks. */
static void fix_pdus(uint8_t *b, size_t len, uint8_t mode)
{
    bool hd = mode & MODE_HEADER_DIGEST, dd = mode & MODE_DATA_DIGEST;
    uint32_t cmdsn = 0;             /* the login's */
    for (size_t o = 0; len - o >= ISCSI_BHS_LEN;) {
        uint8_t *h = b + o;
        uint32_t ahs = h[4] * 4u, dsl = get_be24(h + 5);
        uint8_t op = h[0] & ISCSI_OP_MASK;
        if ((mode & MODE_NUMBER) && has_cmdsn(op)) {
            put_be32(h + 24, cmdsn);
            if (!(h[0] & ISCSI_OP_IMMEDIATE))
                cmdsn++;
        }
        size_t hlen = ISCSI_BHS_LEN + ahs;
        if (len - o < hlen + (hd ? ISCSI_DIGEST_LEN : 0))
            return;
        if (hd && (mode & MODE_FIX_DIGESTS))
            put_le32(h + hlen, crc32c(0, h, hlen));
        o += hlen + (hd ? ISCSI_DIGEST_LEN : 0);
        size_t dlen = (size_t)dsl + pad4(dsl);
        if (len - o < dlen + (dd && dsl ? ISCSI_DIGEST_LEN : 0))
            return;
        if (dd && dsl && (mode & MODE_FIX_DIGESTS))
            put_le32(b + o + dlen, iscsi_data_digest(b + o, dsl));
        o += dlen + (dd && dsl ? ISCSI_DIGEST_LEN : 0);
    }
}

/* ------------------------------------------------------------------ */
/* The valid initiator of the periodic check                           */
/* ------------------------------------------------------------------ */

/* A SCSI command with a 10-byte CDB on LUN 0, write data immediate. */
static void send_command(int fd, uint32_t itt, uint32_t cmdsn,
                         const uint8_t cdb[10], bool write,
                         const uint8_t *data, uint32_t len)
{
    uint8_t hdr[ISCSI_BHS_LEN] = {
        ISCSI_OP_SCSI_CMD,
        ISCSI_FLAG_FINAL | (write ? ISCSI_CMD_WRITE : ISCSI_CMD_READ) | 1,
    };
    put_be32(hdr + 16, itt);
    put_be32(hdr + 20, len);
    put_be32(hdr + 24, cmdsn);
    memcpy(hdr + 32, cdb, 10);
    struct msg m = { 0 };
    msg_pdu(&m, hdr, data, write ? len : 0);
    memunit_require(net_write_full(fd, m.p, m.len) == 0, "command sent");
    free(m.p);
}

/* Read a command's answers until its status: GOOD, with the Data-In
 * gathered into data. */
static void expect_good(int fd, uint32_t itt, uint8_t *data, size_t cap)
{
    for (;;) {
        uint8_t hdr[ISCSI_BHS_LEN], buf[65536];
        uint32_t len;
        memunit_require(read_pdu(fd, hdr, buf, sizeof buf, &len),
                        "the target answers a valid initiator");
        uint8_t op = hdr[0] & ISCSI_OP_MASK;
        memunit_require(get_be32(hdr + 16) == itt &&
                        (op == ISCSI_OP_DATA_IN || op == ISCSI_OP_SCSI_RSP),
                        "Data-In or SCSI Response for the command");
        if (op == ISCSI_OP_DATA_IN) {
            uint32_t off = get_be32(hdr + 40);
            memunit_require(off + len <= cap && len <= sizeof buf,
                            "Data-In within the transfer");
            memcpy(data + off, buf, len);
            if (!(hdr[1] & ISCSI_DATA_STATUS))
                continue;
        } else {
            memunit_require(hdr[2] == 0, "response: completed");
        }
        memunit_require(hdr[3] == 0, "status GOOD");
        return;
    }
}

/* TEST UNIT READY until GOOD: a new I_T nexus gets the power-on unit
 * attention first (and the resets fuzzed sessions send bring theirs).
 * Returns the next CmdSN. */
static uint32_t clear_unit_attentions(int fd, uint32_t cmdsn)
{
    static const uint8_t tur[10] = { 0 };
    for (uint32_t itt = 10;; itt++) {
        memunit_require(itt < 18, "unit attentions end");
        send_command(fd, itt, cmdsn++, tur, false, NULL, 0);
        uint8_t hdr[ISCSI_BHS_LEN], buf[512];
        uint32_t len;
        memunit_require(read_pdu(fd, hdr, buf, sizeof buf, &len) &&
                        (hdr[0] & ISCSI_OP_MASK) == ISCSI_OP_SCSI_RSP &&
                        get_be32(hdr + 16) == itt,
                        "SCSI Response for TEST UNIT READY");
        if (hdr[3] == 0)
            return cmdsn;
        memunit_require(hdr[3] == 2 && len >= 5 && (buf[4] & 0x0f) == 6,
                        "TEST UNIT READY: GOOD or a unit attention");
    }
}

/* Log in, ping, write a block to LUN 0, read four back, and compare with
 * the device's memory. */
static void check_valid_client(void)
{
    struct memunit *d = fx.devices[0];
    int fd = client_connect();
    memunit_require(login(fd, 0), "a valid initiator logs in");

    uint8_t hdr[ISCSI_BHS_LEN] = { ISCSI_OP_NOP_OUT | ISCSI_OP_IMMEDIATE,
                                   ISCSI_FLAG_FINAL };
    static const uint8_t ping[8] = "pingdata";
    put_be32(hdr + 16, 1);
    put_be32(hdr + 20, ISCSI_RSVD_TAG);
    struct msg m = { 0 };
    msg_pdu(&m, hdr, ping, sizeof ping);
    memunit_require(net_write_full(fd, m.p, m.len) == 0, "NOP-Out sent");
    free(m.p);
    uint8_t rsp[ISCSI_BHS_LEN], echo[sizeof ping];
    uint32_t len;
    memunit_require(read_pdu(fd, rsp, echo, sizeof echo, &len) &&
                    (rsp[0] & ISCSI_OP_MASK) == ISCSI_OP_NOP_IN &&
                    get_be32(rsp + 16) == 1 && len == sizeof ping &&
                    !memcmp(echo, ping, sizeof ping),
                    "NOP-In echoes the ping");

    uint8_t block[512], back[2048];
    uint32_t blocks = (uint32_t)d->params.block_count;
    uint32_t lba = (uint32_t)(fx.checks * 7 % blocks);
    uint32_t first = lba / 4 * 4;
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (uint8_t)(fx.checks + i * 3);
    uint32_t sn = clear_unit_attentions(fd, 0);
    uint8_t cdb[10] = { 0x2a };                     /* WRITE(10) */
    put_be32(cdb + 2, lba);
    put_be16(cdb + 7, 1);
    send_command(fd, 2, sn, cdb, true, block, sizeof block);
    expect_good(fd, 2, NULL, 0);
    cdb[0] = 0x28;                                  /* READ(10) */
    put_be32(cdb + 2, first);
    put_be16(cdb + 7, 4);
    send_command(fd, 3, sn + 1, cdb, false, NULL, sizeof back);
    expect_good(fd, 3, back, sizeof back);
    memunit_require(!memcmp(back, d->data + (size_t)first * 512, sizeof back),
                    "the check initiator reads the device's data");
    memunit_require(!memcmp(back + (lba - first) * 512, block, sizeof block),
                    "the check initiator reads what it wrote");
    fuzz_pump(fd, NULL, 0, false, 0);
    close(fd);
    fuzz_wait_connections_gone(&fx.target->srv);
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
    if (!(mode & MODE_LOGIN) &&
        (memmem(input + 1, size - 1, "AuthMethod", 10) ||
         memmem(input + 1, size - 1, "CHAP_", 5)))
        return 0;

    uint8_t *bytes = malloc(size);
    memunit_require(bytes != NULL, "out of memory");
    memcpy(bytes, input + 1, size - 1);
    int fd = client_connect();
    if (!(mode & MODE_LOGIN)) {
        fuzz_pump(fd, bytes, size - 1, mode & MODE_HANG_UP,
                  mode & MODE_TRICKLE ? TRICKLE_CHUNK : 0);
    } else if (login(fd, mode)) {
        fix_pdus(bytes, size - 1, mode);
        fuzz_pump(fd, bytes, size - 1, mode & MODE_HANG_UP,
                  mode & MODE_TRICKLE ? TRICKLE_CHUNK : 0);
    } else {
        memunit_require(false, "a valid login succeeds");
    }
    close(fd);
    free(bytes);
    fuzz_wait_connections_gone(&fx.target->srv);

    if (++fx.inputs % CHECK_EVERY == 0)
        check_valid_client();
    return 0;
}
