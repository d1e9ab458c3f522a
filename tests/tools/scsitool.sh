#!/bin/sh
# spd-scsitool against the engine in its own process (mem:) and against
# spd-ramdisk and spd-rawdisk over iSCSI: data written comes back byte for
# byte, UNMAP shows in GET LBA STATUS, and failures exit 1 with the sense
# decoded. (SG_IO: scsitool_sg.sh.)
. "$(dirname "$0")/../lib.sh"
TOOL=$BUILD/tools/scsitool/spd-scsitool
need cmp python3

OUT=$WORK/out
ERR=$WORK/err

# run STATUS ARGS...: run the tool, which must exit STATUS; output in $OUT.
run() {
    want=$1
    shift
    status=0
    "$TOOL" "$@" >"$OUT" 2>"$ERR" || status=$?
    [ "$status" -eq "$want" ] || { cat "$OUT" "$ERR" >&2; fail "spd-scsitool $*: exit $status, want $want"; }
}
has() {   # pattern what
    grep -q -- "$1" "$OUT" || { cat "$OUT" "$ERR" >&2; fail "$2: no line matching '$1'"; }
}
json() {  # python expression over j, the JSON output: must be true
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$OUT" ||
        { cat "$OUT" >&2; fail "JSON: $1"; }
}

# --- the engine in this process ----------------------------------------
run 0 mem:64M inquiry
has '^vendor: SPD$' "INQUIRY vendor"
has '^device type: 0 (direct access block device)$' "INQUIRY device type"
run 0 mem:64M vpd 00
for page in 00h 80h 83h b0h b1h b2h; do has "^  - $page\$" "VPD page list holds $page"; done
run 0 --json mem:64M capacity16
json 'j["blocks"] == 131072 and j["block_length"] == 512 and j["lbpme"] and j["lbprz"] and j["status"] == "GOOD"'
run 0 --json mem:1M/4096 capacity
json 'j["blocks"] == 256 and j["block_length"] == 4096'
run 0 --json mem:1M vpd 83
json 'any(d["type"] == "NAA" and d["association"] == "logical unit" for d in j["designators"])'
ok "mem: INQUIRY, VPD 00h and 83h, READ CAPACITY(10) and (16), text and JSON"

run 1 mem:64M read 131072 1
has '^failed command: READ(16)$' "the failed command"
has '^status: CHECK CONDITION$' "status"
has '^sense key: ILLEGAL REQUEST$' "sense key"
has '^additional sense: LOGICAL BLOCK ADDRESS OUT OF RANGE$' "additional sense"
run 1 --json mem:64M vpd c0
json 'j["sense_key"] == "ILLEGAL REQUEST" and j["additional_sense"] == "INVALID FIELD IN CDB" and j["field_pointer"] == "CDB byte 2"'
run 1 mem:64M raw 'ff 00 00 00 00 00'
has '^additional sense: INVALID COMMAND OPERATION CODE$' "unknown opcode"
ok "mem: failures exit 1 with the sense decoded (LBA OUT OF RANGE, INVALID FIELD IN CDB at CDB byte 2, INVALID COMMAND OPERATION CODE)"

run 0 mem:1M raw '28 00 00 00 00 00 00 00 01 00' --in 512 --output "$WORK/raw.bin"
cmp -n 512 "$WORK/raw.bin" /dev/zero || fail "raw READ(10) data-in"
expect_eq "$(stat -c %s "$WORK/raw.bin")" 512 "raw data-in bytes"
run 0 mem:1M lba-status 0
has '^    blocks: 2048$' "the whole unit in one descriptor"
has '^    status: deallocated$' "a new unit is deallocated"
ok "mem: raw READ(10) with --in and --output; GET LBA STATUS of a new unit"

# Bad command lines: exit 2, nothing sent.
head -c 1000 /dev/urandom >"$WORK/odd.bin"
run 2 mem:1M frobnicate
run 2 mem:1M read x 1
run 2 mem:1M read 0 0
run 2 --json mem:1M vpd zz
[ ! -s "$OUT" ] || fail "a refused command prints nothing on standard output: $(cat "$OUT")"
run 2 mem:1M write 0
run 2 mem:1M write 0 --input "$WORK/odd.bin"
grep -q 'not 1 to 2^32-1 whole blocks of 512 bytes; nothing written' "$ERR" || fail "a partial block is refused: $(cat "$ERR")"
run 2 mem:1M raw 'zz'
run 2 mem:3000 tur
run 2 --timeout 0 mem:1M tur
run 2 mem:1M
run 0 --help
has '^Usage: spd-scsitool' "--help"
run 0 --version
has '^spd-scsitool [0-9.]* (libspd [0-9.]*)$' "--version"
ok "bad command lines exit 2 with a message and nothing on standard output; --help, --version"

# --- iSCSI: spd-ramdisk ----------------------------------------------------
if ! command -v iscsi-ls >/dev/null 2>&1; then
    skip_part "libiscsi's tools are not installed"
else
    start_device "$RAMDISK" --size 16M --iscsi 127.0.0.1:0
    URL=$(serving_uri "$WORK/server.log" iscsi://)
    run 0 "$URL" tur
    run 0 --json "$URL" luns
    json 'j["luns"] == [0]'
    run 0 --json "$URL" capacity16
    json 'j["blocks"] == 32768 and j["block_length"] == 512'
    run 0 "$URL" mode-sense 08
    has '^  - page: 08h (caching)$' "the caching page"
    ok "iSCSI: TEST UNIT READY, REPORT LUNS, READ CAPACITY(16), MODE SENSE(10) over $URL"

    # 3 MiB of random data written at LBA 100 comes back equal, in
    # several commands each way.
    head -c 3M /dev/urandom >"$WORK/data.bin"
    run 0 --json "$URL" write 100 --input "$WORK/data.bin" --fua
    json 'j["blocks"] == 6144 and j["lba"] == 100'
    run 0 "$URL" read 100 6144 --output "$WORK/back.bin"
    cmp "$WORK/data.bin" "$WORK/back.bin" || fail "the data read back over iSCSI"
    run 0 "$URL" sync
    ok "iSCSI: 3 MiB written with FUA at LBA 100 reads back equal (cmp); SYNCHRONIZE CACHE"

    run 0 --json "$URL" lba-status 100
    json 'j["descriptors"][0]["lba"] == 100 and j["descriptors"][0]["status"] == "mapped"'
    # (aligned to the ramdisk's 16 KiB pages, which it frees whole)
    run 0 "$URL" unmap 1024 2048
    run 0 --json "$URL" lba-status 1024
    json 'j["descriptors"][0]["lba"] == 1024 and j["descriptors"][0]["status"] == "deallocated" and j["descriptors"][0]["blocks"] == 2048'
    run 0 "$URL" read 1024 2048 --output "$WORK/hole.bin"
    cmp -n 1M "$WORK/hole.bin" /dev/zero || fail "unmapped blocks read zeros"
    run 0 "$URL" read 3072 100 --output "$WORK/after.bin"
    cmp -i 1521664:0 -n 51200 "$WORK/data.bin" "$WORK/after.bin" || fail "blocks after the unmapped range kept"
    ok "iSCSI: UNMAP shows deallocated in GET LBA STATUS, reads zeros, neighbours kept"

    run 1 "$URL" read 32768 1
    has '^sense key: ILLEGAL REQUEST$' "sense key over iSCSI"
    has '^additional sense: LOGICAL BLOCK ADDRESS OUT OF RANGE$' "additional sense over iSCSI"
    run 1 "$URL" write 32767 --input "$WORK/data.bin"
    has '^additional sense: LOGICAL BLOCK ADDRESS OUT OF RANGE$' "a write past the end"
    ok "iSCSI: reads and writes past the end exit 1 with LBA OUT OF RANGE"

    # Descriptor-format sense (D_SENSE set by a raw MODE SELECT(10) of the
    # control page) decodes the same, field pointer included.
    printf '\0\0\0\0\0\0\0\0\012\012\004\020\0\0\0\0\0\0\0\0' >"$WORK/control.bin"
    run 0 "$URL" raw '55 10 00 00 00 00 00 00 14 00' --out "$WORK/control.bin"
    run 0 --json "$URL" mode-sense 0a
    json 'j["pages"][0]["d_sense"]'
    run 1 --json "$URL" vpd c0
    json 'j["sense"].startswith("72") and j["additional_sense"] == "INVALID FIELD IN CDB" and j["field_pointer"] == "CDB byte 2"'
    run 1 --json "$URL" read 32768 1
    json 'j["sense"].startswith("72") and j["additional_sense"] == "LOGICAL BLOCK ADDRESS OUT OF RANGE"'
    stop_device "$SERVER_PID"
    ok "iSCSI: raw MODE SELECT(10) sets D_SENSE; descriptor sense decodes with its field pointer"

    # A gateway in target port group 2 of two; reservations by two
    # initiators, read back decoded.
    start_device "$RAMDISK" --size 1M --iscsi 127.0.0.1:0 --port-group 2 \
        --alua 1:ao,2:ano
    URL=$(serving_uri "$WORK/server.log" iscsi://)
    run 0 --json "$URL" port-groups
    json 'j["port_groups"] == [{"id": 1, "state": "active/optimized", "preferred": True, "ports": [1]},
                               {"id": 2, "state": "active/non-optimized", "preferred": False, "ports": [2]}]'
    printf '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\252\0\0\0\0\0\0\0\0' >"$WORK/register.bin"
    printf '\0\0\0\0\0\0\0\252\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' >"$WORK/reserve.bin"
    run 0 --initiator iqn.2026-11.org.spd.test:a "$URL" raw '5f 00 00 00 00 00 00 00 18 00' --out "$WORK/register.bin"
    run 0 --initiator iqn.2026-11.org.spd.test:a "$URL" raw '5f 01 05 00 00 00 00 00 18 00' --out "$WORK/reserve.bin"
    run 0 --json --initiator iqn.2026-11.org.spd.test:b "$URL" keys
    json 'j["generation"] == 1 and j["keys"] == ["0x00000000000000aa"]'
    run 0 --json --initiator iqn.2026-11.org.spd.test:b "$URL" reservation
    json 'j["reserved"] and j["key"] == "0x00000000000000aa" and j["type"] == "write exclusive, registrants only"'
    run 1 --initiator iqn.2026-11.org.spd.test:b "$URL" write 0 --input "$WORK/data.bin"
    has '^status: RESERVATION CONFLICT$' "B's write under A's reservation"
    stop_device "$SERVER_PID"
    ok "iSCSI: port-groups of a gateway in group 2; keys and reservation decoded; another initiator's write conflicts"

    # spd-rawdisk: what the tool writes is in the image file.
    img=$WORK/disk.img
    start_device "$RAWDISK" --file "$img" --size 8M --iscsi 127.0.0.1:0
    URL=$(serving_uri "$WORK/server.log" iscsi://)
    head -c 64K /dev/urandom >"$WORK/small.bin"
    run 0 "$URL" write 2048 --input "$WORK/small.bin"
    stop_device "$SERVER_PID"
    cmp -i 1M:0 -n 64K "$img" "$WORK/small.bin" || fail "the rawdisk image holds the bytes written at LBA 2048"
    ok "iSCSI: spd-rawdisk's image holds the bytes written at LBA 2048"

    # CHAP: the secret in the URL logs in, a wrong one does not.
    printf 'alice a-secret-of-sixteen\n' >"$WORK/secrets"
    chmod 600 "$WORK/secrets"
    start_device "$RAMDISK" --size 1M --iscsi 127.0.0.1:0 --chap-file "$WORK/secrets"
    URL=$(serving_uri "$WORK/server.log" iscsi://)
    run 0 "iscsi://alice%a-secret-of-sixteen@${URL#iscsi://}" inquiry
    has '^vendor: SPD$' "INQUIRY with CHAP"
    run 3 "iscsi://alice%wrong-secret-here@${URL#iscsi://}" tur
    stop_device "$SERVER_PID"
    ok "iSCSI: CHAP credentials in the URL log in; wrong ones exit 3"

    port=$(free_port)
    run 3 "iscsi://127.0.0.1:$port/iqn.2026-11.org.spd:none/0" tur
    ok "an unreachable iSCSI target exits 3: $(head -1 "$ERR")"

    # A portal that accepts and never answers: --timeout ends the wait.
    python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c = s.accept(); time.sleep(60)' "$WORK/silent.port" &
    PIDS="$! $PIDS"
    wait_until 10 test -s "$WORK/silent.port" || fail "the silent portal did not start"
    run 3 --timeout 1 "iscsi://127.0.0.1:$(cat "$WORK/silent.port")/iqn.2026-11.org.spd:none/0" tur
    grep -q 'timed out' "$ERR" || fail "the timeout is named: $(cat "$ERR")"
    ok "a portal that never answers: --timeout 1 exits 3 ($(head -1 "$ERR"))"
fi
