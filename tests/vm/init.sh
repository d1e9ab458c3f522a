#!/bin/busybox sh
# init.sh - /init of the test guest. Loads the modules, mounts the host's
# root read-only over virtiofs with the kernel's own proc, sys, dev and
# tmpfs where programs write, and runs guest.sh in a chroot there: the
# tests use the host's programs and the project's build as they are.
# The host passes spdvm_dir, spdvm_build, spdvm_tests (comma-separated)
# and spdvm_timeout on the kernel command line.

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# sync waits at most 10 s: a disk a failed test left without its server
# would hold it for ever (and no signal ends a process waiting on it).
halt() {
    echo "SPD-VM-DONE $*"
    sync &
    n=0
    while [ $n -lt 10 ] && kill -0 $! 2>/dev/null; do sleep 1; n=$((n + 1)); done
    poweroff -f
}

for m in $(cat /modules); do
    insmod "/lib/modules/$m.ko" || echo "SPD-VM-ERROR insmod $m failed"
done
ip link set lo up
# Under emulation nothing legitimate blocks for a minute.
echo 60 >/proc/sys/kernel/hung_task_timeout_secs

for arg in $(cat /proc/cmdline); do
    case $arg in spdvm_*=*) eval "${arg%%=*}=\${arg#*=}" ;; esac
done

mount -t virtiofs host /host -o ro || halt "ERROR virtiofs mount failed"
# The source and build trees may lie under a folder that gets a tmpfs
# below: keep them aside and put them back where they were.
src=${spdvm_dir%/tests/vm}
mkdir -p /keep/src /keep/build
mount --bind "/host$src" /keep/src
mount --bind "/host$spdvm_build" /keep/build
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
for d in tmp run var/tmp; do
    mount -t tmpfs tmpfs "/host/$d"
done
mkdir -p /host/run/lock
for t in "src $src" "build $spdvm_build"; do
    set -- $t
    [ -d "/host$2" ] || { mkdir -p "/host$2" && mount --move "/keep/$1" "/host$2"; }
done

chroot /host /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp \
    TERM=dumb /bin/sh "$spdvm_dir/guest.sh" "$spdvm_build" "$spdvm_timeout" \
    $(echo "$spdvm_tests" | tr , ' ')
halt
