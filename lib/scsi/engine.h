/*
 * engine.h - the SCSI block command engine (SPC-4 / SBC-3 subset), inside
 * libspd.
 *
 * Pure code: a CDB and data in; either an immediate answer (data-in bytes,
 * status, sense) or one block request for the unit core to run. No
 * threads, no I/O, so it is tested exhaustively in-process.
 */
#ifndef SPD_SCSI_ENGINE_H
#define SPD_SCSI_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "spd/scsi.h"
#include "spd/spd.h"

/* The I_T nexuses a logical unit keeps state for; beyond them the least
 * recently seen one without a registration or reservation is forgotten
 * (and gets a power-on unit attention when it comes back). */
#define SCSI_NEXUS_MAX 64

/* One I_T nexus and its state (SPC-4): pending unit attentions and its
 * persistent reservation registration. */
struct scsi_nexus_rec {
    spd_scsi_nexus id;
    bool used;
    uint32_t ua;                /* pending unit attentions: 1 << enum scsi_ua */
    bool registered;
    bool all_tg_pt;
    uint64_t key;               /* reservation key, when registered */
    uint64_t seen;              /* lu->nexus_clock when last seen */
};

/* Unit attention conditions, by priority (the lowest is reported first). */
enum scsi_ua {
    UA_POWER_ON,                /* 29h/00h: a nexus the unit has not seen */
    UA_RESET,                   /* 29h/03h: logical unit or target reset */
    UA_RESERVATIONS_PREEMPTED,  /* 2Ah/03h */
    UA_RESERVATIONS_RELEASED,   /* 2Ah/04h */
    UA_REGISTRATIONS_PREEMPTED, /* 2Ah/05h */
    UA_MODE_CHANGED,            /* 2Ah/01h: by another nexus */
    UA_CAPACITY_CHANGED,        /* 2Ah/09h */
    UA_ALUA_CHANGED,            /* 2Ah/06h: asymmetric access state */
    UA_COUNT
};

/* The outcome of an EXTENDED COPY, for RECEIVE COPY RESULTS. */
#define SCSI_COPY_STATUS_MAX 8
struct scsi_copy_status {
    bool used;
    int slot;                   /* the nexus that sent it */
    uint8_t list_id;
    uint16_t segments;          /* processed */
    uint32_t blocks;            /* copied */
};

/* What the engine knows of the logical unit. */
struct scsi_lu {
    const spd_params *params;          /* validated */
    uint32_t max_transfer_blocks;      /* params->max_transfer_length / block_length */
    bool absent;                       /* the stand-in for a LUN a target lacks */
    /* Mode parameters, the engine's alone: MODE SELECT changes them while
     * other commands of the unit run, on any thread. */
    pthread_mutex_t mode_lock;
    bool d_sense;                      /* control page D_SENSE; mode_lock */
    _Atomic bool swp;                  /* control page SWP: written under
                                          mode_lock, read anywhere */
    _Atomic uint8_t sanitize;          /* enum scsi_sanitize (sbc.c) */

    /* Nexuses, unit attentions and reservations (nexus.c, pr.c): the
     * state every command is checked against before it runs. Slot 0 is
     * the nexus of in-process callers (spd_scsi_cmd.nexus NULL). */
    pthread_mutex_t nexus_lock;
    struct scsi_nexus_rec nexus[SCSI_NEXUS_MAX];
    uint64_t nexus_clock;
    uint32_t pr_generation;            /* PRGENERATION */
    int pr_holder;                     /* slot holding the persistent
                                          reservation, -1: none */
    uint8_t pr_type;                   /* its TYPE */
    int reserve_holder;                /* RESERVE(6)/(10) holder, -1: none */
    /* Persistent reservations shared with other processes (pr.c): the
     * device's pr_load and pr_update (NULL: not shared); pr_lock orders
     * their calls; pr_stale: load before the next command. */
    struct scsi_pr_store {
        int (*load)(void *ctx, void *buf, size_t cap);
        int (*update)(void *ctx, int (*apply)(void *, void *, size_t),
                      void *arg);
        void *ctx;
    } pr_store;
    pthread_mutex_t pr_lock;
    _Atomic bool pr_stale;
    struct scsi_copy_status copies[SCSI_COPY_STATUS_MAX];  /* the latest */
    unsigned copy_next;
};

/* Whether params' target port groups are valid (alua.c): 0, or -EINVAL
 * with spd_errmsg() saying why. */
int scsi_port_groups_check(const spd_params *params);

void scsi_lu_init(struct scsi_lu *lu, const spd_params *params,
                  uint32_t max_transfer_blocks);
void scsi_lu_fini(struct scsi_lu *lu);
/* Whether sense is built in descriptor format now (D_SENSE). */
bool scsi_lu_d_sense(struct scsi_lu *lu);
/* The logical unit standing in for a LUN a target does not have. */
struct scsi_lu *scsi_absent_lu(void);

enum scsi_action {
    SCSI_DONE,   /* status and data_in_len are final */
    SCSI_IO,     /* run the block request in task->io, then call scsi_io_done() */
};

struct scsi_task {
    /* In: as in spd_scsi_cmd. */
    const uint8_t *cdb;
    uint8_t  cdb_len;
    void    *data;
    uint32_t data_len;
    const spd_scsi_lun *luns;     /* REPORT LUNS: NULL for LUN 0 alone */
    unsigned lun_count;

    /* Out. */
    spd_status status;
    uint32_t data_in_len;

    /* For SCSI_IO: the request to run (done/opaque are the caller's to
     * set). Buffers point into data, or into memory the engine allocated
     * and scsi_task_fini() frees. */
    spd_request io;
    void *owned;          /* engine allocation (unmap descriptors, pattern, bounce) */
    bool compare;         /* VERIFY BYTCHK 01b: io.buf (owned) is compared
                             with data in scsi_io_done() */
    uint64_t alloc;       /* GET LBA STATUS: the allocation length */
    const spd_scsi_nexus *nexus;  /* In: where it comes from (NULL: slot 0) */
    int slot;             /* the nexus's slot in lu->nexus (-1: none free) */
    /* A read-modify-write (scsi_io_again): COMPARE AND WRITE compares
     * the blocks read (io.buf, owned) with the first half of data, then
     * writes the second; ORWRITE ORs data into them and writes them. The
     * caller holds the blocks against other writes across both. */
    uint8_t rmw;          /* enum scsi_rmw */
    bool sanitize;        /* a SANITIZE's request: its end ends the state */
};

/* RMW_COPY: EXTENDED COPY's reads and writes (xcopy.c), not held alone. */
enum scsi_rmw { RMW_NONE, RMW_COMPARE, RMW_OR, RMW_COPY };

/* The outcome of planning (scsi_plan), kept with the command. */
struct scsi_plan {
    spd_data_dir dir;
    uint32_t transfer_length;     /* what the CDB as sent transfers */
    uint32_t buffer_length;       /* data the command uses */
};

/* Room for the decoded CDB a plan keeps (spd_scsi_cmd.plan_state). */
#define SCSI_STATE_SIZE 64

/*
 * Decode and check a CDB once, for scsi_execute_planned(): direction and
 * bytes it transfers, the buffer it needs with data_out bytes of data-out
 * (SPD_SCSI_NO_LIMIT: as the CDB says; less shortens a block write, FCP-4)
 * and the luns a REPORT LUNS lists (count of them). state (SCSI_STATE_SIZE
 * bytes, 8-aligned) keeps the decoded CDB. nexus (NULL: in-process) sent
 * it. Returns 0, or SPD_CHECK with *status set when the command will fail
 * whatever the data.
 */
int scsi_plan(struct scsi_lu *lu, const spd_scsi_nexus *nexus,
              const uint8_t *cdb, uint8_t cdb_len, uint32_t data_out,
              unsigned lun_count, struct scsi_plan *plan, void *state,
              spd_status *status);

/* Execute a CDB scsi_plan() accepted, from its state (task->cdb the same
 * CDB). */
enum scsi_action scsi_execute_planned(struct scsi_lu *lu,
                                      struct scsi_task *task,
                                      const void *state);

/* Decode and execute a CDB (see enum scsi_action). */
enum scsi_action scsi_execute(struct scsi_lu *lu, struct scsi_task *task);

/* After a SCSI_IO request completed with task->io.status: set the task's
 * final status and data_in_len. */
void scsi_io_done(struct scsi_lu *lu, struct scsi_task *task);

/* After scsi_io_done(): whether a further block request is to run in
 * task->io (the write of a read-modify-write), with scsi_io_done() again
 * after it. */
bool scsi_io_again(struct scsi_lu *lu, struct scsi_task *task);

/* EXTENDED COPY: the span of blocks the copy will write (false: none). */
bool scsi_copy_span(const struct scsi_task *task, uint64_t *lba,
                    uint64_t *blocks);

/* Events of the I_T nexus and of the logical unit (nexus.c). */
void scsi_nexus_lost(struct scsi_lu *lu, const spd_scsi_nexus *nexus);
void scsi_lu_reset(struct scsi_lu *lu);
void scsi_lu_capacity_changed(struct scsi_lu *lu);
/* New access states of the unit's target port groups from a list as
 * spd_params_set_alua() takes it, naming exactly params' groups (alua.c);
 * params is lu->params, the unit's own. On a change every nexus gets
 * ASYMMETRIC ACCESS STATE CHANGED. 0, or -EINVAL with nothing changed. */
int scsi_lu_set_alua(struct scsi_lu *lu, spd_params *params,
                     const char *states);
/* Persistent reservations kept in a store shared with other processes
 * (pr.c): share them (after scsi_lu_init; store NULL: the process's own)
 * and free what sharing needs; the stored state changed elsewhere. */
void scsi_pr_share(struct scsi_lu *lu, const struct scsi_pr_store *store);
void scsi_pr_fini(struct scsi_lu *lu);
void scsi_pr_changed(struct scsi_lu *lu);
/* The reservation state as a blob of at most SPD_PR_STATE_MAX bytes:
 * its length. And a blob made the state (len 0: none stored, no
 * registration): 0, or -EINVAL when it is
 * corrupt or of another format, -ENOSPC when its registrations do not
 * fit the nexus slots, and the state is as it was (but for slots made
 * for its nexuses). Slots may be given to other nexuses: a slot found
 * before is to be found again. nexus_lock held for both. */
size_t scsi_pr_encode(const struct scsi_lu *lu, uint8_t *buf);
int scsi_pr_install(struct scsi_lu *lu, const uint8_t *buf, size_t len);
/* Raise a unit attention for every nexus but the one in slot except
 * (-1: for all). */
void scsi_ua_raise(struct scsi_lu *lu, enum scsi_ua ua, int except);

/* Free what the engine allocated for the task. */
void scsi_task_fini(struct scsi_task *task);

/* Build sense data for a status in fixed (70h) or descriptor (72h) format;
 * returns its length (0 for GOOD). */
uint8_t scsi_sense_build(const spd_status *status, bool descriptor,
                         uint8_t *buf, uint8_t cap);

/* The status for an invalid field: ILLEGAL REQUEST, INVALID FIELD IN CDB
 * (or PARAMETER LIST when in_cdb is false), with the field pointer to byte
 * and bit (bit < 0: no bit pointer). */
void scsi_invalid_field(spd_status *status, bool in_cdb, uint16_t byte, int bit);

#endif /* SPD_SCSI_ENGINE_H */
