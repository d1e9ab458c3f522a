/*
 * fuse.h - export a storage unit as one regular file on a FUSE mount, so
 * that losetup(8) makes it a kernel block device (/dev/loopN) on any Linux
 * with /dev/fuse, without nbd or ublk in the kernel.
 *
 * The file is the mountpoint itself: the FUSE filesystem is mounted over
 * the regular file at PATH and its root inode is that file, so the disk
 * appears at PATH (as nbdfuse does with a file argument). Its size is
 * block_count * block_length and never changes; its mode is 0600, or 0400
 * for a write-protected unit; st_blksize is the block length.
 *
 * What the file does:
 *   read, write      any offset and length; unaligned edges are read,
 *                    modified and written back (one at a time). Writing
 *                    at or past the end fails with ENOSPC, across it is
 *                    short; reading past the end is short (0 at the end).
 *   O_DIRECT         served by the kernel's FUSE direct I/O path, so
 *                    `losetup --direct-io=on` works where the kernel
 *                    allows it on FUSE files.
 *   fsync, close     flush the unit (close only for descriptors open for
 *                    writing), so fsync() makes written data durable.
 *   fallocate        PUNCH_HOLE|KEEP_SIZE and ZERO_RANGE zero the range:
 *                    whole blocks by unmap when the unit's unmapped
 *                    blocks read as zeros, partial blocks at the edges by
 *                    writing zeros. Without that guarantee ZERO_RANGE
 *                    writes zeros (WRITE SAME) and PUNCH_HOLE fails with
 *                    EOPNOTSUPP (callers such as the loop driver then
 *                    write zeros themselves). Mode 0 and KEEP_SIZE alone
 *                    succeed inside the size (nothing to preallocate);
 *                    other modes fail with EOPNOTSUPP.
 *   truncate         to the current size succeeds, to any other size
 *                    fails with EINVAL. O_TRUNC at open is ignored, as for
 *                    a block device, so `dd of=PATH` and `cp` work.
 *   errors           DATA PROTECT -> EROFS (SPACE ALLOCATION FAILED ->
 *                    ENOSPC), ILLEGAL REQUEST -> EINVAL, NOT READY ->
 *                    ESHUTDOWN, anything else -> EIO. A write-protected
 *                    unit can be opened for writing; its writes fail with
 *                    EROFS.
 *
 * The kernel keeps the file's pages in its page cache while the file is
 * open (each open starts afresh); changes that reach the unit another way,
 * such as another transport, show through a descriptor opened earlier only
 * with O_DIRECT (or `losetup --direct-io=on`).
 *
 * Requests arrive on libfuse's worker threads and go to the unit's
 * dispatcher threads when spd_unit_start() was called; without them the
 * workers call the device directly. Mounting needs /dev/fuse and either
 * root or fusermount3; as with any FUSE mount without allow_other, only
 * the mounting user can open the file.
 */
#ifndef SPD_FUSE_H
#define SPD_FUSE_H

#include "spd/spd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spd_fuse_export spd_fuse_export;

/*
 * The lifecycle is that of the network exports: create, add, start, stop,
 * destroy. Typical use:
 *
 *     spd_fuse_export *e = spd_fuse_export_create();
 *     spd_fuse_export_add(e, unit, "/tmp/disk");
 *     spd_fuse_export_start(e);
 *     ... losetup /dev/loopN /tmp/disk, until asked to stop ...
 *     spd_fuse_export_destroy(e);
 *
 * Functions return 0 or a negative errno with spd_errmsg() saying why, or
 * NULL with errno set.
 */

/* An export with no path yet. */
spd_fuse_export *spd_fuse_export_create(void);

/*
 * Present unit as the regular file PATH once started. PATH may name an
 * existing regular file (whose contents stay hidden, untouched, while
 * mounted) or nothing, in which case an empty file is created there at
 * start and removed again at stop. An export may hold several paths (one
 * add each, the same unit or others); add them before start. The unit
 * must outlive the export. 0, -EINVAL (no unit or path), -EEXIST (a path
 * added twice), -EBUSY (already started).
 */
int spd_fuse_export_add(spd_fuse_export *e, spd_unit *unit, const char *path);

/*
 * Mount every path and serve them on threads of their own until
 * spd_fuse_export_stop(). Installs no signal handlers and does not
 * daemonize. Returns once each mount is in place (opening PATH then
 * reaches the unit): 0, or -EISDIR (PATH is a directory), -EINVAL (not a
 * regular file, nothing added), -ENODEV (no usable /dev/fuse), -EPERM
 * (mounting not permitted), or the errno of a failed system call; then
 * nothing stays mounted.
 */
int spd_fuse_export_start(spd_fuse_export *e);

/*
 * Unmount every path. Requests the export has already handed to the unit
 * complete first. When a file is still open (a loop device attached, a
 * process holding it), a privileged caller aborts the FUSE connection so
 * that stop returns: later I/O on those open files fails with ENOTCONN.
 * An unprivileged caller can only detach the mount lazily (fusermount3
 * -u -z), and stop then waits until the last such file is closed. Removes
 * the files start created. May be started again. NULL is a no-op.
 */
void spd_fuse_export_stop(spd_fuse_export *e);

/* Stop if needed and free the export (not the units). NULL is a no-op. */
void spd_fuse_export_destroy(spd_fuse_export *e);

#ifdef __cplusplus
}
#endif

#endif /* SPD_FUSE_H */
