/*
 * partition.h - partition tables (MBR and GPT) for devices that hand out a
 * partitioned disk: laid out in memory, or written through a unit.
 */
#ifndef SPD_PARTITION_H
#define SPD_PARTITION_H

#include "spd/spd.h"

#ifdef __cplusplus
extern "C" {
#endif


typedef enum spd_partition_scheme {
    SPD_PARTITION_MBR,
    SPD_PARTITION_GPT,
} spd_partition_scheme;

typedef struct spd_partition {
    uint64_t start_lba;      /* 0: right after the previous one, aligned to 1 MiB */
    uint64_t block_count;    /* 0: to the end of the usable space */
    uint8_t  mbr_type;       /* MBR: partition type (0x83 Linux, 0x07 NTFS); 0 gives 0x83 */
    uint8_t  gpt_type[16];   /* GPT: type GUID (mixed-endian as on disk); zero gives Linux data */
    bool     active;         /* MBR: boot flag */
} spd_partition;

/*
 * Lay out a partition table for a disk of disk_blocks blocks of
 * block_length bytes. On success *head holds the first *head_blocks blocks
 * of the disk (MBR; or protective MBR, GPT header and entries) and *tail the
 * last *tail_blocks blocks (the GPT backup; 0 for MBR); free both with
 * free(). Partitions with start_lba 0 are placed for the caller. 0, or
 * -EINVAL with spd_errmsg() for overlapping or out-of-range partitions.
 */
int spd_partition_table_build(const spd_partition *parts, unsigned count,
                              spd_partition_scheme scheme,
                              uint32_t block_length, uint64_t disk_blocks,
                              void **head, uint32_t *head_blocks,
                              void **tail, uint32_t *tail_blocks);

/* Build a table and write it through the unit (its write operation). */
int spd_unit_write_partition_table(spd_unit *unit, const spd_partition *parts,
                                   unsigned count, spd_partition_scheme scheme);

#ifdef __cplusplus
}
#endif

#endif /* SPD_PARTITION_H */
