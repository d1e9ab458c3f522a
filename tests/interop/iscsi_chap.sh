#!/bin/sh
# CHAP (MD5) with libiscsi's tools: the right secret logs in, a wrong one
# or none does not; mutual CHAP checks the target's answer; discovery
# sessions need the secret too; secrets files readable by others, and
# malformed ones, are refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/iscsi_lib.sh"
need iscsi-inq iscsi-ls

umask 077
cat >"$WORK/secrets" <<'END'
# initiator users
alice   alice-secret-123
bob     bob has spaces in it
mutual  spd-target  target-secret-456
END

start_iscsi 16 512 --chap "$WORK/secrets"
port=$ISCSI_PORT
HOST=127.0.0.1:$port
LUN=$IQN/0

iscsi-inq "iscsi://alice%alice-secret-123@$HOST/$LUN" >"$WORK/inq.txt" ||
    fail "CHAP login with the right secret"
grep -q DIRECT_ACCESS "$WORK/inq.txt" || fail "INQUIRY after CHAP"
# libiscsi's URLs cannot hold a '%' or a space in a secret: environment.
LIBISCSI_CHAP_USERNAME=bob LIBISCSI_CHAP_PASSWORD="bob has spaces in it" \
    iscsi-inq "iscsi://$HOST/$LUN" >/dev/null ||
    fail "CHAP login with a secret holding spaces"
ok "CHAP: the right secrets log in"

iscsi-inq "iscsi://alice%alice-secret-124@$HOST/$LUN" >"$WORK/err.txt" 2>&1 &&
    fail "CHAP login with a wrong secret must fail"
grep -q 'Authentication failure' "$WORK/err.txt" || fail "wrong secret: status"
iscsi-inq "iscsi://carol%alice-secret-123@$HOST/$LUN" >/dev/null 2>&1 &&
    fail "CHAP login of an unknown user must fail"
iscsi-inq "iscsi://$HOST/$LUN" >"$WORK/err.txt" 2>&1 &&
    fail "a login without CHAP must fail"
grep -q 'Authentication failure' "$WORK/err.txt" || fail "no CHAP: status"
ok "CHAP: wrong secret, unknown user and no CHAP are refused (02/01)"

MUTUAL="target_user=spd-target&target_password=target-secret-456"
iscsi-inq "iscsi://alice%alice-secret-123@$HOST/$LUN?$MUTUAL" >/dev/null ||
    fail "mutual CHAP"
BAD="target_user=spd-target&target_password=target-secret-457"
iscsi-inq "iscsi://alice%alice-secret-123@$HOST/$LUN?$BAD" >"$WORK/err.txt" 2>&1 &&
    fail "mutual CHAP with a wrong target secret must fail"
grep -q 'Invalid CHAP_R' "$WORK/err.txt" || fail "mutual: the initiator must catch it"
ok "mutual CHAP: the target proves itself, and a wrong proof is caught"

iscsi-ls "iscsi://alice%alice-secret-123@$HOST" | grep -q "Target:$IQN" ||
    fail "discovery with CHAP"
iscsi-ls "iscsi://$HOST" >/dev/null 2>&1 && fail "discovery without CHAP must fail"
ok "discovery sessions need CHAP too"
stop_iscsi

# Files the target must refuse.
chmod o+r "$WORK/secrets"
"$ISERVE" "127.0.0.1:0" "$IQN" 16 512 --chap "$WORK/secrets" \
    >"$WORK/refused.txt" 2>&1 && fail "a world-readable secrets file must be refused"
grep -q 'readable by others' "$WORK/refused.txt" || fail "world-readable: message"
printf 'alice short\n' >"$WORK/short"
"$ISERVE" "127.0.0.1:0" "$IQN" 16 512 --chap "$WORK/short" \
    >"$WORK/refused.txt" 2>&1 && fail "a short secret must be refused"
grep -q '12 to 255 bytes' "$WORK/refused.txt" || fail "short secret: message"
printf 'alice same-secret-1234\nmutual tgt same-secret-1234\n' >"$WORK/same"
"$ISERVE" "127.0.0.1:0" "$IQN" 16 512 --chap "$WORK/same" \
    >"$WORK/refused.txt" 2>&1 && fail "one secret for both directions must be refused"
grep -q 'must differ' "$WORK/refused.txt" || fail "same secret: message"
ok "secrets files: world-readable, short and shared secrets refused"

# Secrets only this user (or root) can change and nobody else can read.
refused() {   # file words what
    "$ISERVE" "127.0.0.1:0" "$IQN" 16 512 --chap "$1" \
        >"$WORK/refused.txt" 2>&1 && fail "$3 must be refused"
    grep -q -- "$2" "$WORK/refused.txt" || { cat "$WORK/refused.txt" >&2; fail "$3: message"; }
}
chmod 600 "$WORK/secrets"
cp -p "$WORK/secrets" "$WORK/s-group"
chmod 620 "$WORK/s-group"
refused "$WORK/s-group" 'writable by its group' "a group-writable secrets file"
cp -p "$WORK/secrets" "$WORK/s-others"
chmod 602 "$WORK/s-others"
refused "$WORK/s-others" 'writable by others' "a world-writable secrets file"
ln -s "$WORK/secrets" "$WORK/s-link"
refused "$WORK/s-link" 'is a symbolic link' "a secrets file named through a link"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    cp -p "$WORK/secrets" "$WORK/s-owner"
    chown nobody "$WORK/s-owner"
    refused "$WORK/s-owner" "is owned by user $(id -u nobody)" "a secrets file of another user"
    ok "secrets files: group- or world-writable, another user's, and links refused"
else
    skip_part "a secrets file of another user: needs root and the user nobody"
    ok "secrets files: group- or world-writable and links refused"
fi
# The same checks hold for the device programs; a good file still works.
status=0
"$RAMDISK" --size 1M --iscsi 127.0.0.1:0 --chap-file "$WORK/s-group" \
    >"$WORK/refused.txt" 2>&1 || status=$?
expect_eq "$status" 1 "exit status of spd-ramdisk with a group-writable --chap-file"
grep -q 'writable by its group' "$WORK/refused.txt" || fail "spd-ramdisk --chap-file: message"
start_device "$RAMDISK" --size 1M --iscsi 127.0.0.1:0 --chap-file "$WORK/secrets"
uri=$(serving_uri "$WORK/server.log" iscsi://)
iscsi-inq "iscsi://alice%alice-secret-123@${uri#iscsi://}" >"$WORK/inq.txt" ||
    fail "spd-ramdisk: CHAP login with a good secrets file"
stop_device "$SERVER_PID"
ok "spd-ramdisk refuses a bad --chap-file and logs in with a good one"
