/* blockdev.h - kernel block devices seen through /sys and
 * /proc/self/mountinfo: the loop devices over a file, what mounts or holds
 * a disk, and taking them down. Shared by spd-launcherd and spdctl. */
#ifndef SPD_LAUNCHER_BLOCKDEV_H
#define SPD_LAUNCHER_BLOCKDEV_H

#include <stdbool.h>
#include <sys/types.h>

#include "proto.h"

#define BDEV_MAX 16

struct bdev_list {
    int n;
    char name[BDEV_MAX][64];     /* "loop3", "ublkb0", "loop3p1" */
};

/* The loop devices whose backing file is path. */
void bdev_loops_of(const char *path, struct bdev_list *out);

/* A disk and its partitions. */
void bdev_with_parts(const char *disk, struct bdev_list *out);

/* The backing file of loop device name ("loop3"), or "" with -1. */
int bdev_loop_file(const char *name, char *out, size_t size);

/* The disk a partition belongs to ("loop3p1" -> "loop3"; a disk gives
 * itself), or -1 when name is not a block device. */
int bdev_disk_of(const char *name, char *out, size_t size);

/* The block device mounted at mountpoint, or -1. */
int bdev_at_mountpoint(const char *mountpoint, char *out, size_t size);

/* Say what uses disk (mounts of it or its partitions, holders, processes
 * that have one open, and for a loop device its being attached when
 * loop_counts), after count earlier reasons: "...; ..." appended to
 * why. Returns the new count. */
int bdev_users(const char *disk, bool loop_counts, struct sbuf *why,
               int count);

/* Say which processes but skip hold one of paths open ("PATH is open in
 * pid N (COMM)"), after count earlier reasons; returns the new count. */
int bdev_openers(const char *const *paths, int n, pid_t skip,
                 struct sbuf *why, int count);

/* Unmount every mount of disk and its partitions (lazily when busy and
 * lazy); -1 with errno at the first that stays. */
int bdev_unmount_all(const char *disk, bool lazy);

/* Detach loop device name after flushing it, and wait (at most wait_ms)
 * until the kernel has let go of the backing file. */
int bdev_loop_detach(const char *name, int wait_ms);

/* After a launcher that was killed: the FUSE files in dir whose server is
 * gone, and what was left over them (their loop devices, and mounts of
 * those, which can reach no data any more), taken down and removed, each
 * logged to stderr. Returns how many dead files there were. */
int bdev_clean_dead_fuse(const char *dir);

#endif
