/*
 * spd-stgtest - a storage tester: a workload of reads, writes, flushes
 * and unmaps, on threads with a queue depth each, against a block device
 * or file (io_uring), an NBD export (libnbd) or an iSCSI LUN (libiscsi),
 * with every block read checked against what was last written to it.
 *
 * This file is the command line and the report: the options, the
 * progress line, the summary (IOPS, MB/s, latency quantiles per kind of
 * request) as text or JSON, and the first bad block. run.c runs it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "spd/version.h"

#define PROGRAM "spd-stgtest"
#define TABLE_LIMIT (2ull << 30)    /* bytes of expected state, at most */

static const char usage_text[] =
"Usage: " PROGRAM " [OPTIONS] TARGET\n"
"Test a disk: a workload of reads, writes, flushes and unmaps whose every\n"
"read is checked against what was last written (lost, misdirected, torn\n"
"and stale writes, unmapped blocks that do not read as zeros).\n"
"\n"
"TARGET is a block device or file (O_DIRECT, io_uring), an NBD URI\n"
"(nbd://HOST[:PORT]/NAME, nbd+unix:///NAME?socket=PATH, ...) or an iSCSI\n"
"URL (iscsi://[USER%SECRET@]HOST[:PORT]/IQN/LUN). Its data is overwritten.\n"
"\n"
"  -t, --threads N         threads, one connection each (1)\n"
"  -q, --queue-depth N     requests in flight per thread (8)\n"
"  -b, --bs MIN[-MAX]      request size in bytes, drawn from the range\n"
"                          (4k-64k); k, m suffixes; whole blocks\n"
"  -m, --mix LIST          weights: read=50,write=40,flush=5,unmap=5\n"
"  -d, --duration SECONDS  run this long (10 unless --ops)\n"
"  -n, --ops N             stop after N requests in all\n"
"  -s, --seed N            the workload's seed (random; the summary gives it)\n"
"      --sequential        addresses one after another (default: random)\n"
"      --size BYTES        test only the first BYTES of the target\n"
"      --block-size N      the block that stamps cover (the target's own;\n"
"                          4096 for a file)\n"
"      --unmap-zeroes WHEN whether unmapped blocks must read as zeros:\n"
"                          auto (iSCSI: LBPRZ; file: yes; block device and\n"
"                          NBD: no), yes or no\n"
"      --no-verify         no stamps, no checks: just the load\n"
"      --buffered          a file or device without O_DIRECT\n"
"      --timeout SECONDS   longest a request may take (30)\n"
"      --json              the summary as JSON on stdout\n"
"      --progress/--no-progress  a progress line on stderr (on a terminal)\n"
"  -h, --help              this text\n"
"  -V, --version           the version\n"
"\n"
"Exit status: 0 every block read back right, 1 a wrong block, an I/O\n"
"error or a timeout (the first is named on stderr), 2 a bad command line\n"
"or a target that cannot be opened.\n";

enum { OPT_SEQUENTIAL = 256, OPT_SIZE, OPT_BLOCK_SIZE, OPT_UNMAP_ZEROES,
       OPT_NO_VERIFY, OPT_BUFFERED, OPT_TIMEOUT, OPT_JSON, OPT_PROGRESS,
       OPT_NO_PROGRESS };

static const struct option long_options[] = {
    { "threads", required_argument, NULL, 't' },
    { "queue-depth", required_argument, NULL, 'q' },
    { "bs", required_argument, NULL, 'b' },
    { "mix", required_argument, NULL, 'm' },
    { "duration", required_argument, NULL, 'd' },
    { "ops", required_argument, NULL, 'n' },
    { "seed", required_argument, NULL, 's' },
    { "sequential", no_argument, NULL, OPT_SEQUENTIAL },
    { "size", required_argument, NULL, OPT_SIZE },
    { "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
    { "unmap-zeroes", required_argument, NULL, OPT_UNMAP_ZEROES },
    { "no-verify", no_argument, NULL, OPT_NO_VERIFY },
    { "buffered", no_argument, NULL, OPT_BUFFERED },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "json", no_argument, NULL, OPT_JSON },
    { "progress", no_argument, NULL, OPT_PROGRESS },
    { "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROGRAM ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

/* "123", "4k", "64M": bytes or a count; false on anything else. */
static bool parse_number(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    }
    if (errno || *end || v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static bool parse_range(const char *s, uint64_t *min, uint64_t *max)
{
    char buf[64];
    const char *dash = strchr(s, '-');
    if (!dash)
        return parse_number(s, min) && (*max = *min, true);
    if ((size_t)(dash - s) >= sizeof buf)
        return false;
    memcpy(buf, s, (size_t)(dash - s));
    buf[dash - s] = 0;
    return parse_number(buf, min) && parse_number(dash + 1, max) &&
           *min <= *max;
}

static bool parse_mix(const char *s, unsigned mix[STG_KINDS])
{
    char *copy = strdup(s), *save = NULL;
    bool ok = copy != NULL;
    unsigned total = 0;
    for (int k = 0; k < STG_KINDS; k++)
        mix[k] = 0;
    for (char *item = ok ? strtok_r(copy, ",", &save) : NULL; item && ok;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        uint64_t w;
        ok = eq && parse_number(eq + 1, &w) && w <= 1000000;
        if (!ok)
            break;
        *eq = 0;
        int k = 0;
        while (k < STG_KINDS && strcmp(item, stg_kind_names[k]))
            k++;
        ok = k < STG_KINDS;
        if (ok) {
            mix[k] = (unsigned)w;
            total += (unsigned)w;
        }
    }
    free(copy);
    return ok && total > 0;
}

static int parse_count(const char *arg, uint64_t lo, uint64_t hi,
                       uint64_t *out, const char *what)
{
    if (!parse_number(arg, out) || *out < lo || *out > hi)
        return usage_error(what, arg);
    return 0;
}

static const struct stg_target *target_of(const char *spec)
{
    if (!strncmp(spec, "nbd", 3) && strstr(spec, "://"))
        return &stg_nbd_target;
    if (!strncmp(spec, "iscsi://", 8))
        return &stg_iscsi_target;
    return &stg_file_target;
}

static int parse_options(int argc, char **argv, struct stg_config *cfg)
{
    uint64_t v;
    bool seeded = false;
    int c, r = 0;
    while (!r && (c = getopt_long(argc, argv, "t:q:b:m:d:n:s:hV",
                                  long_options, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!(r = parse_count(optarg, 1, 1024, &v, "bad --threads '%s'")))
                cfg->threads = (unsigned)v;
            break;
        case 'q':
            if (!(r = parse_count(optarg, 1, 4096, &v,
                                  "bad --queue-depth '%s'")))
                cfg->topt.queue_depth = (unsigned)v;
            break;
        case 'b':
            if (!parse_range(optarg, &cfg->min_bytes, &cfg->max_bytes) ||
                !cfg->min_bytes || cfg->max_bytes > (256u << 20))
                r = usage_error("bad --bs '%s': MIN[-MAX] bytes, at most "
                                "256M", optarg);
            break;
        case 'm':
            if (!parse_mix(optarg, cfg->mix))
                r = usage_error("bad --mix '%s': read=N,write=N,flush=N,"
                                "unmap=N", optarg);
            break;
        case 'd': {
            char *end;
            cfg->seconds = strtod(optarg, &end);
            if (*end || !(cfg->seconds > 0) || cfg->seconds > 1e7)
                r = usage_error("bad --duration '%s'", optarg);
            break;
        }
        case 'n':
            r = parse_count(optarg, 1, UINT64_MAX, &cfg->ops,
                            "bad --ops '%s'");
            break;
        case 's':
            r = parse_count(optarg, 0, UINT64_MAX, &cfg->seed,
                            "bad --seed '%s'");
            seeded = true;
            break;
        case OPT_SEQUENTIAL: cfg->sequential = true; break;
        case OPT_SIZE:
            r = parse_count(optarg, 1, UINT64_MAX, &cfg->size,
                            "bad --size '%s'");
            break;
        case OPT_BLOCK_SIZE:
            if (!(r = parse_count(optarg, 512, 65536, &v,
                                  "bad --block-size '%s'")) && (v & (v - 1)))
                r = usage_error("bad --block-size '%s': a power of two",
                                optarg);
            cfg->topt.block_size = (uint32_t)v;
            break;
        case OPT_UNMAP_ZEROES:
            if (!strcmp(optarg, "auto")) cfg->unmap_zeroes = UNMAP_ZEROES_AUTO;
            else if (!strcmp(optarg, "yes")) cfg->unmap_zeroes = UNMAP_ZEROES_YES;
            else if (!strcmp(optarg, "no")) cfg->unmap_zeroes = UNMAP_ZEROES_NO;
            else r = usage_error("bad --unmap-zeroes '%s': auto, yes or no",
                                 optarg);
            break;
        case OPT_NO_VERIFY: cfg->verify = false; break;
        case OPT_BUFFERED: cfg->topt.buffered = true; break;
        case OPT_TIMEOUT:
            if (!(r = parse_count(optarg, 1, 86400, &v, "bad --timeout '%s'")))
                cfg->timeout = (unsigned)v;
            break;
        case OPT_JSON: cfg->json = true; break;
        case OPT_PROGRESS: cfg->progress = true; break;
        case OPT_NO_PROGRESS: cfg->progress = false; break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        case 'V':
            printf(PROGRAM " %s\n", SPD_VERSION_STRING);
            exit(0);
        default:
            return 2;
        }
    }
    if (r)
        return r;
    if (optind != argc - 1)
        return usage_error("%s", optind < argc ? "one TARGET only"
                                               : "no TARGET given");
    if (cfg->ops && cfg->seconds)
        return usage_error("%s", "--ops and --duration exclude each other");
    if (!cfg->ops && !cfg->seconds)
        cfg->seconds = 10;
    if (!seeded && getrandom(&cfg->seed, sizeof cfg->seed, 0) !=
                   sizeof cfg->seed)
        cfg->seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    cfg->spec = argv[optind];
    cfg->target = target_of(cfg->spec);
    return 0;
}

/* ---- what the target turned out to be ---- */

static int fit_to_target(struct stg_run *run)
{
    struct stg_config *cfg = &run->cfg;
    struct stg_geometry *geo = &run->geo;
    uint32_t bs = geo->block_size;
    uint64_t span = cfg->size ? cfg->size : geo->blocks * bs;
    char what[64];
    if (cfg->size && (cfg->size % bs || cfg->size > geo->blocks * bs)) {
        snprintf(what, sizeof what, "%" PRIu64, cfg->size);
        return usage_error("--size %s: not whole blocks within the target",
                           what);
    }
    if (cfg->min_bytes % bs || cfg->max_bytes % bs) {
        snprintf(what, sizeof what, "%u", bs);
        return usage_error("--bs: not a multiple of the %s-byte block", what);
    }
    if (geo->max_transfer && cfg->max_bytes > geo->max_transfer) {
        snprintf(what, sizeof what, "%u", geo->max_transfer);
        return usage_error("--bs: the target takes at most %s bytes at once",
                           what);
    }
    run->blocks = span / bs;
    run->min_blocks = (uint32_t)(cfg->min_bytes / bs);
    run->max_blocks = (uint32_t)(cfg->max_bytes / bs);
    if (run->max_blocks > run->blocks)
        return usage_error("%s", "--bs: larger than the space tested");
    if (cfg->unmap_zeroes != UNMAP_ZEROES_AUTO) {
        geo->unmap_zeroes = cfg->unmap_zeroes == UNMAP_ZEROES_YES;
        geo->unmap_rule = "as --unmap-zeroes says";
    }
    /* What the target cannot do leaves the mix, said once. */
    if (cfg->mix[STG_UNMAP] && !geo->can_unmap && !cfg->json)
        fprintf(stderr, PROGRAM ": the target cannot unmap: no unmaps\n");
    if (!geo->can_unmap)
        cfg->mix[STG_UNMAP] = 0;
    if (!geo->can_flush)
        cfg->mix[STG_FLUSH] = 0;
    if (!cfg->mix[STG_READ] && !cfg->mix[STG_WRITE] && !cfg->mix[STG_FLUSH] &&
        !cfg->mix[STG_UNMAP])
        return usage_error("%s", "--mix: nothing the target can do");
    if (cfg->verify) {
        if (run->blocks * 10 > TABLE_LIMIT)
            return usage_error("%s", "the target is too large to keep the "
                               "state of every block: test part of it "
                               "with --size");
        if (!(run->table = stg_table_create(run->blocks))) {
            fprintf(stderr, PROGRAM ": out of memory for the block table\n");
            return 1;
        }
    }
    return 0;
}

/* ---- reporting ---- */

static double rate(uint64_t n, double seconds)
{
    return seconds > 0 ? (double)n / seconds : 0;
}

static void progress_line(struct stg_run *run)
{
    static uint64_t last_ops[STG_KINDS], last_bytes[STG_KINDS], last_ns;
    uint64_t ops[STG_KINDS], bytes[STG_KINDS], now = stg_now_ns();
    stg_run_progress(run, ops, bytes);
    double dt = (double)(now - (last_ns ? last_ns : run->start_ns)) / 1e9;
    fprintf(stderr, "\r%6.0fs", (double)(now - run->start_ns) / 1e9);
    for (int k = 0; k < STG_KINDS; k++) {
        if (run->cfg.mix[k])
            fprintf(stderr, "  %s %.0f/s %.1f MB/s", stg_kind_names[k],
                    rate(ops[k] - last_ops[k], dt),
                    rate(bytes[k] - last_bytes[k], dt) / 1e6);
        last_ops[k] = ops[k];
        last_bytes[k] = bytes[k];
    }
    fprintf(stderr, "\033[K");
    last_ns = now;
}

/* Until every thread is done: a progress line a second on a terminal. */
static void watch(struct stg_run *run)
{
    uint64_t next = stg_now_ns() + 1000000000u;
    while (atomic_load(&run->finished) < run->cfg.threads) {
        struct timespec nap = { 0, 20 * 1000000 };
        nanosleep(&nap, NULL);
        if (run->cfg.progress && stg_now_ns() >= next) {
            progress_line(run);
            next += 1000000000u;
        }
    }
    if (run->cfg.progress)
        fprintf(stderr, "\r\033[K");
}

static const char *expected_text(uint64_t expected, char *buf, size_t len)
{
    if (expected == STG_ZEROS)
        snprintf(buf, len, "zeros (unmapped)");
    else if (expected == STG_UNKNOWN)
        snprintf(buf, len, "anything but another block's data");
    else
        snprintf(buf, len, "generation %" PRIu64, expected);
    return buf;
}

static void print_failure(const struct stg_run *run)
{
    const struct stg_failure *f = &run->failure;
    char exp[64], seen[256];
    if (f->kind == FAIL_VERIFY) {
        stg_seen_format(&f->seen, run->cfg.seed, seen, sizeof seen);
        fprintf(stderr, PROGRAM ": FAILED: LBA %" PRIu64 ": expected %s, "
                "found %s: %s\n", f->lba, expected_text(f->expected, exp,
                sizeof exp), seen, f->verdict);
        if (f->diagnosis[0])
            fprintf(stderr, PROGRAM ": %s\n", f->diagnosis);
        fprintf(stderr, PROGRAM ": the %s of %u blocks at LBA %" PRIu64
                " read it; the run's seed is %" PRIu64 "\n",
                stg_kind_names[f->op], f->op_blocks, f->op_lba, run->cfg.seed);
    } else if (f->op == STG_KINDS) {
        fprintf(stderr, PROGRAM ": FAILED: the connection: %s\n", f->detail);
    } else {
        fprintf(stderr, PROGRAM ": FAILED: %s of %u blocks at LBA %" PRIu64
                ": %s: %s\n", stg_kind_names[f->op], f->op_blocks, f->op_lba,
                f->verdict, f->detail);
    }
}

static void print_summary(const struct stg_run *run,
                          const struct stg_totals *t)
{
    const struct stg_config *cfg = &run->cfg;
    double secs = (double)(run->end_ns - run->start_ns) / 1e9;
    printf("%s: %s target, %" PRIu64 " blocks of %u bytes tested, seed %"
           PRIu64 "\n", cfg->spec, cfg->target->name, run->blocks,
           run->geo.block_size, cfg->seed);
    printf("%u thread%s x queue depth %u, %" PRIu64 "-%" PRIu64 " bytes %s, "
           "%.1f s%s\n", cfg->threads, cfg->threads == 1 ? "" : "s",
           cfg->topt.queue_depth, cfg->min_bytes, cfg->max_bytes,
           cfg->sequential ? "sequential" : "random", secs,
           cfg->verify ? ", verified" : "");
    printf("%-6s %10s %10s %9s %9s %9s %9s %9s\n", "op", "count", "IOPS",
           "MB/s", "p50 us", "p99 us", "p99.9 us", "max us");
    for (int k = 0; k < STG_KINDS; k++) {
        const struct stg_hist *h = &t->hist[k];
        if (!cfg->mix[k])
            continue;
        printf("%-6s %10" PRIu64 " %10.0f %9.1f %9.1f %9.1f %9.1f %9.1f\n",
               stg_kind_names[k], h->count, rate(h->count, secs),
               rate(h->bytes, secs) / 1e6, stg_hist_quantile(h, 0.5) / 1e3,
               stg_hist_quantile(h, 0.99) / 1e3,
               stg_hist_quantile(h, 0.999) / 1e3, h->max_ns / 1e3);
    }
    if (cfg->verify)
        printf("verified %" PRIu64 " blocks read; unmapped blocks %s (%s)\n",
               t->verified_blocks, run->geo.unmap_zeroes
               ? "must read as zeros" : "may read as anything",
               run->geo.unmap_rule);
}

/* JSON strings here are URIs, paths and messages: escape what JSON must. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static void print_json(const struct stg_run *run, const struct stg_totals *t)
{
    const struct stg_config *cfg = &run->cfg;
    const struct stg_failure *f = &run->failure;
    double secs = (double)(run->end_ns - run->start_ns) / 1e9;
    printf("{\"target\": ");
    json_string(cfg->spec);
    printf(", \"kind\": \"%s\", \"blocks\": %" PRIu64 ", \"block_size\": %u, "
           "\"seed\": %" PRIu64 ", \"threads\": %u, \"queue_depth\": %u, "
           "\"min_bytes\": %" PRIu64 ", \"max_bytes\": %" PRIu64 ", "
           "\"sequential\": %s, \"verify\": %s, \"unmap_zeroes\": %s, "
           "\"seconds\": %.3f, \"ops\": {", cfg->target->name, run->blocks,
           run->geo.block_size, cfg->seed, cfg->threads,
           cfg->topt.queue_depth, cfg->min_bytes, cfg->max_bytes,
           cfg->sequential ? "true" : "false", cfg->verify ? "true" : "false",
           run->geo.unmap_zeroes ? "true" : "false", secs);
    const char *sep = "";
    for (int k = 0; k < STG_KINDS; k++) {
        const struct stg_hist *h = &t->hist[k];
        printf("%s\"%s\": {\"count\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"iops\": %.1f, \"mb_per_s\": %.3f, \"latency_us\": "
               "{\"p50\": %.1f, \"p99\": %.1f, \"p99.9\": %.1f, \"max\": "
               "%.1f}}", sep, stg_kind_names[k], h->count, h->bytes,
               rate(h->count, secs), rate(h->bytes, secs) / 1e6,
               stg_hist_quantile(h, 0.5) / 1e3,
               stg_hist_quantile(h, 0.99) / 1e3,
               stg_hist_quantile(h, 0.999) / 1e3, h->max_ns / 1e3);
        sep = ", ";
    }
    printf("}, \"verified_blocks\": %" PRIu64 ", \"result\": \"%s\"",
           t->verified_blocks, f->kind == FAIL_NONE ? "pass" : "fail");
    if (f->kind != FAIL_NONE) {
        char exp[64], seen[256];
        stg_seen_format(&f->seen, cfg->seed, seen, sizeof seen);
        printf(", \"failure\": {\"verdict\": ");
        json_string(f->verdict ? f->verdict : "");
        printf(", \"op\": \"%s\", \"op_lba\": %" PRIu64 ", \"op_blocks\": %u, "
               "\"lba\": %" PRIu64 ", \"expected\": ",
               f->op < STG_KINDS ? stg_kind_names[f->op] : "",
               f->op_lba, f->op_blocks, f->lba);
        json_string(f->kind == FAIL_VERIFY
                    ? expected_text(f->expected, exp, sizeof exp) : "");
        printf(", \"found\": ");
        json_string(f->kind == FAIL_VERIFY ? seen : f->detail);
        printf(", \"diagnosis\": ");
        json_string(f->diagnosis);
        printf("}");
    }
    printf("}\n");
}

static struct stg_run run = {
    .cfg = { .threads = 1, .topt.queue_depth = 8, .min_bytes = 4096,
             .max_bytes = 65536, .verify = true, .timeout = 30,
             .mix = { [STG_READ] = 50, [STG_WRITE] = 40,
                      [STG_FLUSH] = 5, [STG_UNMAP] = 5 } },
};

/* The first Ctrl-C ends the run early, with its summary; a second one
 * (the handler is reset) ends the program. */
static void on_interrupt(int sig)
{
    atomic_store(&run.stop, true);
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_handler = on_interrupt,
                            .sa_flags = SA_RESETHAND };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    run.cfg.progress = isatty(STDERR_FILENO);
    int r = parse_options(argc, argv, &run.cfg);
    if (r)
        return r;
    if (run.cfg.json)
        run.cfg.progress = false;
    if (stg_run_open(&run) < 0) {
        stg_run_close(&run);
        return 2;
    }
    if ((r = fit_to_target(&run))) {
        stg_run_close(&run);
        return r;
    }
    struct stg_totals totals;
    stg_run_start(&run);
    watch(&run);
    stg_run_join(&run, &totals);
    stg_run_diagnose(&run);
    if (run.cfg.json)
        print_json(&run, &totals);
    else
        print_summary(&run, &totals);
    fflush(stdout);             /* the summary, then what failed */
    if (run.failure.kind != FAIL_NONE)
        print_failure(&run);
    stg_run_close(&run);
    return run.failure.kind == FAIL_NONE ? 0 : 1;
}
