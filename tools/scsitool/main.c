/*
 * spd-scsitool - send one SCSI command to a logical unit and print the
 * answer decoded: to a Linux SCSI device through SG_IO, to an iSCSI
 * target through libiscsi, or to libspd's own engine on an in-memory unit
 * in this process. A status other than GOOD prints the sense decoded and
 * exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scsitool.h"
#include "spd/scsi.h"
#include "util/bytes.h"

#define NAME        "spd-scsitool"
#define CHUNK_BYTES (1u << 20)    /* the most one READ or WRITE moves */
#define ALLOC_LEN   4096u         /* data-in room for the other commands */
#define DUMP_MAX    (16u << 20)   /* read without --output: a hex dump */

struct tool {
    struct target t;
    bool json, fua;
    const char *output, *input, *out_file, *initiator;
    long long in_len;             /* raw --in, or -1 */
    unsigned timeout;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, NAME ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see " NAME " --help)\n");
    return EXIT_USAGE;
}

/* A number, decimal or 0x hex, at most max; false when it is not one. */
static bool parse_u64(const char *text, uint64_t max, uint64_t *value)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    *value = v;
    return *text && *text != '-' && !*end && !errno && v <= max;
}

/* ---- running CDBs ----------------------------------------------------- */

/* Run x; for a status other than GOOD print which command it was and its
 * sense. An exit status. */
static int run_cdb(struct tool *c, struct xfer *x)
{
    if (c->t.run(&c->t, x))
        return EXIT_TRANSPORT;
    if (x->status == SPD_STATUS_GOOD)
        return EXIT_GOOD;
    out_str("failed_command", "%s", spd_cdb_name(x->cdb, x->cdb_len));
    decode_status(x);
    return EXIT_CHECK;
}

/* A data-in command of ALLOC_LEN bytes room, decoded by decode. */
static int run_in(struct tool *c, const uint8_t *cdb, uint8_t cdb_len,
                  void (*decode)(const uint8_t *, size_t))
{
    static uint8_t buf[ALLOC_LEN];
    struct xfer x = { .cdb_len = cdb_len, .dir = SPD_DIR_IN, .data = buf,
                      .len = ALLOC_LEN };
    memcpy(x.cdb, cdb, cdb_len);
    int r = run_cdb(c, &x);
    if (!r)
        decode(buf, x.got);
    return r;
}

/* Block length and count: READ CAPACITY(16), or (10) where that fails. */
static int geometry(struct tool *c, uint32_t *bl, uint64_t *blocks)
{
    uint8_t buf[32] = { 0 };
    struct xfer x = { .cdb = { SPD_SCSI_SERVICE_ACTION_IN_16,
                               SPD_SA_READ_CAPACITY_16 },
                      .cdb_len = 16, .dir = SPD_DIR_IN, .data = buf,
                      .len = 32 };
    put_be32(x.cdb + 10, 32);
    if (c->t.run(&c->t, &x))
        return EXIT_TRANSPORT;
    if (x.status == SPD_STATUS_GOOD && x.got >= 12) {
        *blocks = get_be64(buf) + 1;
        *bl = get_be32(buf + 8);
    } else {
        x = (struct xfer){ .cdb = { SPD_SCSI_READ_CAPACITY_10 }, .cdb_len = 10,
                           .dir = SPD_DIR_IN, .data = buf, .len = 8 };
        int r = run_cdb(c, &x);
        if (r)
            return r;
        *blocks = (uint64_t)get_be32(buf) + 1;
        *bl = get_be32(buf + 4);
    }
    if (*bl && *bl <= CHUNK_BYTES)
        return EXIT_GOOD;
    fprintf(stderr, NAME ": the unit reports a block length of %u bytes\n", *bl);
    return EXIT_TRANSPORT;
}

/* READ(16) or WRITE(16) of blocks at lba, data in buf. */
static int block_io(struct tool *c, bool write, uint64_t lba, uint32_t blocks,
                    uint32_t bl, uint8_t *buf)
{
    struct xfer x = { .cdb = { write ? SPD_SCSI_WRITE_16 : SPD_SCSI_READ_16,
                               c->fua ? 0x08 : 0 },      /* FUA */
                      .cdb_len = 16, .dir = write ? SPD_DIR_OUT : SPD_DIR_IN,
                      .data = buf, .len = blocks * bl };
    put_be64(x.cdb + 2, lba);
    put_be32(x.cdb + 10, blocks);
    int r = run_cdb(c, &x);
    if (!r && !write && x.got != x.len) {
        fprintf(stderr, NAME ": READ(16) brought %u of %u bytes\n", x.got, x.len);
        r = EXIT_TRANSPORT;
    }
    return r;
}

static bool write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static size_t read_full(int fd, uint8_t *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    return done;
}

/* ---- the commands ------------------------------------------------------- */

static int cmd_tur(struct tool *c, char **args)
{
    struct xfer x = { .cdb = { SPD_SCSI_TEST_UNIT_READY }, .cdb_len = 6 };
    return run_cdb(c, &x);
}

static int cmd_luns(struct tool *c, char **args)
{
    uint8_t cdb[12] = { SPD_SCSI_REPORT_LUNS };
    put_be32(cdb + 6, ALLOC_LEN);
    return run_in(c, cdb, 12, decode_luns);
}

static int cmd_inquiry(struct tool *c, char **args)
{
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 0, 0, 0, 96 };
    return run_in(c, cdb, 6, decode_inquiry);
}

static int cmd_vpd(struct tool *c, char **args)
{
    char *end;
    unsigned long page = strtoul(args[0], &end, 16);
    if (!*args[0] || *end || page > 0xff)
        return usage_error("vpd %s: the page is a hex number, 00 to ff", args[0]);
    uint8_t cdb[6] = { SPD_SCSI_INQUIRY, 0x01, (uint8_t)page };   /* EVPD */
    put_be16(cdb + 3, ALLOC_LEN);
    return run_in(c, cdb, 6, decode_vpd);
}

static int cmd_mode_sense(struct tool *c, char **args)
{
    char *end;
    unsigned long page = args[0] ? strtoul(args[0], &end, 16) : 0x3f;
    if (args[0] && (!*args[0] || *end || page > 0x3f))
        return usage_error("mode-sense %s: the page is a hex number, 00 to "
                           "3f (3f: all)", args[0]);
    uint8_t cdb[10] = { SPD_SCSI_MODE_SENSE_10, 0, (uint8_t)page };
    put_be16(cdb + 7, ALLOC_LEN);
    return run_in(c, cdb, 10, decode_mode_sense10);
}

static int cmd_capacity(struct tool *c, char **args)
{
    uint8_t cdb[10] = { SPD_SCSI_READ_CAPACITY_10 };
    return run_in(c, cdb, 10, decode_capacity10);
}

static int cmd_capacity16(struct tool *c, char **args)
{
    uint8_t cdb[16] = { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_READ_CAPACITY_16 };
    put_be32(cdb + 10, 32);
    return run_in(c, cdb, 16, decode_capacity16);
}

static int cmd_port_groups(struct tool *c, char **args)
{
    uint8_t cdb[12] = { SPD_SCSI_MAINTENANCE_IN,
                        SPD_SA_REPORT_TARGET_PORT_GROUPS };
    put_be32(cdb + 6, ALLOC_LEN);
    return run_in(c, cdb, 12, decode_port_groups);
}

static int pr_in(struct tool *c, uint8_t sa,
                 void (*decode)(const uint8_t *, size_t))
{
    uint8_t cdb[10] = { SPD_SCSI_PERSISTENT_RESERVE_IN, sa };
    put_be16(cdb + 7, ALLOC_LEN);
    return run_in(c, cdb, 10, decode);
}

static int cmd_keys(struct tool *c, char **args)
{
    return pr_in(c, 0x00, decode_pr_keys);
}

static int cmd_reservation(struct tool *c, char **args)
{
    return pr_in(c, 0x01, decode_pr_reservation);
}

static int cmd_read(struct tool *c, char **args)
{
    uint64_t lba, count, blocks;
    uint32_t bl;
    if (!parse_u64(args[0], UINT64_MAX, &lba) ||
        !parse_u64(args[1], UINT32_MAX, &count) || !count)
        return usage_error("read %s: give LBA and COUNT (1 to 2^32-1 blocks)",
                           args[0]);
    int r = geometry(c, &bl, &blocks);
    if (r)
        return r;
    if (!c->output && count * bl > DUMP_MAX)
        return usage_error("read: %s blocks is too much to dump; give "
                           "--output FILE", args[1]);
    int fd = c->output ? open(c->output, O_WRONLY | O_CREAT | O_TRUNC |
                              O_CLOEXEC, 0666) : -1;
    if (c->output && fd < 0) {
        fprintf(stderr, NAME ": %s: %s\n", c->output, strerror(errno));
        return EXIT_USAGE;
    }
    uint32_t chunk = CHUNK_BYTES / bl;
    uint8_t *buf = malloc(c->output ? (size_t)chunk * bl : count * bl);
    uint64_t done = 0;
    for (r = buf ? 0 : EXIT_TRANSPORT; !r && done < count;) {
        uint32_t n = count - done < chunk ? (uint32_t)(count - done) : chunk;
        uint8_t *p = c->output ? buf : buf + done * bl;
        r = block_io(c, false, lba + done, n, bl, p);
        if (!r && c->output && !write_all(fd, p, (size_t)n * bl)) {
            fprintf(stderr, NAME ": %s: %s\n", c->output, strerror(errno));
            r = EXIT_TRANSPORT;
        }
        done += r ? 0 : n;
    }
    out_u64("lba", lba);
    out_u64("blocks", done);
    if (!r && !c->output)
        out_hex("data", buf, count * bl);
    if (fd >= 0 && close(fd) && !r) {
        fprintf(stderr, NAME ": %s: %s\n", c->output, strerror(errno));
        r = EXIT_TRANSPORT;
    }
    free(buf);
    return r;
}

static int cmd_write(struct tool *c, char **args)
{
    uint64_t lba, blocks;
    uint32_t bl;
    struct stat st;
    if (!parse_u64(args[0], UINT64_MAX, &lba))
        return usage_error("write %s: LBA is not a number", args[0]);
    if (!c->input)
        return usage_error("write %s: give --input FILE", args[0]);
    int fd = open(c->input, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st)) {
        fprintf(stderr, NAME ": %s: %s\n", c->input, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EXIT_USAGE;
    }
    int r = geometry(c, &bl, &blocks);
    uint64_t count = r ? 0 : (uint64_t)st.st_size / bl;
    if (!r && (!st.st_size || st.st_size % bl || count > UINT32_MAX)) {
        fprintf(stderr, NAME ": %s holds %lld bytes: not 1 to 2^32-1 whole "
                "blocks of %u bytes; nothing written\n", c->input,
                (long long)st.st_size, bl);
        r = EXIT_USAGE;
    }
    uint32_t chunk = r ? 0 : CHUNK_BYTES / bl;
    uint8_t *buf = r ? NULL : malloc((size_t)chunk * bl);
    if (!r && !buf)
        r = EXIT_TRANSPORT;
    uint64_t done = 0;
    while (!r && done < count) {
        uint32_t n = count - done < chunk ? (uint32_t)(count - done) : chunk;
        if (read_full(fd, buf, (size_t)n * bl) != (size_t)n * bl) {
            fprintf(stderr, NAME ": %s: shorter than it was\n", c->input);
            r = EXIT_TRANSPORT;
        } else if (!(r = block_io(c, true, lba + done, n, bl, buf))) {
            done += n;
        }
    }
    if (r != EXIT_USAGE) {
        out_u64("lba", lba);
        out_u64("blocks", done);
    }
    free(buf);
    close(fd);
    return r;
}

static int cmd_unmap(struct tool *c, char **args)
{
    uint64_t lba, count;
    if (!parse_u64(args[0], UINT64_MAX, &lba) ||
        !parse_u64(args[1], UINT32_MAX, &count) || !count)
        return usage_error("unmap %s: give LBA and COUNT (1 to 2^32-1 blocks)",
                           args[0]);
    uint8_t list[24] = { 0 };
    put_be16(list, 22);                 /* UNMAP data length */
    put_be16(list + 2, 16);             /* block descriptor data length */
    put_be64(list + 8, lba);
    put_be32(list + 16, (uint32_t)count);
    struct xfer x = { .cdb = { SPD_SCSI_UNMAP }, .cdb_len = 10,
                      .dir = SPD_DIR_OUT, .data = list, .len = 24 };
    put_be16(x.cdb + 7, 24);
    return run_cdb(c, &x);
}

static int cmd_sync(struct tool *c, char **args)
{
    struct xfer x = { .cdb = { SPD_SCSI_SYNCHRONIZE_CACHE_10 }, .cdb_len = 10 };
    return run_cdb(c, &x);
}

static int cmd_lba_status(struct tool *c, char **args)
{
    uint64_t lba;
    if (!parse_u64(args[0], UINT64_MAX, &lba))
        return usage_error("lba-status %s: LBA is not a number", args[0]);
    uint8_t cdb[16] = { SPD_SCSI_SERVICE_ACTION_IN_16, SPD_SA_GET_LBA_STATUS };
    put_be64(cdb + 2, lba);
    put_be32(cdb + 10, ALLOC_LEN);
    return run_in(c, cdb, 16, decode_lba_status);
}

/* A CDB in hex: pairs of digits, spaces and colons between bytes allowed. */
static int parse_cdb(const char *text, struct xfer *x)
{
    for (const char *p = text; *p; p++) {
        if (*p == ' ' || *p == ':')
            continue;
        int hi = hex_digit(p[0]), lo = hi < 0 ? -1 : hex_digit(p[1]);
        if (lo < 0 || x->cdb_len == SPD_CDB_MAX)
            return -1;
        x->cdb[x->cdb_len++] = (uint8_t)(hi << 4 | lo);
        p++;
    }
    return x->cdb_len >= 6 ? 0 : -1;
}

static int cmd_raw(struct tool *c, char **args)
{
    struct xfer x = { 0 };
    if (parse_cdb(args[0], &x))
        return usage_error("raw %s: not a CDB of 6 to 32 hex bytes", args[0]);
    if (c->in_len >= 0 && c->out_file)
        return usage_error("raw %s: --in and --out exclude each other", args[0]);
    int r = 0;
    if (c->out_file) {                  /* data-out: the whole file */
        int fd = open(c->out_file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) || st.st_size > DUMP_MAX) {
            fprintf(stderr, NAME ": --out %s: %s\n", c->out_file,
                    fd < 0 ? strerror(errno) : "larger than 16 MiB");
            if (fd >= 0)
                close(fd);
            return EXIT_USAGE;
        }
        x.dir = SPD_DIR_OUT;
        x.len = (uint32_t)st.st_size;
        x.data = malloc(x.len ? x.len : 1);
        if (!x.data || read_full(fd, x.data, x.len) != x.len)
            r = EXIT_TRANSPORT;
        close(fd);
    } else if (c->in_len > 0) {
        x.dir = SPD_DIR_IN;
        x.len = (uint32_t)c->in_len;
        if (!(x.data = malloc(x.len)))
            r = EXIT_TRANSPORT;
    }
    if (!r)
        r = run_cdb(c, &x);
    if (!r && x.dir == SPD_DIR_IN && c->output) {
        int fd = open(c->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0 || !write_all(fd, x.data, x.got) || close(fd)) {
            fprintf(stderr, NAME ": %s: %s\n", c->output, strerror(errno));
            r = EXIT_TRANSPORT;
        }
    } else if (!r && x.dir == SPD_DIR_IN) {
        out_hex("data", x.data, x.got);
    }
    free(x.data);
    return r;
}

static const struct command {
    const char *name;
    int args_min, args_max;
    int (*run)(struct tool *c, char **args);
    const char *usage;
} commands[] = {
    { "tur", 0, 0, cmd_tur, "TEST UNIT READY" },
    { "luns", 0, 0, cmd_luns, "REPORT LUNS" },
    { "inquiry", 0, 0, cmd_inquiry, "standard INQUIRY data" },
    { "vpd", 1, 1, cmd_vpd, "PAGE: a VPD page (00 80 83 b0 b1 b2 decoded)" },
    { "mode-sense", 0, 1, cmd_mode_sense, "[PAGE]: MODE SENSE(10), all pages "
      "by default" },
    { "capacity", 0, 0, cmd_capacity, "READ CAPACITY(10)" },
    { "capacity16", 0, 0, cmd_capacity16, "READ CAPACITY(16)" },
    { "read", 2, 2, cmd_read, "LBA COUNT: READ(16), a hex dump or --output FILE" },
    { "write", 1, 1, cmd_write, "LBA --input FILE: WRITE(16) of the file's "
      "blocks" },
    { "unmap", 2, 2, cmd_unmap, "LBA COUNT: UNMAP one range" },
    { "sync", 0, 0, cmd_sync, "SYNCHRONIZE CACHE(10) of the whole unit" },
    { "lba-status", 1, 1, cmd_lba_status, "LBA: GET LBA STATUS" },
    { "port-groups", 0, 0, cmd_port_groups, "REPORT TARGET PORT GROUPS" },
    { "keys", 0, 0, cmd_keys, "PERSISTENT RESERVE IN, READ KEYS" },
    { "reservation", 0, 0, cmd_reservation, "PERSISTENT RESERVE IN, READ "
      "RESERVATION" },
    { "raw", 1, 1, cmd_raw, "CDB-HEX [--in N | --out FILE]: any command" },
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void help(void)
{
    printf("Usage: " NAME " [OPTION]... TARGET COMMAND [ARG]...\n"
           "Send one SCSI command and print the answer decoded.\n\n"
           "TARGET:\n"
           "  /dev/sgN, /dev/sdX      a Linux SCSI device, through SG_IO\n"
           "  iscsi://[USER%%SECRET@]HOST[:PORT]/IQN/LUN\n"
           "                          an iSCSI logical unit (libiscsi)\n"
           "  mem:SIZE[/BLOCK]        Spd's engine on an in-memory unit in "
           "this process\n\nCOMMAND:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].usage);
    printf("\nOptions:\n"
           "  -j, --json              print one JSON object\n"
           "  -o, --output FILE       read, raw: data-in to FILE\n"
           "  -i, --input FILE        write: the data to write\n"
           "      --in N              raw: N bytes of data-in room\n"
           "      --out FILE          raw: FILE's bytes as data-out\n"
           "      --fua               read, write: set FUA\n"
           "  -t, --timeout SECONDS   per command (default 30)\n"
           "      --initiator IQN     iscsi://: log in as IQN, the same "
           "initiator port\n"
           "                          on every run (for reservations)\n"
           "  -h, --help              this help\n"
           "  -V, --version           the version\n\n"
           "Exit status: 0 GOOD, 1 another status (the sense is printed), "
           "2 bad command line, 3 target unreachable.\n");
}

static int parse_options(int argc, char **argv, struct tool *c)
{
    static const struct option longs[] = {
        { "json", no_argument, NULL, 'j' },
        { "output", required_argument, NULL, 'o' },
        { "input", required_argument, NULL, 'i' },
        { "in", required_argument, NULL, 'I' },
        { "out", required_argument, NULL, 'O' },
        { "fua", no_argument, NULL, 'F' },
        { "timeout", required_argument, NULL, 't' },
        { "initiator", required_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    uint64_t v;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":jo:i:t:hV", longs, NULL)) != -1) {
        switch (opt) {
        case 'j': c->json = true; break;
        case 'o': c->output = optarg; break;
        case 'i': c->input = optarg; break;
        case 'O': c->out_file = optarg; break;
        case 'F': c->fua = true; break;
        case 'N':
            if (!*optarg || strlen(optarg) > 223)
                return usage_error("--initiator %s: not an iSCSI name of 1 "
                                   "to 223 characters", optarg);
            c->initiator = optarg;
            break;
        case 'I':
            if (!parse_u64(optarg, DUMP_MAX, &v))
                return usage_error("--in %s: not 0 to 16777216 bytes", optarg);
            c->in_len = (long long)v;
            break;
        case 't':
            if (!parse_u64(optarg, 3600, &v) || !v)
                return usage_error("--timeout %s: not 1 to 3600 seconds", optarg);
            c->timeout = (unsigned)v;
            break;
        case 'h':
            help();
            exit(EXIT_GOOD);
        case 'V':
            printf(NAME " %s (libspd %s)\n", SPD_VERSION_STRING, spd_version());
            exit(EXIT_GOOD);
        case ':':
            return usage_error("%s needs an argument", argv[optind - 1]);
        default:
            return usage_error("%s: unknown option", argv[optind - 1]);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct tool c = { .in_len = -1, .timeout = 30 };
    int r = parse_options(argc, argv, &c);
    if (r)
        return r;
    if (argc - optind < 2)
        return usage_error("%s", "give a TARGET and a COMMAND");
    const char *target = argv[optind], *name = argv[optind + 1];
    char **args = argv + optind + 2;
    int nargs = argc - optind - 2;
    const struct command *cmd = NULL;
    for (size_t i = 0; i < COMMAND_COUNT && !cmd; i++)
        if (!strcmp(commands[i].name, name))
            cmd = &commands[i];
    if (!cmd)
        return usage_error("%s: no such command", name);
    if (nargs < cmd->args_min || nargs > cmd->args_max)
        return usage_error("%s: wrong number of arguments", name);
    char *padded[2] = { nargs > 0 ? args[0] : NULL, nargs > 1 ? args[1] : NULL };
    if (c.initiator && strncmp(target, "iscsi://", 8))
        return usage_error("--initiator: for iscsi:// targets, not %s", target);
    if ((r = target_open(&c.t, target, c.timeout, c.initiator)))
        return r;
    out_begin(c.json);
    r = cmd->run(&c, padded);
    if (r != EXIT_CHECK && r != EXIT_USAGE && r != EXIT_TRANSPORT)
        out_str("status", "GOOD");
    out_end();
    c.t.close(&c.t);
    return r;
}
