/*
 * scsitool.h - spd-scsitool's parts: targets that carry one CDB (SG_IO,
 * iSCSI, a unit in this process), decoders of what comes back, and the
 * output that prints it as text or JSON.
 */
#ifndef SCSITOOL_H
#define SCSITOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spd/spd.h"

/* Exit statuses. */
#define EXIT_GOOD      0
#define EXIT_CHECK     1   /* the command ended in a status other than GOOD */
#define EXIT_USAGE     2
#define EXIT_TRANSPORT 3   /* the target could not be reached or answer */

/* One command: the CDB and its data, then what came back. */
struct xfer {
    uint8_t cdb[SPD_CDB_MAX];
    uint8_t cdb_len;
    spd_data_dir dir;
    uint8_t *data;          /* IN: room for len bytes; OUT: len bytes sent */
    uint32_t len;
    uint32_t got;           /* data-in bytes received */
    uint8_t status;         /* SAM status */
    uint8_t sense[SPD_SENSE_MAX];
    uint8_t sense_len;
};

/* Where commands go: SG_IO, iSCSI or an in-process unit. */
struct target {
    /* 0 when the command ran (whatever its status); -1 after printing why
     * it could not. */
    int (*run)(struct target *t, struct xfer *x);
    void (*close)(struct target *t);
    void *priv;
};

/* Open "/dev/sgN" (any SCSI device node), "iscsi://..." (logged in as
 * initiator, NULL: Spd's name) or "mem:SIZE"; 0, or an exit status after
 * printing why not. */
int target_open(struct target *t, const char *spec, unsigned timeout,
                const char *initiator);

/* Output: "key: value" lines, or one JSON object (keys are snake_case;
 * the text form writes them with spaces). */
void out_begin(bool json);
void out_end(void);
void out_str(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void out_u64(const char *key, uint64_t value);
void out_bool(const char *key, bool value);
void out_hex(const char *key, const uint8_t *data, size_t len);
void out_open(const char *key, bool list);   /* key NULL inside a list */
void out_close(void);

/* Decoders of data-in: each prints what buf (len bytes) says. */
void decode_inquiry(const uint8_t *buf, size_t len);
void decode_vpd(const uint8_t *buf, size_t len);
void decode_mode_sense10(const uint8_t *buf, size_t len);
void decode_capacity10(const uint8_t *buf, size_t len);
void decode_capacity16(const uint8_t *buf, size_t len);
void decode_lba_status(const uint8_t *buf, size_t len);
void decode_luns(const uint8_t *buf, size_t len);
void decode_port_groups(const uint8_t *buf, size_t len);
void decode_pr_keys(const uint8_t *buf, size_t len);
void decode_pr_reservation(const uint8_t *buf, size_t len);
/* The status and, for a check condition, the sense decoded. */
void decode_status(const struct xfer *x);

#endif
