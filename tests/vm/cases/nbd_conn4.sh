#!/bin/sh
# The kernel's NBD client with four connections (nbd-client -C 4) on a RAM
# disk of 512-byte blocks: ext4 round trip and fio verify.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 e2fsck fio ss

nbd_serve --size 128M
nbd_attach -C 4
conns=$(ss -Htn state established "dport = :$NBD_PORT" | wc -l)
expect_eq "$conns" 4 "connections from the kernel to the server"
ext4_roundtrip /dev/nbd0
fio_verify /dev/nbd0
nbd_detach
