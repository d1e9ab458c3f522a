/*
 * options.c - the command line every device shares, and the device's own
 * options beside it (see cli.h). Every value is checked here, before the
 * storage is opened or anything is served.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/* Long-only options get codes beyond any letter; a program's own options
 * get PROGRAM_OPTION_BASE + their index. */
enum {
    OPT_NO_CACHE = 256,
    OPT_PRODUCT_REVISION,
    OPT_WRITE_PROTECT,
    OPT_PHYSICAL_BLOCK_LENGTH,
    OPT_NO_UNMAP,
    OPT_CHECK,
    OPT_NBD,
    OPT_FUSE,
    OPT_ISCSI,
    OPT_ISCSI_TARGET,
    OPT_CHAP_FILE,
    OPT_PID_FILE,
    OPT_SOCKET_MODE,
    OPT_MAX_CONNECTIONS,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_MAX_PER_PEER,
    OPT_MAX_MEMORY,
    OPT_MAX_CONNECTION_MEMORY,
    OPT_UBLK,
    OPT_QUEUES,
    OPT_QUEUE_DEPTH,
    OPT_UBLK_RECOVERY,
    OPT_TCMU,
    OPT_TCMU_LOOP,
    OPT_TCMU_RESERVATIONS,
    OPT_TLS,
    OPT_TLS_CERTIFICATES,
    OPT_TLS_PSK,
    OPT_TLS_VERIFY_PEER,
    OPT_PORT_GROUP,
    OPT_ALUA,
    OPT_ALUA_FILE,
    PROGRAM_OPTION_BASE = 1024,
};

#define MAX_OPTIONS 64
#define HELP_INDENT 28
#define HELP_WIDTH  79

/* What an option handler returns to go on parsing. */
#define GO_ON CLI_CONTINUE

int cli_usage_error(const struct cli_config *cfg, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cfg->dev->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return SPD_EXIT_USAGE;
}

static int bad_value(const struct cli_config *cfg, const char *option,
                     const char *value, const char *why)
{
    return cli_usage_error(cfg, "--%s %s: %s", option, value, why);
}

/* A whole decimal number, no sign, no junk. */
static bool parse_number(const char *text, uint64_t *value)
{
    char *end;
    if (*text < '0' || *text > '9')
        return false;
    errno = 0;
    *value = strtoull(text, &end, 10);
    return !errno && !*end;
}

int cli_parse_size(const char *text, uint64_t *bytes)
{
    static const char suffixes[] = "KMGT";
    char digits[32];
    size_t len = strlen(text);
    const char *suffix = len ? strchr(suffixes, text[len - 1] & ~0x20) : NULL;
    unsigned shift = 0;
    uint64_t v;

    if (suffix && *suffix) {
        shift = 10 * (unsigned)(suffix - suffixes + 1);
        len--;
    }
    if (!len || len >= sizeof digits)
        return len ? -ERANGE : -EINVAL;
    memcpy(digits, text, len);
    digits[len] = '\0';
    if (strspn(digits, "0123456789") != len)
        return -EINVAL;
    if (!parse_number(digits, &v) || v > (UINT64_MAX >> shift))
        return -ERANGE;
    *bytes = v << shift;
    return 0;
}

/* INQUIRY fields hold printable ASCII only. */
static int take_text(struct cli_config *cfg, const char *option,
                     const char *arg, char *field, size_t max)
{
    size_t len = strlen(arg);
    for (size_t i = 0; i < len; i++)
        if (arg[i] < 0x20 || arg[i] > 0x7e)
            len = max + 1;
    if (len > max) {
        char why[64];
        snprintf(why, sizeof why, "at most %zu printable ASCII characters",
                 max);
        return bad_value(cfg, option, arg, why);
    }
    memcpy(field, arg, len + 1);
    return GO_ON;
}

static int take_block_count(struct cli_config *cfg, const char *arg)
{
    if (!parse_number(arg, &cfg->params.block_count) ||
        !cfg->params.block_count)
        return bad_value(cfg, "block-count", arg, strspn(arg, "0123456789")
                         == strlen(arg) && *arg != '0' ? "too large"
                         : "not a number of blocks above 0");
    cfg->given |= SPD_GIVEN_SIZE;
    return GO_ON;
}

static int take_block_length(struct cli_config *cfg, const char *arg)
{
    uint64_t v;
    if (!parse_number(arg, &v) || v < 512 || v > 65536 || (v & (v - 1)))
        return bad_value(cfg, "block-length", arg, "not a power of two from "
                         "512 to 65536");
    cfg->params.block_length = (uint32_t)v;
    cfg->given |= SPD_GIVEN_BLOCK_LENGTH;
    return GO_ON;
}

static int take_physical_block_length(struct cli_config *cfg,
                                      const char *arg)
{
    uint64_t v;
    if (!parse_number(arg, &v) || v < 512 || v > (1u << 24) || (v & (v - 1)))
        return bad_value(cfg, "physical-block-length", arg, "not a power of "
                         "two from 512 to 16M");
    cfg->params.physical_block_length = (uint32_t)v;
    return GO_ON;
}

static int take_size(struct cli_config *cfg, const char *arg)
{
    int r = cli_parse_size(arg, &cfg->size);
    if (r == -ERANGE)
        return bad_value(cfg, "size", arg, "too large (at most 16 EiB)");
    if (r || !cfg->size)
        return bad_value(cfg, "size", arg, "not a size above 0 (a number "
                         "with K, M, G or T, like 64M)");
    cfg->given |= SPD_GIVEN_SIZE;
    return GO_ON;
}

static int take_product_id(struct cli_config *cfg, const char *arg)
{
    return take_text(cfg, "product-id", arg, cfg->params.product_id,
                     SPD_PRODUCT_ID_MAX);
}

static int take_product_revision(struct cli_config *cfg, const char *arg)
{
    return take_text(cfg, "product-revision", arg,
                     cfg->params.product_revision, SPD_PRODUCT_REVISION_MAX);
}

static int take_write_protect(struct cli_config *cfg, const char *arg)
{
    cfg->params.write_protected = true;
    return GO_ON;
}

static int take_no_cache(struct cli_config *cfg, const char *arg)
{
    cfg->params.cache_supported = false;
    return GO_ON;
}

static int take_no_unmap(struct cli_config *cfg, const char *arg)
{
    cfg->params.unmap_supported = cfg->params.unmap_reads_zero = false;
    return GO_ON;
}

static int take_uuid(struct cli_config *cfg, const char *arg)
{
    static const uint8_t zero[16];
    if (spd_uuid_parse(arg, cfg->params.uuid) ||
        !memcmp(cfg->params.uuid, zero, 16))
        return bad_value(cfg, "uuid", arg, "not a UUID other than all zeros "
                         "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
    cfg->given |= SPD_GIVEN_UUID;
    return GO_ON;
}

static int take_debug(struct cli_config *cfg, const char *arg)
{
    if (spd_debug_mask_parse(arg, &cfg->debug_mask))
        return bad_value(cfg, "debug", arg, "not a number or a list of "
                         "read,write,flush,unmap,scsi,all");
    return GO_ON;
}

static int take_debug_log(struct cli_config *cfg, const char *arg)
{
    cfg->debug_log = arg;
    return GO_ON;
}

static int take_threads(struct cli_config *cfg, const char *arg)
{
    uint64_t v;
    if (!parse_number(arg, &v) || v > 1024)
        return bad_value(cfg, "threads", arg, "not a number from 0 to 1024");
    cfg->threads = (int)v;
    return GO_ON;
}

static int take_port_group(struct cli_config *cfg, const char *arg)
{
    uint64_t v;
    if (!parse_number(arg, &v) || v < 1 || v > UINT16_MAX)
        return bad_value(cfg, "port-group", arg, "not a number from 1 to "
                         "65535");
    cfg->port_group = (unsigned)v;
    return GO_ON;
}

static int take_alua(struct cli_config *cfg, const char *arg)
{
    cfg->alua = arg;
    return GO_ON;
}

static int take_alua_file(struct cli_config *cfg, const char *arg)
{
    cfg->alua_file = arg;
    return GO_ON;
}

int cli_alua_file_read(const char *path, char *text, char *why)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(why, CLI_ALUA_MAX, "%s", strerror(errno));
        return -1;
    }
    /* One byte more than a list may have, to tell a longer file. */
    char buf[CLI_ALUA_MAX + 1];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    bool failed = ferror(f);
    fclose(f);
    buf[len] = '\0';
    const char *start = buf + strspn(buf, " \t\r\n");
    while (len > (size_t)(start - buf) && strchr(" \t\r\n", buf[len - 1]))
        buf[--len] = '\0';
    len -= (size_t)(start - buf);
    const char *why_not = failed ? "cannot be read"
                        : len >= CLI_ALUA_MAX ? "too long for a list of "
                                                "port groups"
                        : !len ? "empty: no ID:STATE list"
                        : strpbrk(start, "\r\n") ? "more than one line"
                        : strlen(start) != len ? "not text"
                        : NULL;
    if (why_not) {
        snprintf(why, CLI_ALUA_MAX, "%s", why_not);
        return -1;
    }
    memcpy(text, start, len + 1);
    return 0;
}

/* --port-group and --alua (or --alua-file, read now), checked together
 * once all are known: 0, or SPD_EXIT_USAGE after a message. */
static int port_groups_finish(struct cli_config *cfg)
{
    const char *list = cfg->alua_file ? "--alua-file" : "--alua";
    char why[CLI_ALUA_MAX];
    if (cfg->alua && cfg->alua_file)
        return cli_usage_error(cfg, "--alua and --alua-file exclude each "
                               "other: the states in the list or in a file");
    if (!cfg->port_group && !cfg->alua && !cfg->alua_file)
        return 0;
    if (!cfg->port_group || (!cfg->alua && !cfg->alua_file))
        return cli_usage_error(cfg, "--port-group and --alua (or "
                               "--alua-file) go together: this gateway's "
                               "target port group and every gateway's "
                               "state");
    if (!cfg->exports.iscsi)
        return cli_usage_error(cfg, "--port-group and %s need an iSCSI "
                               "export (--iscsi)", list);
    if (cfg->alua_file) {
        if (cli_alua_file_read(cfg->alua_file, cfg->alua_text, why))
            return cli_usage_error(cfg, "--alua-file %s: %s", cfg->alua_file,
                                   why);
        cfg->alua = cfg->alua_text;
    }
    if (spd_params_set_alua(&cfg->params, cfg->port_group, cfg->alua))
        return cli_usage_error(cfg, "--port-group %u %s %s: %s",
                               cfg->port_group, list, cfg->alua_file
                               ? cfg->alua_file : cfg->alua, spd_errmsg());
    return 0;
}

static int take_check(struct cli_config *cfg, const char *arg)
{
    cfg->check = true;
    return GO_ON;
}

/* The export options have no taker of their own in the table: serve.c
 * takes them by name. */
static int take_export(struct cli_config *cfg, const char *name,
                       const char *arg)
{
    return cli_export_option(cfg, name, arg) ? SPD_EXIT_USAGE : GO_ON;
}

static int take_help(struct cli_config *cfg, const char *arg);

static int take_version(struct cli_config *cfg, const char *arg)
{
    /* The program's, then the library's: the one that serves, whichever
     * headers the program was built with. */
    const spd_device *dev = cfg->dev;
    printf("%s %s\nlibspd %s\n", dev->name, dev->version ? dev->version
           : dev->built_with ? dev->built_with : "", spd_version());
    return SPD_EXIT_OK;
}

/* The common options: getopt_long's tables and --help are made from this
 * one list, so they cannot disagree. */
static const struct common_option {
    const char *group;       /* a --help heading starting here, or NULL */
    const char *name;
    int code;                /* its letter, or an OPT_ code */
    const char *arg;         /* the argument's name; NULL: no argument */
    int (*take)(struct cli_config *cfg, const char *arg);  /* NULL: an
                                   export option, taken by serve.c */
    const char *help;
} common_options[] = {
    { "Size", "size", 's', "SIZE", take_size,
      "size in bytes, with K, M, G or T for powers of 1024, like 64M" },
    { NULL, "block-count", 'c', "N", take_block_count,
      "size in blocks, instead of --size" },
    { NULL, "block-length", 'l', "N", take_block_length,
      "bytes per block, a power of two from 512 to 65536 (default 512)" },
    { NULL, "physical-block-length", OPT_PHYSICAL_BLOCK_LENGTH, "N",
      take_physical_block_length,
      "bytes per physical block, which initiators align to: the block "
      "length times a power of two (default: the block length)" },
    { "Identity", "uuid", 'u', "UUID", take_uuid,
      "the unit's UUID, source of its serial number and identifiers" },
    { NULL, "product-id", 'i', "ID", take_product_id,
      "INQUIRY product, up to 16 characters (default \"Spd disk\")" },
    { NULL, "product-revision", OPT_PRODUCT_REVISION, "REV",
      take_product_revision,
      "INQUIRY revision, up to 4 characters (default: the library's)" },
    { "Behaviour", "read-only", 'r', NULL, take_write_protect,
      "serve the disk write protected: writes and unmaps are refused "
      "(default: writable)" },
    { NULL, "write-protect", OPT_WRITE_PROTECT, NULL, take_write_protect,
      "the same as --read-only" },
    { NULL, "no-cache", OPT_NO_CACHE, NULL, take_no_cache,
      "report no volatile write cache, WCE 0 (default: a cache, which "
      "initiators flush)" },
    { NULL, "no-unmap", OPT_NO_UNMAP, NULL, take_no_unmap,
      "offer no unmap or thin provisioning (default: offered)" },
    { NULL, "threads", 't', "N", take_threads,
      "dispatcher threads; 0 runs requests on the exports' own threads" },
    { NULL, "debug", 'd', "MASK", take_debug,
      "log each request: read,write,flush,unmap,scsi, all, or a number "
      "(default: no log)" },
    { NULL, "debug-log", 'D', "FILE", take_debug_log,
      "append the log to FILE instead of stderr (with the mask all unless "
      "--debug gives one)" },
    { "Gateways (several processes serving one disk over iSCSI)",
      "port-group", OPT_PORT_GROUP, "ID", take_port_group,
      "this gateway's target port group, 1 to 65535, also its iSCSI "
      "TargetPortalGroupTag and relative target port (needs --alua or "
      "--alua-file)" },
    { NULL, "alua", OPT_ALUA, "ID:STATE,...", take_alua,
      "every gateway's group and its state, the same list for each: ao "
      "(active/optimized), ano (active/non-optimized), standby or "
      "unavailable, like 1:ao,2:ano (default: one group 1, ao)" },
    { NULL, "alua-file", OPT_ALUA_FILE, "PATH", take_alua_file,
      "the --alua list read from the file PATH (one line), and read again "
      "on SIGHUP: the new states apply at once, and initiators are told "
      "(a bad list is logged and the states stay)" },
    { "Exports (served until a signal such as SIGINT or SIGTERM)", "nbd",
      OPT_NBD,
      "URI", NULL,
      "serve NBD at URI, more than once allowed: nbd://HOST:PORT/NAME (TCP; "
      "0.0.0.0 or [::] for all interfaces) or nbd+unix:///NAME?socket=PATH" },
    { NULL, "fuse", OPT_FUSE, "PATH", NULL,
      "show the disk as the regular file PATH on a FUSE mount; losetup "
      "turns it into a /dev/loopN" },
    { NULL, "ublk", OPT_UBLK, "[=ID]", NULL,
      "show the disk as the block device /dev/ublkbID (Linux 6.5 or later "
      "with ublk_drv; default ID: the kernel's choice)" },
    { NULL, "queues", OPT_QUEUES, "N", NULL,
      "ublk queues, each served by a thread of its own (default 1)" },
    { NULL, "queue-depth", OPT_QUEUE_DEPTH, "N", NULL,
      "ublk requests in flight per queue, 1 to 4096 (default 64)" },
    { NULL, "ublk-recovery", OPT_UBLK_RECOVERY, NULL, NULL,
      "the ublk disk outlives this process: its I/O waits, and the same "
      "command with --ublk=ID takes it over again" },
    { NULL, "tcmu-loop", OPT_TCMU_LOOP, "[=NAME]", NULL,
      "show the disk as a local SCSI disk /dev/sdX through the kernel's "
      "target (TCMU backstore user_0/NAME and a tcm_loop LUN; default "
      "NAME: PROGRAM-UUID8)" },
    { NULL, "tcmu", OPT_TCMU, "NAME", NULL,
      "only create the TCMU backstore user_0/NAME, for LIO's fabrics "
      "(iSCSI, vhost-scsi, ...) set up with targetcli" },
    { NULL, "tcmu-reservations", OPT_TCMU_RESERVATIONS, "WHO", NULL,
      "who answers PERSISTENT RESERVE, RESERVE and RELEASE on the TCMU "
      "disk: lio (LIO's emulation, per initiator: right for any fabric; "
      "the default) or spd (Spd's engine, every initiator one nexus: for "
      "one initiator, or reservations the unit keeps)" },
    { NULL, "iscsi", OPT_ISCSI, "[ADDR:PORT]", NULL,
      "serve iSCSI, the disk as LUN 0, on ADDR:PORT (default 127.0.0.1:3260; "
      "0.0.0.0 or [::] for all interfaces; port 0 picks a free one)" },
    { NULL, "iscsi-target", OPT_ISCSI_TARGET, "IQN", NULL,
      "the iSCSI target name (default iqn.2026-11.org.spd:PROGRAM.UUID8)" },
    { NULL, "chap-file", OPT_CHAP_FILE, "FILE", NULL,
      "require CHAP with the secrets in FILE: 'USER SECRET' lines, and "
      "'mutual USER SECRET' for mutual CHAP; FILE must be the user's or root's, "
      "and not readable by others nor writable by group or others" },
    { NULL, "tls", OPT_TLS, "MODE", NULL,
      "NBD over TLS: off (the default), on (clients may upgrade) or require "
      "(nothing but STARTTLS until they did; addresses read nbds://)" },
    { NULL, "tls-certificates", OPT_TLS_CERTIFICATES, "DIR", NULL,
      "TLS with the X.509 files in DIR: server-cert.pem, server-key.pem, "
      "ca-cert.pem, optional ca-crl.pem" },
    { NULL, "tls-psk", OPT_TLS_PSK, "FILE", NULL,
      "TLS with the pre-shared keys in FILE (psktool's USER:HEXKEY lines); "
      "FILE must be the user's or root's, and not readable by others nor "
      "writable by group or others" },
    { NULL, "tls-verify-peer", OPT_TLS_VERIFY_PEER, NULL, NULL,
      "require a client certificate signed by the CA in --tls-certificates" },
    { NULL, "socket-mode", OPT_SOCKET_MODE, "MODE", NULL,
      "permissions of the nbd+unix:// sockets, in octal, whatever the umask "
      "(default 600: only this user connects)" },
    { NULL, "max-connections", OPT_MAX_CONNECTIONS, "N", NULL,
      "clients served at once by each network export; more are refused, "
      "with a line saying so (default 1024)" },
    { NULL, "handshake-timeout", OPT_HANDSHAKE_TIMEOUT, "SECONDS",
      NULL,
      "time for a client's NBD handshake or iSCSI login, and for one that "
      "stalls mid-request or reads no replies (default 60)" },
    { NULL, "idle-timeout", OPT_IDLE_TIMEOUT, "SECONDS", NULL,
      "close a connection that sends no request for this long; NOP-Outs "
      "are none (default: never; iSCSI initiators are pinged)" },
    { NULL, "max-connections-per-peer", OPT_MAX_PER_PEER, "N", NULL,
      "clients served at once from one address by each network export, "
      "handshakes and logins included (default 64)" },
    { NULL, "max-memory", OPT_MAX_MEMORY, "SIZE", NULL,
      "data buffers all clients together may hold (K, M, G suffixes; "
      "default 1G); beyond it requests wait" },
    { NULL, "max-connection-memory", OPT_MAX_CONNECTION_MEMORY, "SIZE",
      NULL, "data buffers one client may hold (default 128M); beyond it "
      "its requests wait" },
    { NULL, "pid-file", OPT_PID_FILE, "FILE", NULL,
      "write the process id to FILE once every export is ready (and tell "
      "$NOTIFY_SOCKET READY=1 when it is set)" },
    { "Mode", "check", OPT_CHECK, NULL, take_check,
      "run the self-check through the SCSI engine and exit (0: all passed)" },
    { NULL, "help", 'h', NULL, take_help, "show this help and exit" },
    { NULL, "version", 'V', NULL, take_version,
      "show the version and exit" },
};
#define COMMON_COUNT (sizeof common_options / sizeof common_options[0])

/* Words of text, wrapped to HELP_WIDTH, continuation lines indented. */
static void print_wrapped(FILE *out, const char *text)
{
    size_t col = HELP_INDENT;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > HELP_INDENT && col + 1 + word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else if (col > HELP_INDENT) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, text);
        col += word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

static void help_line(FILE *out, int letter, const char *name,
                      const char *arg, const char *help)
{
    char left[64];
    bool short_name = letter > 0 && letter < 256;
    snprintf(left, sizeof left, "%c%c%c --%s%s%s", short_name ? '-' : ' ',
             short_name ? letter : ' ', short_name ? ',' : ' ', name,
             arg && arg[1] != '=' ? " " : "", arg ? arg : "");
    fprintf(out, "  %-*s", HELP_INDENT - 2, left);
    if (strlen(left) > HELP_INDENT - 3)
        fprintf(out, "\n%*s", HELP_INDENT, "");
    print_wrapped(out, help);
}

static void usage(const spd_device *prog, FILE *out)
{
    char help[256];
    fprintf(out, "Usage: %s [OPTION]... {--nbd URI | --iscsi [ADDR:PORT] | "
            "--fuse PATH | --ublk[=ID] | --check}...\n%s\n", prog->name,
            prog->summary ? prog->summary : "Serve a disk.");
    if (prog->option_count)
        fprintf(out, "\nDevice:\n");
    for (unsigned i = 0; i < prog->option_count; i++) {
        const spd_device_option *o = &prog->options[i];
        help_line(out, o->short_name, o->name, o->arg, o->help);
    }
    for (size_t i = 0; i < COMMON_COUNT; i++) {
        const struct common_option *o = &common_options[i];
        const char *dflt = o->code == 's' ? prog->size_help
                         : o->code == 'u' ? (prog->uuid_help ? prog->uuid_help
                                             : "a new random one each run")
                         : NULL;
        snprintf(help, sizeof help, dflt ? "%s (default: %s)" : "%s",
                 o->help, dflt);
        if (o->group)
            fprintf(out, "\n%s:\n", o->group);
        help_line(out, o->code, o->name, o->arg, help);
    }
    fprintf(out, "\nSIGHUP reopens the --debug-log file; any other signal "
            "that ends a program\nstops the exports cleanly and exits 0.\n"
            "\nExit status: 0 success, 1 failure (also a failed self-check), "
            "2 a bad\noption or value (nothing is served).\n");
}

static int take_help(struct cli_config *cfg, const char *arg)
{
    usage(cfg->dev, stdout);
    return SPD_EXIT_OK;
}

/* An argument written "[=...]" in the table is optional (--iscsi=ADDR). */
static int has_arg(const char *arg)
{
    return !arg ? no_argument
           : arg[0] == '[' ? optional_argument : required_argument;
}

/* getopt_long's tables: the common options followed by the program's. */
static void option_tables(const spd_device *prog,
                          struct option *longs, char *shorts, size_t cap)
{
    size_t n = 0, used = 0;
    for (size_t i = 0; i < COMMON_COUNT; i++) {
        const struct common_option *o = &common_options[i];
        longs[n++] = (struct option){ o->name, has_arg(o->arg), NULL,
                                      o->code };
        if (o->code < 256)
            used += (size_t)snprintf(shorts + used, cap - used, "%c%s",
                                     o->code, o->arg ? ":" : "");
    }
    for (unsigned i = 0; i < prog->option_count; i++) {
        const spd_device_option *o = &prog->options[i];
        int code = o->short_name ? o->short_name
                                 : PROGRAM_OPTION_BASE + (int)i;
        longs[n++] = (struct option){ o->name, o->arg ? required_argument
                                                      : no_argument,
                                      NULL, code };
        if (o->short_name)
            used += (size_t)snprintf(shorts + used, cap - used, "%c%s",
                                     o->short_name, o->arg ? ":" : "");
    }
    longs[n] = (struct option){ 0 };
}

/* Hand an option getopt_long returned to its taker. */
static int take_option(struct cli_config *cfg, int code, const char *arg)
{
    const spd_device *dev = cfg->dev;
    for (unsigned i = 0; i < dev->option_count; i++)
        if (code == (dev->options[i].short_name
                         ? dev->options[i].short_name
                         : PROGRAM_OPTION_BASE + (int)i)) {
            int r = dev->take ? dev->take(dev->ctx, i, arg) : SPD_EXIT_USAGE;
            return !r ? GO_ON : r == SPD_EXIT_FAILURE ? r : SPD_EXIT_USAGE;
        }
    for (size_t i = 0; i < COMMON_COUNT; i++)
        if (code == common_options[i].code)
            return common_options[i].take
                   ? common_options[i].take(cfg, arg)
                   : take_export(cfg, common_options[i].name, arg);
    return SPD_EXIT_USAGE;   /* '?': getopt_long said what was wrong */
}

/* Whether the word after a bare --iscsi is its address, as with --nbd URI:
 * an IP address ("127.0.0.1:3260", "[::1]:3260", ":3260"), an iscsi:// URI,
 * systemd[:NAME], or a host name followed by :PORT. An option ("-...")
 * never is. */
static bool iscsi_address(const char *word)
{
    if (!word || word[0] == '-')
        return false;
    if ((word[0] >= '0' && word[0] <= '9') || word[0] == '[' ||
        word[0] == ':' || !strncmp(word, "iscsi://", 8) ||
        cli_systemd_address(word))
        return true;
    const char *colon = strrchr(word, ':');
    return colon && colon > word && colon[1] &&
           strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
           strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789.-") == (size_t)(colon - word);
}

/* After the last option: what the command line must hold as a whole.
 * Options that would be ignored are refused, so that a user never
 * believes something was done that was not. */
static int parse_finish(struct cli_config *cfg, int argc, char **argv)
{
    const struct cli_exports *e = &cfg->exports;
    if (optind < argc)
        return cli_usage_error(cfg, "unexpected argument '%s'", argv[optind]);
    if (cfg->debug_log && !cfg->debug_mask)
        cfg->debug_mask = SPD_DEBUG_ALL;
    if (cfg->check && cli_exports_wanted(e))
        return cli_usage_error(cfg, "--check runs the self-check and exits: "
                               "it cannot be combined with --nbd, --iscsi, "
                               "--fuse, --ublk or --tcmu");
    if (!e->ublk && (e->ublk_queues || e->ublk_depth || e->ublk_recovery))
        return cli_usage_error(cfg, "--queues, --queue-depth and "
                               "--ublk-recovery need a ublk export (--ublk)");
    if (!e->tcmu && e->tcmu_reservations)
        return cli_usage_error(cfg, "--tcmu-reservations needs a TCMU "
                               "export (--tcmu or --tcmu-loop)");
    if (cfg->check && e->pid_file)
        return cli_usage_error(cfg, "--pid-file is only for serving, not "
                               "with --check");
    if (!e->iscsi && (e->iscsi_target || e->chap_file))
        return cli_usage_error(cfg, "%s needs an iSCSI export (--iscsi)",
                               e->iscsi_target ? "--iscsi-target"
                                               : "--chap-file");
    int r = cli_tls_finish(cfg);
    if (!r)
        r = port_groups_finish(cfg);
    if (r)
        return r;
    if (!cfg->check && !cli_exports_wanted(e))
        return cli_usage_error(cfg, "no export given: use --nbd, --iscsi, "
                               "--fuse, --ublk, --tcmu-loop, or --check to "
                               "run the self-check");
    if (cfg->threads < 0)
        cfg->threads = (int)cfg->dev->default_threads;
    return GO_ON;
}

/* The geometry from --size and --block-count, which must agree when both
 * are given, or from the device's default size. block_count stays 0 when
 * there is neither: the device's open() finds it. */
static int resolve_size(struct cli_config *cfg)
{
    uint32_t bl = cfg->params.block_length;
    uint64_t size = cfg->size ? cfg->size
                  : cfg->given & SPD_GIVEN_SIZE ? 0 : cfg->dev->default_size;
    uint64_t count = cfg->params.block_count;
    char text[32];

    if (cfg->size && count && (cfg->size % bl || cfg->size / bl != count))
        return cli_usage_error(cfg, "--size %llu and --block-count %llu "
                               "disagree", (unsigned long long)cfg->size,
                               (unsigned long long)count);
    if (count > UINT64_MAX / bl)
        return cli_usage_error(cfg, "--block-count %llu: too large for "
                               "blocks of %u bytes", (unsigned long long)count,
                               bl);
    uint32_t pbl = cfg->params.physical_block_length;
    if (pbl && (pbl < bl || pbl / bl > 1u << 15))
        return cli_usage_error(cfg, "--physical-block-length %u is not the "
                               "block length %u times a power of two up to "
                               "32768", pbl, bl);
    if (count || !size)
        return GO_ON;
    if (size % bl) {
        spd_format_size(size, text, sizeof text);
        return cli_usage_error(cfg, "--size %llu (%s) is not a multiple of "
                               "the block length %u",
                               (unsigned long long)size, text, bl);
    }
    cfg->params.block_count = size / bl;
    return GO_ON;
}

int cli_parse(struct cli_config *cfg, const spd_device *dev, int argc,
              char **argv)
{
    struct option longs[MAX_OPTIONS + 1];
    char shorts[3 * MAX_OPTIONS + 2] = "+";   /* stop at a non-option */
    int status = GO_ON, code;

    *cfg = (struct cli_config){
        .dev = dev,
        .threads = -1,
        /* What the ops can do is on unless an option turns it off. */
        .params = { SPD_PARAMS_INIT, .block_length = 512,
                    .cache_supported = true,
                    .unmap_supported = dev->ops && dev->ops->unmap,
                    .unmap_reads_zero = dev->ops && dev->ops->unmap },
        .exports.server = { SPD_SERVER_OPTIONS_INIT },
        .exports.tls = { SPD_NBD_TLS_INIT },
    };
    if (COMMON_COUNT + dev->option_count > MAX_OPTIONS) {
        fprintf(stderr, "%s: too many options\n", dev->name);
        return SPD_EXIT_FAILURE;
    }
    option_tables(dev, longs, shorts + 1, sizeof shorts - 1);
    optind = 1;
    opterr = 1;
    while (status == GO_ON &&
           (code = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        const char *arg = optarg;
        /* An optional argument may follow after a space, as --nbd's does. */
        if (code == OPT_ISCSI && !arg && optind < argc &&
            iscsi_address(argv[optind]))
            arg = argv[optind++];
        status = take_option(cfg, code, arg);
    }
    if (status == GO_ON)
        status = parse_finish(cfg, argc, argv);
    if (status == GO_ON)
        status = resolve_size(cfg);
    return status;
}
