/*
 * stats.c - latency histograms: log-linear buckets (32 per power of two
 * above 64 ns, so a quantile is within about 3% of the truth) that cost
 * one increment per request and merge by adding.
 */
#include <time.h>

#include "stgtest.h"

static unsigned bucket_of(uint64_t ns)
{
    if (ns < 64)
        return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns);     /* >= 6 */
    unsigned b = 64 + (e - 6) * 32 + (unsigned)((ns >> (e - 5)) & 31);
    return b < STG_BUCKETS ? b : STG_BUCKETS - 1;
}

/* The middle of a bucket's range. */
static uint64_t value_of(unsigned b)
{
    if (b < 64)
        return b;
    unsigned e = (b - 64) / 32 + 6, sub = (b - 64) % 32;
    uint64_t low = (1ull << e) + ((uint64_t)sub << (e - 5));
    return low + (1ull << (e - 6));
}

void stg_hist_add(struct stg_hist *h, uint64_t ns, uint64_t bytes)
{
    h->count++;
    h->bytes += bytes;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->bucket[bucket_of(ns)]++;
}

void stg_hist_merge(struct stg_hist *into, const struct stg_hist *from)
{
    into->count += from->count;
    into->bytes += from->bytes;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    for (unsigned i = 0; i < STG_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
}

uint64_t stg_hist_quantile(const struct stg_hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5), seen = 0;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < STG_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v < h->max_ns ? v : h->max_ns;
        }
    }
    return h->max_ns;
}

uint64_t stg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
