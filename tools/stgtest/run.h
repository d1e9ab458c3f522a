/*
 * run.h - one run of spd-stgtest: the configuration the command line
 * gives, the threads that issue requests, the first failure and what the
 * diagnosis made of it.
 */
#ifndef STGTEST_RUN_H
#define STGTEST_RUN_H

#include <pthread.h>
#include <stdatomic.h>

#include "stgtest.h"

enum stg_unmap_zeroes { UNMAP_ZEROES_AUTO, UNMAP_ZEROES_YES, UNMAP_ZEROES_NO };

struct stg_config {
    const char *spec;               /* the target as given */
    const struct stg_target *target;
    struct stg_target_options topt;
    unsigned threads;
    uint64_t min_bytes, max_bytes;  /* request sizes */
    unsigned mix[STG_KINDS];        /* weights */
    double seconds;                 /* 0: by op count */
    uint64_t ops;                   /* 0: by time */
    uint64_t seed;
    bool sequential, verify, json, progress;
    uint64_t size;                  /* bytes to test; 0: all */
    enum stg_unmap_zeroes unmap_zeroes;
    unsigned timeout;               /* seconds a request may take */
};

enum stg_failure_kind { FAIL_NONE, FAIL_VERIFY, FAIL_IO, FAIL_TIMEOUT };

struct stg_failure {
    enum stg_failure_kind kind;
    enum stg_kind op;
    uint64_t op_lba;
    uint32_t op_blocks;
    uint64_t lba;                   /* the first bad block */
    uint64_t expected;              /* its state in the table */
    struct stg_seen seen;           /* what the read found */
    int error;
    char detail[128];
    const char *verdict;            /* "lost write", "torn write", ... */
    char diagnosis[256];
};

struct stg_worker;

struct stg_run {
    struct stg_config cfg;
    struct stg_geometry geo;
    uint64_t blocks;                /* tested: geo.blocks or --size */
    uint32_t min_blocks, max_blocks;
    struct stg_table *table;        /* NULL without verify */
    struct stg_worker *workers;
    uint64_t start_ns, end_ns, deadline_ns;
    atomic_bool stop;
    atomic_uint finished;
    atomic_uint_fast64_t next_generation;
    pthread_mutex_t failure_lock;
    struct stg_failure failure;
};

/* Per kind of request: counts and latencies, summed over the threads. */
struct stg_totals {
    struct stg_hist hist[STG_KINDS];
    uint64_t verified_blocks;
};

/* Open every connection (0, or -1 after printing why), run the workload,
 * then diagnose a failure. */
int stg_run_open(struct stg_run *run);
void stg_run_start(struct stg_run *run);
/* Progress while it runs: ops and bytes done so far. */
void stg_run_progress(struct stg_run *run, uint64_t ops[STG_KINDS],
                      uint64_t bytes[STG_KINDS]);
void stg_run_join(struct stg_run *run, struct stg_totals *totals);
void stg_run_diagnose(struct stg_run *run);
void stg_run_close(struct stg_run *run);

#endif
