# tcmu.sh - sourced by the tcmu_* cases: LIO's configfs mounted, and a
# device program serving a TCMU backstore (and its tcm_loop disk).
. "$(dirname "$0")/../lib.sh"

C=/sys/kernel/config/target
[ -d /sys/module/target_core_user ] && [ -d /sys/module/tcm_loop ] ||
    skip "no target_core_user or tcm_loop in this guest"
[ -d $C ] || mount -t configfs configfs /sys/kernel/config || fail "mount configfs"

# Start a device program with --tcmu-loop=NAME (the program and its own
# options as arguments); sets TCMU_DEV to /dev/sdX from its serving line.
tcmu_serve() {
    start_device "$@"
    line=$(grep ': serving /dev/sd' "$WORK/server.log") ||
        { cat "$WORK/server.log"; fail "no tcm_loop disk: $*"; }
    TCMU_DEV=$(echo "$line" | awk '{print $3}')
    wait_until 10 test -b "$TCMU_DEV" || fail "no $TCMU_DEV"
    echo "$line"
}

# Whatever a killed server left: its tcm_loop target and backstore.
tcmu_leftovers() {
    for l in $C/loopback/naa.*/tpgt_1/lun/lun_0/spd; do
        [ -L "$l" ] || continue
        rm -f "$l"
        rmdir "${l%/spd}" "${l%/lun/lun_0/spd}" "${l%/tpgt_1/lun/lun_0/spd}" 2>/dev/null
    done
    for b in $C/core/user_0/*/; do
        [ -d "$b" ] && rmdir "$b" 2>/dev/null
    done
    return 0
}
