#!/bin/sh
# The kernel's NBD client with four connections (nbd-client -C 4) on a RAM
# disk of 4096-byte blocks, not told the block size: the kernel's 512-byte
# requests that do not cover whole blocks are read, patched and written
# back by the server, across four connections at once; ext4 round trip,
# discard and fio verify.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 e2fsck fio ss blkdiscard

nbd_serve --size 128M --block-length 4096
nbd_attach -C 4
expect_eq "$(cat /sys/block/nbd0/queue/logical_block_size)" 512 "logical block size"
conns=$(ss -Htn state established "dport = :$NBD_PORT" | wc -l)
expect_eq "$conns" 4 "connections from the kernel to the server"
ext4_roundtrip /dev/nbd0
discard_zeroes /dev/nbd0
fio_verify /dev/nbd0
# 512-byte writes, eight in flight: read-modify-writes of the same blocks.
fio_verify /dev/nbd0 512 1M
nbd_detach
