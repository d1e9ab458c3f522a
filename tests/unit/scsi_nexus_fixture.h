/*
 * scsi_nexus_fixture.h - the engine fixture's commands from several I_T
 * nexuses (A, B and C as iSCSI initiator ports), for the tests of unit
 * attentions and reservations. Header only, as scsi_fixture.h.
 */
#ifndef SPD_TEST_SCSI_NEXUS_FIXTURE_H
#define SPD_TEST_SCSI_NEXUS_FIXTURE_H

#include "scsi_fixture.h"

enum { NX_A, NX_B, NX_C, NX_COUNT };

static spd_scsi_nexus nexuses[NX_COUNT];

/* Names iqn.2026-01.org.example:a, b, c; ISIDs 80 00 00 00 00 0i. */
static inline void nexus_setup(void)
{
    for (int i = 0; i < NX_COUNT; i++) {
        nexuses[i] = (spd_scsi_nexus){ SPD_SCSI_NEXUS_INIT, .has_isid = true,
                                       .isid = { 0x80, 0, 0, 0, 0, (uint8_t)i } };
        snprintf(nexuses[i].name, sizeof nexuses[i].name,
                 "iqn.2026-01.org.example:%c", 'a' + i);
    }
}

/* Execute cdb from nexus nx with data_len bytes of f->data. */
static inline enum scsi_action nx_run(struct fx *f, int nx, const uint8_t *cdb,
                                      uint8_t len, uint32_t data_len)
{
    return fx_run_as(f, &nexuses[nx], cdb, len, data_len);
}

static const uint8_t tur[6] = { SPD_SCSI_TEST_UNIT_READY };
static const uint8_t inquiry[6] = { SPD_SCSI_INQUIRY, 0, 0, 0, 96, 0 };
static const uint8_t read10[10] = { SPD_SCSI_READ_10, 0, 0, 0, 0, 1, 0, 0, 1 };
static const uint8_t write10[10] = { SPD_SCSI_WRITE_10, 0, 0, 0, 0, 1, 0, 0, 1 };

/* TUR until GOOD: clears the power-on unit attention of a new nexus. */
static inline void nx_clear(struct fx *f, int nx)
{
    for (int i = 0; i < 8; i++) {
        nx_run(f, nx, tur, 6, 0);
        if (spd_status_good(&f->t.status))
            return;
    }
    EXPECT(!"unit attentions never cleared");
}

static inline bool conflicted(const struct fx *f)
{
    return f->t.status.scsi_status == SPD_STATUS_RESERVATION_CONFLICT;
}

/* PERSISTENT RESERVE OUT from nx: service action, type, key, SA key,
 * flags byte 20. */
static inline void prout(struct fx *f, int nx, uint8_t sa, uint8_t type,
                         uint64_t key, uint64_t sa_key, uint8_t flags)
{
    static uint8_t cdb[10];
    memset(cdb, 0, sizeof cdb);
    cdb[0] = SPD_SCSI_PERSISTENT_RESERVE_OUT;
    cdb[1] = sa;
    cdb[2] = type;
    cdb[8] = 24;
    memset(f->data, 0, 24);
    put_be64(f->data, key);
    put_be64(f->data + 8, sa_key);
    f->data[20] = flags;
    EXPECT_EQ(nx_run(f, nx, cdb, 10, 24), SCSI_DONE);
}

/* PERSISTENT RESERVE IN from nx, 1024 bytes of room (0xee before). */
static inline void prin(struct fx *f, int nx, uint8_t sa)
{
    static uint8_t cdb[10];
    memset(cdb, 0, sizeof cdb);
    cdb[0] = SPD_SCSI_PERSISTENT_RESERVE_IN;
    cdb[1] = sa;
    put_be16(cdb + 7, 1024);
    memset(f->data, 0xee, 1024);
    EXPECT_EQ(nx_run(f, nx, cdb, 10, 1024), SCSI_DONE);
}

#endif
