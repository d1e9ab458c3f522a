#!/bin/sh
# The backstore's attributes written while it is served, as targetcli
# would: the kernel announces each on the TCM-USER netlink family and
# Spd's process takes it. dev_size within what the device has resizes the
# unit (READ CAPACITY says so, data kept); more than the device has, or
# not whole blocks, is refused and written back: nothing changes. A new
# dev_config is refused the same way.
. "$(dirname "$0")/../tcmu.sh"
need sg_readcap
at_exit tcmu_leftovers

tcmu_serve "$RAMDISK" --size 32M --tcmu-loop=vmsize
dev=$TCMU_DEV
a=$C/core/user_0/vmsize/attrib

# The disk's block count from READ CAPACITY(16) (the first try after a
# resize gets the CAPACITY DATA HAS CHANGED unit attention).
blocks() {
    sg_readcap -l "$dev" 2>/dev/null | sed -n 's/.*Number of logical blocks=\([0-9]*\).*/\1/p'
}
has_blocks() { [ "$(blocks)" = "$1" ]; }
log_says() { grep -q "$1" "$WORK/server.log"; }

wait_until 10 has_blocks 65536 || fail "READ CAPACITY: $(blocks) blocks, not 65536"
head -c 4096 /dev/urandom >"$WORK/marker"
dd if="$WORK/marker" of="$dev" bs=4096 seek=1000 count=1 oflag=direct 2>/dev/null ||
    fail "write of the marker"

echo $((16 << 20)) >$a/dev_size || fail "writing dev_size 16 MiB"
wait_until 10 has_blocks 32768 || fail "after dev_size 16 MiB: $(blocks) blocks, not 32768"
log_says "resized to 32768 blocks" || { cat "$WORK/server.log"; fail "no resize line"; }
echo $((32 << 20)) >$a/dev_size || fail "writing dev_size 32 MiB"
wait_until 10 has_blocks 65536 || fail "after dev_size 32 MiB: $(blocks) blocks, not 65536"
dd if="$dev" bs=4096 skip=1000 count=1 iflag=direct 2>/dev/null | cmp -s - "$WORK/marker" ||
    fail "the marker changed across the resizes"
ok "dev_size through configfs: 16 MiB, then 32 MiB again: READ CAPACITY follows, data kept"

for bad in $((64 << 20)) 1000000; do
    echo "$bad" >$a/dev_size || fail "writing dev_size $bad"
    wait_until 10 log_says "dev_size $bad refused" ||
        { cat "$WORK/server.log"; fail "dev_size $bad not refused"; }
    wait_until 10 sh -c "[ \$(cat $a/dev_size) = $((32 << 20)) ]" ||
        fail "dev_size not written back after $bad: $(cat $a/dev_size)"
    has_blocks 65536 || fail "after the refused dev_size $bad: $(blocks) blocks"
done
ok "dev_size 64 MiB (more than the device has) and 1000000 (not whole blocks): refused, written back, 65536 blocks"

echo spd/other >$a/dev_config || fail "writing dev_config"
wait_until 10 log_says "dev_config 'spd/other' refused" ||
    { cat "$WORK/server.log"; fail "dev_config not refused"; }
wait_until 10 sh -c "grep -q '^spd/vmsize\$' $a/dev_config" ||
    fail "dev_config not written back: $(cat $a/dev_config)"
has_blocks 65536 || fail "after the refused dev_config: $(blocks) blocks"
ok "dev_config spd/other: refused and written back"

stop_device "$SERVER_PID"
[ ! -e $C/core/user_0/vmsize ] || fail "the backstore stays after the server stopped"
ok "clean stop"
