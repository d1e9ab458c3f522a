# cluster.sh - a one-node Ceph cluster for the RBD tests and the bench,
# sourced after tests/lib.sh: one monitor and one OSD (bluestore in a
# sparse file) on 127.0.0.1, every file under one folder, no systemd and
# no manager (librbd's I/O needs none). Settings that make it start in 2-3
# seconds: a short paxos interval, two OSD shards, a short aio poll.
#
#   cluster_start DIR   make and start it; sets CEPH_CONF (exported),
#                       MON_PID, OSD_PID; the pool "rbd" is ready
#   osd_kill            SIGKILL the OSD;  osd_start: start it again
#   cluster_stop        stop both by pid (registered with at_exit), after
#                       the programs in PIDS
#   ceph_t ARGS, rbd_t ARGS   ceph and rbd with this conf and a time limit
#
# Every ceph and rbd command runs under timeout: without a monitor they
# would wait forever.

need ceph ceph-mon ceph-osd ceph-authtool monmaptool rbd timeout

ceph_t() { timeout 30 ceph -c "$CEPH_CONF" "$@"; }
rbd_t() { timeout 60 rbd -c "$CEPH_CONF" "$@"; }

cluster_start() {
    CDIR=$1
    mkdir -p "$CDIR/mon.a" "$CDIR/osd.0" "$CDIR/run" "$CDIR/log"
    CEPH_CONF=$CDIR/ceph.conf
    export CEPH_CONF
    fsid=$(cat /proc/sys/kernel/random/uuid)
    p1=$(free_port)
    p2=$(free_port)
    mon_addr="[v2:127.0.0.1:$p2,v1:127.0.0.1:$p1]"
    cat >"$CEPH_CONF" <<CONF
[global]
fsid = $fsid
mon host = $mon_addr
public addr = 127.0.0.1
cluster addr = 127.0.0.1
keyring = $CDIR/keyring
run dir = $CDIR/run
admin socket = $CDIR/run/\$name.asok
pid file = $CDIR/run/\$name.pid
log file = $CDIR/log/\$name.log
mon data = $CDIR/mon.\$id
osd data = $CDIR/osd.\$id
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon osd full ratio = .99
mon osd nearfull ratio = .99
mon osd backfillfull ratio = .99
mon warn on pool no redundancy = false
[mon]
paxos propose interval = 0.1
paxos min wait = 0.01
[osd]
keyring = $CDIR/osd.\$id/keyring
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 10G
bluestore fsck on mkfs = false
osd op num shards = 2
bdev aio poll ms = 20
osd memory target = 1073741824
CONF
    ceph-authtool "$CDIR/keyring" --create-keyring --gen-key -n mon. \
        --cap mon 'allow *' >/dev/null
    ceph-authtool "$CDIR/keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "$mon_addr" "$CDIR/monmap" >/dev/null
    timeout 30 ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$CDIR/monmap" \
        --keyring "$CDIR/keyring" || fail "ceph-mon --mkfs"
    ceph-mon -c "$CEPH_CONF" -f -i a >"$CDIR/log/mon.out" 2>&1 &
    MON_PID=$!
    at_exit cluster_stop
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_key=$(ceph-authtool --gen-print-key)
    printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$CDIR/new.json"
    ceph_t osd new "$osd_uuid" -i "$CDIR/new.json" >/dev/null ||
        fail "ceph osd new"
    timeout 60 ceph-osd -c "$CEPH_CONF" --mkfs -i 0 --key "$osd_key" \
        --osd-uuid "$osd_uuid" >"$CDIR/log/osd-mkfs.out" 2>&1 ||
        { cat "$CDIR/log/osd-mkfs.out" >&2; fail "ceph-osd --mkfs"; }
    ceph-authtool "$CDIR/osd.0/keyring" --create-keyring -n osd.0 \
        --add-key "$osd_key" >/dev/null
    osd_start
    ceph_t osd pool create rbd 8 8 >/dev/null 2>&1 || fail "ceph osd pool create"
    rbd_t pool init rbd || fail "rbd pool init"
}

osd_up() { ceph_t osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

osd_start() {
    ceph-osd -c "$CEPH_CONF" -f -i 0 >>"$CDIR/log/osd.out" 2>&1 &
    OSD_PID=$!
    wait_until 60 osd_up || { tail -20 "$CDIR/log/osd.0.log" >&2; fail "osd.0 did not come up"; }
}

osd_kill() {
    kill -KILL "$OSD_PID" 2>/dev/null
    wait "$OSD_PID" 2>/dev/null || :
    OSD_PID=""
}

cluster_stop() {
    # The programs using it first: without a cluster their shutdown (the
    # image's last flush) would wait for it.
    for pid in $PIDS; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    PIDS=""
    for pid in ${OSD_PID:-} ${MON_PID:-}; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    OSD_PID=""
    MON_PID=""
}
