/*
 * driver.c - run a libFuzzer entry point (LLVMFuzzerTestOneInput) without
 * libFuzzer, so the fuzz targets run in the ordinary test suite with any
 * compiler:
 *
 *   fuzz_TARGET [-n COUNT] [-s SEED] [-t SECONDS] [-v] PATH...
 *
 * Every file named, and every file in every directory named (the seed
 * corpus, and the regressions kept there), runs once; then COUNT inputs
 * made by mutating them with a pseudo-random generator from SEED, the same
 * inputs on every run with the same corpus. A crash, a sanitizer report or
 * an input running longer than SECONDS saves the input to
 * crash-TARGET-N in the current directory (replay it: fuzz_TARGET FILE)
 * and fails. Exit status 0: no input failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sanitizers' hook run before they end the process; absent without
 * them (a weak reference stays NULL). */
void __sanitizer_set_death_callback(void (*callback)(void))
    __attribute__((weak));

/* Under ASan, one allocation over 128 MiB is an error, as libFuzzer's
 * -malloc_limit_mb=128 makes it (README.md): no input needs one, so an
 * input that makes the library ask for one has found a way to make it
 * allocate out of proportion to what it sent. Read by ASan at start. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "max_allocation_size_mb=128:allocator_may_return_null=0";
}

#define DEFAULT_COUNT   5000
#define DEFAULT_TIMEOUT 20
/* Mutated inputs grow up to this, or the largest seed. */
#define DEFAULT_MAX_LEN 4096

struct input {
    char *name;
    uint8_t *data;
    size_t size;
};

struct corpus {
    struct input *inputs;
    size_t count, cap;
    size_t max_size;
};

/* ------------------------------------------------------------------ */
/* Saving the input that failed                                         */
/* ------------------------------------------------------------------ */

static const char *target = "fuzz";
static const uint8_t *current;
static size_t current_size;
static unsigned long current_index;
static char current_name[512];

/* Async-signal-safe: only write(2) and open(2). */
static void put(const char *s)
{
    if (write(2, s, strlen(s)) < 0) {
        /* Nothing better to do while dying. */
    }
}

static void put_number(unsigned long n)
{
    char buf[24], *p = buf + sizeof buf;
    *--p = '\0';
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) && p > buf);
    put(p);
}

static void save_current(void)
{
    static volatile sig_atomic_t saved;
    if (saved || !current)
        return;
    saved = 1;

    char path[256] = "crash-";
    size_t n = strlen(path);
    for (const char *t = target; *t && n < 200; t++)
        path[n++] = *t;
    path[n++] = '-';
    char digits[24], *p = digits + sizeof digits;
    unsigned long i = current_index;
    *--p = '\0';
    do
        *--p = (char)('0' + i % 10);
    while ((i /= 10) && p > digits);
    while (*p && n < sizeof path - 1)
        path[n++] = *p++;
    path[n] = '\0';

    put("\ndriver: input ");
    put_number(current_index);
    put(" (");
    put(current_name);
    put(") failed; saved to ");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < current_size) {
            ssize_t w = write(fd, current + off, current_size - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(fd);
        put(path);
    } else {
        put("(nowhere: cannot create the file)");
    }
    put("\n");
}

static void on_signal(int sig)
{
    if (sig == SIGALRM)
        put("\ndriver: input ran too long (a hang?)\n");
    save_current();
    signal(sig, SIG_DFL);
    if (sig == SIGALRM)
        sig = SIGABRT;
    raise(sig);
}

static void install_handlers(void)
{
    static const int signals[] = { SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE,
                                   SIGALRM };
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        signal(signals[i], on_signal);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(save_current);
}

static void run(const uint8_t *data, size_t size, unsigned long index,
                const char *name, unsigned timeout)
{
    current = data;
    current_size = size;
    current_index = index;
    snprintf(current_name, sizeof current_name, "%s", name);
    alarm(timeout);
    LLVMFuzzerTestOneInput(data, size);
    alarm(0);
    current = NULL;
}

/* ------------------------------------------------------------------ */
/* The corpus                                                           */
/* ------------------------------------------------------------------ */

static void corpus_add(struct corpus *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    struct input in = { .name = strdup(path) };
    size_t cap = 0;
    for (;;) {
        if (in.size == cap) {
            cap = cap ? 2 * cap : 4096;
            in.data = realloc(in.data, cap);
            if (!in.data) {
                fprintf(stderr, "driver: out of memory\n");
                exit(1);
            }
        }
        size_t n = fread(in.data + in.size, 1, cap - in.size, f);
        if (!n)
            break;
        in.size += n;
    }
    fclose(f);
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->inputs = realloc(c->inputs, c->cap * sizeof *c->inputs);
        if (!c->inputs) {
            fprintf(stderr, "driver: out of memory\n");
            exit(1);
        }
    }
    c->inputs[c->count++] = in;
    if (in.size > c->max_size)
        c->max_size = in.size;
}

static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or the regular files of a directory in name order. */
static void corpus_load(struct corpus *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        corpus_add(c, path);
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!names || !(names[count] = malloc(len))) {
            fprintf(stderr, "driver: out of memory\n");
            exit(1);
        }
        snprintf(names[count++], len, "%s/%s", path, e->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof *names, name_order);
    for (size_t i = 0; i < count; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            corpus_add(c, names[i]);
        free(names[i]);
    }
    free(names);
}

/* ------------------------------------------------------------------ */
/* Mutations                                                            */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;

/* xorshift64*: small, and the same sequence everywhere. */
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

/* Values at the edges of fields: lengths, counts, LBAs. */
static const uint64_t interesting[] = {
    0, 1, 2, 7, 8, 16, 31, 32, 64, 127, 128, 255, 256, 511, 512, 4095, 4096,
    0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
    0x100000000ull, 0x7fffffffffffffffull, 0xffffffffffffffffull,
};

/* Write v big-endian in width bytes at p. */
static void put_be(uint8_t *p, uint64_t v, unsigned width)
{
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
}

static void mutate_once(uint8_t *buf, size_t *size, size_t max,
                        const struct corpus *c)
{
    size_t n = *size;
    switch (below(8)) {
    case 0:                                     /* flip a bit */
        if (n)
            buf[below(n)] ^= (uint8_t)(1u << below(8));
        break;
    case 1:                                     /* a random byte */
        if (n)
            buf[below(n)] = (uint8_t)rng();
        break;
    case 2:                                     /* add or subtract a little */
        if (n)
            buf[below(n)] += (uint8_t)(below(33) - 16);
        break;
    case 3: {                                   /* an interesting field */
        unsigned widths[] = { 1, 2, 4, 8 };
        unsigned w = widths[below(4)];
        if (n >= w)
            put_be(buf + below(n - w + 1),
                   interesting[below(sizeof interesting /
                                     sizeof interesting[0])], w);
        break;
    }
    case 4: {                                   /* insert random bytes */
        size_t k = 1 + below(16), at = below(n + 1);
        if (n + k > max)
            break;
        memmove(buf + at + k, buf + at, n - at);
        for (size_t i = 0; i < k; i++)
            buf[at + i] = (uint8_t)rng();
        *size = n + k;
        break;
    }
    case 5: {                                   /* erase bytes */
        if (!n)
            break;
        size_t at = below(n), k = 1 + below(n - at < 32 ? n - at : 32);
        memmove(buf + at, buf + at + k, n - at - k);
        *size = n - k;
        break;
    }
    case 6: {                                   /* copy a piece within */
        if (n < 2)
            break;
        size_t from = below(n), to = below(n), k = 1 + below(64);
        if (k > n - from)
            k = n - from;
        if (k > n - to)
            k = n - to;
        memmove(buf + to, buf + from, k);
        break;
    }
    default: {                                  /* splice another seed */
        if (!c->count)
            break;
        const struct input *o = &c->inputs[below(c->count)];
        if (!o->size)
            break;
        size_t from = below(o->size), at = below(n + 1);
        size_t k = o->size - from;
        if (at + k > max)
            k = max - at;
        memcpy(buf + at, o->data + from, k);
        if (at + k > n)
            *size = at + k;
        break;
    }
    }
}

/* ------------------------------------------------------------------ */
/* main                                                                 */
/* ------------------------------------------------------------------ */

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-n COUNT] [-s SEED] [-t SECONDS] [-v] "
            "PATH...\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long count = DEFAULT_COUNT, seed = 1;
    unsigned timeout = DEFAULT_TIMEOUT;
    bool verbose = false;
    int opt;

    const char *slash = strrchr(argv[0], '/');
    target = slash ? slash + 1 : argv[0];
    while ((opt = getopt(argc, argv, "n:s:t:v")) != -1) {
        switch (opt) {
        case 'n':
            count = strtoul(optarg, NULL, 0);
            break;
        case 's':
            seed = strtoul(optarg, NULL, 0);
            break;
        case 't':
            timeout = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 'v':
            verbose = true;
            break;
        default:
            usage(argv[0]);
        }
    }

    struct corpus c = { 0 };
    for (int i = optind; i < argc; i++)
        corpus_load(&c, argv[i]);
    install_handlers();

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long index = 0;
    for (size_t i = 0; i < c.count; i++, index++) {
        if (verbose)
            fprintf(stderr, "driver: %s\n", c.inputs[i].name);
        run(c.inputs[i].data, c.inputs[i].size, index, c.inputs[i].name,
            timeout);
    }

    size_t max = c.max_size > DEFAULT_MAX_LEN ? c.max_size : DEFAULT_MAX_LEN;
    uint8_t *buf = malloc(max);
    if (!buf) {
        fprintf(stderr, "driver: out of memory\n");
        return 1;
    }
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (unsigned long m = 0; m < count; m++, index++) {
        size_t size = 0;
        if (c.count) {
            const struct input *base = &c.inputs[below(c.count)];
            memcpy(buf, base->data, base->size);
            size = base->size;
        }
        for (size_t k = 1 + below(8); k; k--)
            mutate_once(buf, &size, max, &c);
        char name[64];
        snprintf(name, sizeof name, "mutation %lu, seed %lu", m, seed);
        run(buf, size, index, name, timeout);
    }
    free(buf);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s: %zu corpus inputs and %lu mutations (seed %lu) passed in "
           "%.1f s\n", target, c.count, count, seed, secs);
    for (size_t i = 0; i < c.count; i++) {
        free(c.inputs[i].name);
        free(c.inputs[i].data);
    }
    free(c.inputs);
    return 0;
}
