/*
 * tcmu.h - export a storage unit through the kernel's own SCSI target,
 * LIO, with its userspace backstore TCMU (target_core_user): every SCSI
 * command that LIO receives for the backstore reaches Spd's engine, which
 * answers it as for any other transport.
 *
 * What start does, through configfs (/sys/kernel/config/target):
 *   - creates the backstore core/user_0/NAME with the unit's size and
 *     block length and the config string "spd/NAME", and enables it;
 *   - opens its UIO device (/dev/uioN, the one whose name is
 *     "tcm-user/0/NAME/spd/NAME") and maps its mailbox, command ring and
 *     data area;
 *   - with loop, adds a tcm_loop target with the backstore as LUN 0, so
 *     that the kernel sees a local SCSI disk, /dev/sdX (and /dev/sgN).
 * Without loop the backstore is there for any LIO fabric (iSCSI,
 * vhost-scsi, Fibre Channel) that targetcli or configfs links to it.
 *
 * LIO itself answers REPORT LUNS, and, unless the options say otherwise,
 * the reservation commands (see spd_tcmu_reservations). One thread serves
 * the ring: it hands each command's CDB and data to the engine
 * (spd_unit_scsi()) and writes status and sense back into the ring;
 * completions on other threads come back to it through an eventfd.
 *
 * The ring's thread also hears the kernel's TCM-USER netlink events for
 * the backstore: dev_size written in configfs while served resizes the
 * unit (whole blocks, up to the most the device has served); another
 * size, or a new dev_config, is refused and written back (docs/tcmu.md).
 *
 * When the process dies (SIGKILL, a crash) the backstore and the disk
 * stay; the kernel fails the commands the process held, and every later
 * one, with CHECK CONDITION once they are older than the backstore's
 * cmd_time_out (20 s, below the SCSI disk's own 30 s). An export started again with the same
 * name takes the backstore over (the kernel fails what was left in the
 * ring with BUSY, which initiators retry) and serves the same disk.
 */
#ifndef SPD_TCMU_H
#define SPD_TCMU_H

#include <stddef.h>

#include "spd/spd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spd_tcmu_export spd_tcmu_export;

/* Backstore names: letters, digits, '_', '-' and '.', at most this long. */
#define SPD_TCMU_NAME_MAX 64

/*
 * Who answers PERSISTENT RESERVE IN/OUT, RESERVE and RELEASE. TCMU's ring
 * says nothing of the initiator a command comes from, so to Spd's engine
 * every initiator behind LIO is one I_T nexus.
 *   LIO: LIO's own emulation (the backstore's pgr_support 1), which knows
 *        each initiator: right for any fabric, several initiators
 *        included; LIO fails a command a reservation forbids before it
 *        reaches the ring. It keeps its state in a file under its db_root
 *        (pr/, made at start if missing). The default, being right
 *        everywhere.
 *   SPD: Spd's engine (pgr_support 0), one nexus for all initiators: right
 *        for one initiator (the tcm_loop disk), and where the reservations
 *        must be the unit's own (shared with its other exports, or kept by
 *        the device). With two initiators, each would pass the other's
 *        reservation.
 */
typedef enum spd_tcmu_reservations {
    SPD_TCMU_RESERVATIONS_LIO = 0,
    SPD_TCMU_RESERVATIONS_SPD = 1,
} spd_tcmu_reservations;

typedef struct spd_tcmu_options {
    uint32_t size;          /* SPD_TCMU_OPTIONS_INIT */
    const char *name;       /* the backstore's NAME (copied) */
    bool loop;              /* also a local SCSI disk through tcm_loop */
    spd_tcmu_reservations reservations;   /* set at each start */
} spd_tcmu_options;

#define SPD_TCMU_OPTIONS_INIT .size = sizeof(spd_tcmu_options)

/*
 * Whether this kernel serves TCMU (and tcm_loop, with loop) to this
 * process: 0, or -ENODEV (no configfs target folder, no target_core_user
 * or tcm_loop module loaded), -EACCES (not root), with spd_errmsg()
 * saying which.
 */
int spd_tcmu_available(bool loop);

/* 0 when name is a valid backstore name, else -EINVAL with a message. */
int spd_tcmu_name_check(const char *name);

/* An export with no unit yet: NULL with errno (EINVAL for bad options). */
spd_tcmu_export *spd_tcmu_export_create(const spd_tcmu_options *options);

/* The unit to serve (one per export; it must outlive the export): 0,
 * -EINVAL (no unit), -EBUSY (a unit added already). */
int spd_tcmu_export_add(spd_tcmu_export *e, spd_unit *unit);

/*
 * Create the backstore (and the tcm_loop LUN) and serve it until
 * spd_tcmu_export_stop(). Returns once the backstore is enabled and, with
 * loop, the disk exists: 0, or -ENODEV (no TCMU or tcm_loop), -EEXIST (a
 * live process serves a backstore of that name), -EINVAL (nothing added,
 * or a backstore of that name with another size or block length),
 * -EOPNOTSUPP (SPD_TCMU_RESERVATIONS_SPD on a kernel that cannot pass
 * them), or another -errno; then nothing is left behind.
 */
int spd_tcmu_export_start(spd_tcmu_export *e);

/* The backstore's configfs folder once started, else NULL. */
const char *spd_tcmu_export_backstore(const spd_tcmu_export *e);

/* With loop, once started: the disk's name ("sdb") into buf: 0, or
 * -ENOENT (none yet, or no loop), -ERANGE (buf too small). */
int spd_tcmu_export_disk(const spd_tcmu_export *e, char *buf, size_t len);

/*
 * Remove the tcm_loop LUN (the kernel finishes its commands first) and
 * the backstore. May be started again. NULL is a no-op.
 */
void spd_tcmu_export_stop(spd_tcmu_export *e);

/* Stop if needed and free the export (not the unit). NULL is a no-op. */
void spd_tcmu_export_destroy(spd_tcmu_export *e);

#ifdef __cplusplus
}
#endif

#endif /* SPD_TCMU_H */
