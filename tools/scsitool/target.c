/*
 * target.c - the three ways spd-scsitool reaches a logical unit: SG_IO on
 * a Linux SCSI device node, an iSCSI login through libiscsi, or libspd's
 * engine on an in-memory unit in this process. Each carries one CDB and
 * brings back status, sense bytes and data-in as the wire had them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scsitool.h"
#include "spd/scsi.h"
#include "util/bytes.h"

#define INITIATOR "iqn.2026-11.org.spd:scsitool"

/* ---- SG_IO ------------------------------------------------------------ */

struct sg {
    int fd;
    unsigned timeout_ms;
};

static int sg_run(struct target *t, struct xfer *x)
{
    struct sg *sg = t->priv;
    static const int dirs[] = { [SPD_DIR_NONE] = SG_DXFER_NONE,
                                [SPD_DIR_IN] = SG_DXFER_FROM_DEV,
                                [SPD_DIR_OUT] = SG_DXFER_TO_DEV };
    sg_io_hdr_t h = {
        .interface_id = 'S', .cmd_len = x->cdb_len, .cmdp = x->cdb,
        .dxfer_direction = x->len ? dirs[x->dir] : SG_DXFER_NONE,
        .dxferp = x->data, .dxfer_len = x->len, .sbp = x->sense,
        .mx_sb_len = sizeof x->sense, .timeout = sg->timeout_ms,
    };
    if (ioctl(sg->fd, SG_IO, &h) < 0) {
        fprintf(stderr, "spd-scsitool: SG_IO: %s\n", strerror(errno));
        return -1;
    }
    /* DRIVER_SENSE (08h) only says sense came with the status. */
    if (h.host_status || (h.driver_status & ~0x08)) {
        fprintf(stderr, "spd-scsitool: SG_IO: the command did not reach the "
                "device (host status %02xh, driver status %02xh)\n",
                h.host_status, h.driver_status);
        return -1;
    }
    x->status = h.status;
    x->sense_len = h.sb_len_wr;
    x->got = x->dir == SPD_DIR_IN ? x->len - (uint32_t)h.resid : 0;
    return 0;
}

static void sg_close(struct target *t)
{
    struct sg *sg = t->priv;
    close(sg->fd);
    free(sg);
}

static int sg_open(struct target *t, const char *path, unsigned timeout)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS))
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "spd-scsitool: %s: %s\n", path, strerror(errno));
        return EXIT_TRANSPORT;
    }
    int version;
    if (fstat(fd, &st) || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ||
        ioctl(fd, SG_GET_VERSION_NUM, &version)) {   /* sg and sd answer it */
        fprintf(stderr, "spd-scsitool: %s is not a SCSI device (SG_IO "
                "takes /dev/sgN or /dev/sdX)\n", path);
        close(fd);
        return EXIT_USAGE;
    }
    struct sg *sg = malloc(sizeof *sg);
    if (!sg) {
        close(fd);
        return EXIT_TRANSPORT;
    }
    *sg = (struct sg){ fd, timeout * 1000 };
    *t = (struct target){ sg_run, sg_close, sg };
    return 0;
}

/* ---- iSCSI ------------------------------------------------------------ */

struct isc {
    struct iscsi_context *iscsi;
    int lun;
};

static int isc_run(struct target *t, struct xfer *x)
{
    struct isc *c = t->priv;
    static const int dirs[] = { [SPD_DIR_NONE] = SCSI_XFER_NONE,
                                [SPD_DIR_IN] = SCSI_XFER_READ,
                                [SPD_DIR_OUT] = SCSI_XFER_WRITE };
    struct scsi_task *task = scsi_create_task(x->cdb_len, x->cdb,
                                              x->len ? dirs[x->dir]
                                                     : SCSI_XFER_NONE,
                                              (int)x->len);
    struct iscsi_data out = { (int)x->len, x->data };
    if (!task || !iscsi_scsi_command_sync(c->iscsi, c->lun, task,
                                          x->dir == SPD_DIR_OUT ? &out : NULL) ||
        task->status < 0 || task->status > 0xff) {
        fprintf(stderr, "spd-scsitool: iSCSI: %s\n",
                task ? iscsi_get_error(c->iscsi) : strerror(ENOMEM));
        if (task)
            scsi_free_scsi_task(task);
        return -1;
    }
    x->status = (uint8_t)task->status;
    const struct scsi_data *in = &task->datain;
    if (x->status == SPD_STATUS_CHECK_CONDITION && in->size >= 2) {
        /* The sense data, after its two-byte length (iSCSI 11.4.7.2). */
        size_t n = get_be16(in->data);
        if (n > (size_t)in->size - 2)
            n = (size_t)in->size - 2;
        x->sense_len = (uint8_t)(n < sizeof x->sense ? n : sizeof x->sense);
        memcpy(x->sense, in->data + 2, x->sense_len);
    } else if (x->dir == SPD_DIR_IN && in->size > 0) {
        x->got = (uint32_t)in->size < x->len ? (uint32_t)in->size : x->len;
        memcpy(x->data, in->data, x->got);
    }
    scsi_free_scsi_task(task);
    return 0;
}

static void isc_close(struct target *t)
{
    struct isc *c = t->priv;
    iscsi_logout_sync(c->iscsi);
    iscsi_destroy_context(c->iscsi);
    free(c);
}

/* Log in as initiator (NULL: Spd's own name) with an ISID of its own:
 * derived from the name when given, so that every run with one name is
 * one initiator port (persistent reservations are kept for it). */
static int isc_open(struct target *t, const char *url_text, unsigned timeout,
                    const char *initiator)
{
    struct isc *c = calloc(1, sizeof *c);
    struct iscsi_context *iscsi =
        iscsi_create_context(initiator ? initiator : INITIATOR);
    if (iscsi && initiator) {
        uint32_t h = 2166136261u;              /* FNV-1a */
        for (const char *p = initiator; *p; p++)
            h = (h ^ (uint8_t)*p) * 16777619u;
        iscsi_set_isid_random(iscsi, h & 0xffffff, h >> 24);
    }
    struct iscsi_url *url = iscsi ? iscsi_parse_full_url(iscsi, url_text)
                                  : NULL;
    if (!url) {
        fprintf(stderr, "spd-scsitool: %s: %s\n", url_text,
                iscsi ? iscsi_get_error(iscsi) : strerror(ENOMEM));
        if (iscsi)
            iscsi_destroy_context(iscsi);
        free(c);
        return EXIT_USAGE;
    }
    iscsi_set_targetname(iscsi, url->target);
    iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_timeout(iscsi, (int)timeout);
    if (url->user[0])
        iscsi_set_initiator_username_pwd(iscsi, url->user, url->passwd);
    int lun = url->lun;
    int r = c ? iscsi_full_connect_sync(iscsi, url->portal, lun) : -1;
    iscsi_destroy_url(url);
    if (r) {
        fprintf(stderr, "spd-scsitool: %s: no login: %s\n", url_text,
                c ? iscsi_get_error(iscsi) : strerror(ENOMEM));
        iscsi_destroy_context(iscsi);
        free(c);
        return EXIT_TRANSPORT;
    }
    *c = (struct isc){ iscsi, lun };
    *t = (struct target){ isc_run, isc_close, c };
    return 0;
}

/* ---- an in-memory unit in this process ---------------------------- */

/* The smallest device that can unmap and say what is mapped: a buffer
 * and a byte per block. Requests run on the caller's thread. */
struct mem {
    spd_unit *unit;
    uint8_t *data;
    bool *mapped;
    uint32_t bl;
};

static int mem_read(void *ctx, spd_io *io, void *buf, uint64_t lba,
                    uint32_t blocks, bool fua)
{
    struct mem *m = ctx;
    memcpy(buf, m->data + lba * m->bl, (size_t)blocks * m->bl);
    return SPD_OK;
}

static int mem_write(void *ctx, spd_io *io, const void *buf, uint64_t lba,
                     uint32_t blocks, bool fua)
{
    struct mem *m = ctx;
    memcpy(m->data + lba * m->bl, buf, (size_t)blocks * m->bl);
    memset(m->mapped + lba, true, blocks);
    return SPD_OK;
}

static int mem_unmap(void *ctx, spd_io *io, const spd_unmap_desc *descs,
                     uint32_t count)
{
    struct mem *m = ctx;
    for (uint32_t i = 0; i < count; i++) {
        memset(m->data + descs[i].lba * m->bl, 0, (size_t)descs[i].blocks * m->bl);
        memset(m->mapped + descs[i].lba, false, descs[i].blocks);
    }
    return SPD_OK;
}

static int64_t mem_extent(void *ctx, uint64_t lba, uint32_t blocks,
                          bool *mapped)
{
    struct mem *m = ctx;
    uint32_t n = 1;
    *mapped = m->mapped[lba];
    while (n < blocks && m->mapped[lba + n] == *mapped)
        n++;
    return n;
}

static const spd_ops mem_ops = {
    SPD_OPS_INIT, .read = mem_read, .write = mem_write, .unmap = mem_unmap,
    .extent = mem_extent,
};

static int mem_run(struct target *t, struct xfer *x)
{
    struct mem *m = t->priv;
    spd_scsi_cmd cmd = { SPD_SCSI_CMD_INIT, .cdb_len = x->cdb_len,
                         .data = x->data, .data_len = x->len };
    memcpy(cmd.cdb, x->cdb, x->cdb_len);
    x->status = (uint8_t)spd_unit_scsi_run(m->unit, &cmd);
    x->got = x->dir == SPD_DIR_IN ? cmd.data_in_len : 0;
    x->sense_len = cmd.sense_len;
    memcpy(x->sense, cmd.sense, cmd.sense_len);
    return 0;
}

static void mem_close(struct target *t)
{
    struct mem *m = t->priv;
    spd_unit_destroy(m->unit);
    free(m->data);
    free(m->mapped);
    free(m);
}

#define MEM_MAX (1ull << 30)

/* "mem:SIZE[/BLOCK]": SIZE with K, M or G, BLOCK 512 to 65536. */
static int mem_open(struct target *t, const char *spec)
{
    char *end;
    unsigned long long size = strtoull(spec, &end, 10), bl = 512;
    int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    end += shift != 0;
    size = size > MEM_MAX >> shift ? 0 : size << shift;    /* 0: refused */
    if (*end == '/' && isdigit((unsigned char)end[1]))
        bl = strtoull(end + 1, &end, 10);
    if (!isdigit((unsigned char)*spec))
        size = 0;
    spd_params p = { SPD_PARAMS_INIT, .block_length = (uint32_t)bl,
                     .block_count = bl ? size / bl : 0,
                     .unmap_supported = true, .unmap_reads_zero = true };
    if (*end || !size || size > MEM_MAX || bl > 65536 || !bl || size % bl ||
        spd_uuid_generate(p.uuid) || spd_params_check(&p)) {
        fprintf(stderr, "spd-scsitool: mem:%s: not SIZE[/BLOCK] of whole "
                "blocks of 512 to 65536 bytes, at most 1G\n", spec);
        return EXIT_USAGE;
    }
    struct mem *m = calloc(1, sizeof *m);
    if (m) {
        m->bl = (uint32_t)bl;
        m->data = calloc(1, size);
        m->mapped = calloc(1, p.block_count);
    }
    if (m && m->data && m->mapped &&
        (m->unit = spd_unit_create(&p, &mem_ops, m))) {
        *t = (struct target){ mem_run, mem_close, m };
        /* As an initiator's login does: take any power-on unit attention. */
        struct xfer tur = { .cdb_len = 6 };
        mem_run(t, &tur);
        return 0;
    }
    fprintf(stderr, "spd-scsitool: mem:%s: %s\n", spec, spd_errmsg());
    if (m) {
        free(m->data);
        free(m->mapped);
    }
    free(m);
    return EXIT_TRANSPORT;
}

int target_open(struct target *t, const char *spec, unsigned timeout,
                const char *initiator)
{
    if (!strncmp(spec, "iscsi://", 8))
        return isc_open(t, spec, timeout, initiator);
    if (!strncmp(spec, "mem:", 4))
        return mem_open(t, spec + 4);
    return sg_open(t, spec, timeout);
}
