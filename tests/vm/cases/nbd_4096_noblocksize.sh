#!/bin/sh
# The kernel's NBD client on a RAM disk of 4096-byte blocks, not told the
# block size: nbd-client 3.24 does not ask for block sizes, so the kernel
# sends requests of 512-byte blocks, and the server serves those that do
# not cover whole blocks by read-modify-write. ext4 round trip (mount
# reads sector 2), discard, fio verify with 4 KiB and with 512-byte writes.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 e2fsck fio blkdiscard

nbd_serve --size 128M --block-length 4096
nbd_attach
expect_eq "$(cat /sys/block/nbd0/queue/logical_block_size)" 512 "logical block size"
ext4_roundtrip /dev/nbd0
discard_zeroes /dev/nbd0
fio_verify /dev/nbd0
# 512-byte writes, eight in flight: read-modify-writes of the same blocks.
fio_verify /dev/nbd0 512 1M
nbd_detach
