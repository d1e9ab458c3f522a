#!/bin/sh
# The kernel's NBD client on a RAM disk of 512-byte blocks: ext4 made,
# filled, checked and compared; discard; fio random writes verified.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 e2fsck fio blkdiscard

nbd_serve --size 128M
nbd_attach
ext4_roundtrip /dev/nbd0
discard_zeroes /dev/nbd0
fio_verify /dev/nbd0
nbd_detach
