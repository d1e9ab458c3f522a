/*
 * log.c - the per-unit debug log: one line per request or CDB, written
 * when it completes, so each line carries the outcome.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/errmsg.h"
#include "spd/scsi.h"
#include "core/unit.h"

static const struct {
    const char *name;
    unsigned bit;
} debug_names[] = {
    { "read", SPD_DEBUG_READ },   { "write", SPD_DEBUG_WRITE },
    { "flush", SPD_DEBUG_FLUSH }, { "unmap", SPD_DEBUG_UNMAP },
    { "scsi", SPD_DEBUG_SCSI },   { "all", SPD_DEBUG_ALL },
};

static unsigned debug_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof debug_names / sizeof debug_names[0]; i++)
        if (strlen(debug_names[i].name) == len &&
            !strncasecmp(debug_names[i].name, name, len))
            return debug_names[i].bit;
    return 0;
}

int spd_debug_mask_parse(const char *text, unsigned *mask)
{
    char *end;
    errno = 0;
    unsigned long number = strtoul(text, &end, 0);
    if (*text && !*end && !errno && number <= SPD_DEBUG_ALL) {
        *mask = (unsigned)number;
        return 0;
    }
    unsigned bits = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, ",");
        unsigned bit = debug_bit(p, len);
        if (!bit)
            return spd_set_error(EINVAL, "debug mask '%s': expected a number "
                                 "up to 0x%x or names from read, write, "
                                 "flush, unmap, scsi, all", text,
                                 SPD_DEBUG_ALL);
        bits |= bit;
        p += len + (p[len] == ',');
    }
    if (!bits)
        return spd_set_error(EINVAL, "debug mask is empty");
    *mask = bits;
    return 0;
}

void spd_unit_set_debug_log(spd_unit *unit, unsigned mask, FILE *file)
{
    unit->debug_file = file;
    atomic_store(&unit->debug_mask, mask & SPD_DEBUG_ALL);
}

/* Append printf output to a line buffer, never past its end. */
static void line_add(char *line, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void line_add(char *line, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap;
}

static void status_add(char *line, size_t cap, size_t *len,
                       const spd_status *st)
{
    if (spd_status_good(st)) {
        line_add(line, cap, len, "GOOD");
        return;
    }
    line_add(line, cap, len, "CHECK CONDITION %s, %s",
             spd_sense_key_name(st->sense_key),
             spd_asc_name(st->asc, st->ascq));
    if (st->info_valid)
        line_add(line, cap, len, ", information %llu",
                 (unsigned long long)st->information);
}

/* End the line (cut short if it had to be) and write it. */
static void line_write(spd_unit *unit, char *line, size_t len, size_t cap)
{
    FILE *f = unit->debug_file ? unit->debug_file : stderr;
    if (len > cap - 2)
        len = cap - 2;
    line[len] = '\n';
    line[len + 1] = '\0';
    /* One call per line: stdio's lock keeps concurrent lines whole. */
    fputs(line, f);
    fflush(f);
}

static unsigned request_debug_bit(spd_op op)
{
    switch (op) {
    case SPD_OP_READ:
        return SPD_DEBUG_READ;
    case SPD_OP_WRITE:
    case SPD_OP_WRITE_SAME:
    case SPD_OP_WRITE_ZEROES:
        return SPD_DEBUG_WRITE;
    case SPD_OP_EXTENTS:
        return SPD_DEBUG_READ;
    case SPD_OP_FLUSH:
        return SPD_DEBUG_FLUSH;
    case SPD_OP_UNMAP:
        return SPD_DEBUG_UNMAP;
    }
    return 0;
}

void log_request(spd_unit *unit, const spd_request *req)
{
    static const char *const op_names[] = {
        [SPD_OP_READ] = "READ", [SPD_OP_WRITE] = "WRITE",
        [SPD_OP_WRITE_SAME] = "WRITE SAME", [SPD_OP_FLUSH] = "FLUSH",
        [SPD_OP_UNMAP] = "UNMAP", [SPD_OP_WRITE_ZEROES] = "WRITE ZEROES",
        [SPD_OP_EXTENTS] = "EXTENTS",
    };
    if (!(atomic_load(&unit->debug_mask) & request_debug_bit(req->op)))
        return;

    char line[512];
    size_t len = 0;
    line_add(line, sizeof line, &len, "spd unit %u: %s", unit->number,
             op_names[req->op]);
    if (req->op == SPD_OP_UNMAP) {
        line_add(line, sizeof line, &len, " %u ranges", req->desc_count);
        for (uint32_t i = 0; i < req->desc_count && i < 4; i++)
            line_add(line, sizeof line, &len, " %llu+%u",
                     (unsigned long long)req->descs[i].lba,
                     req->descs[i].blocks);
        if (req->desc_count > 4)
            line_add(line, sizeof line, &len, " ...");
    } else {
        line_add(line, sizeof line, &len, " lba %llu blocks %llu%s",
                 (unsigned long long)req->lba,
                 (unsigned long long)req->blocks, req->fua ? " fua" : "");
        if (req->op == SPD_OP_WRITE_ZEROES && req->flags)
            line_add(line, sizeof line, &len, "%s%s",
                     req->flags & SPD_REQ_MAY_UNMAP ? " may-unmap" : "",
                     req->flags & SPD_REQ_FAST_ZERO ? " fast" : "");
    }
    line_add(line, sizeof line, &len, ": ");
    status_add(line, sizeof line, &len, &req->status);
    line_write(unit, line, len, sizeof line);
}

void log_scsi(spd_unit *unit, const spd_scsi_cmd *cmd)
{
    if (!(atomic_load(&unit->debug_mask) & SPD_DEBUG_SCSI))
        return;

    char line[512];
    size_t len = 0;
    line_add(line, sizeof line, &len, "spd unit %u: CDB", unit->number);
    for (uint8_t i = 0; i < cmd->cdb_len && i < SPD_CDB_MAX; i++)
        line_add(line, sizeof line, &len, " %02x", cmd->cdb[i]);
    line_add(line, sizeof line, &len, " %s: ",
             spd_cdb_name(cmd->cdb, cmd->cdb_len));
    status_add(line, sizeof line, &len, &cmd->status);
    if (cmd->data_in_len)
        line_add(line, sizeof line, &len, ", %u bytes in", cmd->data_in_len);
    line_write(unit, line, len, sizeof line);
}
