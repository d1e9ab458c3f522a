#!/bin/sh
# The kernel's NBD client on a RAM disk of 4096-byte blocks, not told the
# block size: the disk must still work (the server announces its block
# sizes; a client that does not ask for them sends requests of its own
# 512-byte blocks).
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 e2fsck fio

nbd_serve --size 128M --block-length 4096
nbd_attach
ext4_roundtrip /dev/nbd0
fio_verify /dev/nbd0
nbd_detach
