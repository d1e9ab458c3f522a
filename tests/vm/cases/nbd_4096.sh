#!/bin/sh
# The kernel's NBD client on a RAM disk of 4096-byte blocks, told the block
# size (nbd-client -b 4096): ext4 round trip and fio verify.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 e2fsck fio

nbd_serve --size 128M --block-length 4096
nbd_attach -b 4096
expect_eq "$(cat /sys/block/nbd0/queue/logical_block_size)" 4096 "logical block size"
ext4_roundtrip /dev/nbd0
fio_verify /dev/nbd0
nbd_detach
