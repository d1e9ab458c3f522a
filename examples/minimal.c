/* minimal.c - a RAM disk with spd-ramdisk's options: cc minimal.c $(pkg-config --cflags --libs spd) */
#include <spd/cli.h>
#include <stdlib.h>
#include <string.h>
static char *disk; static size_t bl;      /* the disk in memory, bytes per block */
static int disk_open(void *ctx, spd_params *p, unsigned given) {   /* the size is known */
    bl = p->block_length;
    return (disk = calloc(p->block_count, bl)) ? 0 : SPD_EXIT_FAILURE;
}
static int disk_read(void *ctx, spd_io *io, void *buf, uint64_t lba, uint32_t n, bool fua) {
    memcpy(buf, disk + lba * bl, n * bl); return SPD_OK;
}
static int disk_write(void *ctx, spd_io *io, const void *buf, uint64_t lba, uint32_t n, bool fua) {
    memcpy(disk + lba * bl, buf, n * bl); return SPD_OK;
}
static const spd_ops ops = { SPD_OPS_INIT, .read = disk_read, .write = disk_write };
int main(int argc, char **argv) {
    const spd_device dev = { SPD_DEVICE_INIT, .name = "minimal", .ops = &ops, .default_size = 64 << 20, .open = disk_open };
    return spd_main(argc, argv, &dev);
}
