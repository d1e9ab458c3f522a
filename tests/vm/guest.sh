# guest.sh BUILD TIMEOUT TEST... - inside the guest (init.sh's chroot): run
# each cases/TEST.sh with a time limit, check the kernel log it left, and
# print one line per test for run.sh on the host:
#   SPD-VM-RESULT TEST PASS|FAIL|SKIP SECONDS REASON
set -u
BUILD=$1 limit=$2
shift 2
here=$(dirname "$0")
export BUILD
# A sanitizer build stops at its first report, as on the host.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# Kernel messages that mean a test went wrong, whatever its own verdict:
# failed I/O, SCSI errors and error handling, transport failures, hangs,
# kernel bugs and warnings, file system errors.
BAD='I/O error|critical (medium|target|nexus|space allocation) error|Sense Key|FAILED Result|reset|abort|timing out|timed out|conn error|session recovery|Dead connection|Receive control failed|Other side returned error|hung_task|blocked for more than|BUG:|WARNING:|Oops|Call Trace|EXT4-fs error|EXT4-fs warning|Buffer I/O|lost (async )?page write'

for t in "$@"; do
    echo "SPD-VM-BEGIN $t"
    dmesg -C
    start=$(date +%s)
    # Into a file, not a pipe: a process the test left stuck in the kernel
    # (an unmount of a disk that lost its server) would hold a pipe open
    # and the run with it.
    timeout -k 10 "$limit" sh "$here/cases/$t.sh" </dev/null >/tmp/out.$t 2>&1
    status=$?
    cat /tmp/out.$t
    secs=$(( $(date +%s) - start ))
    dmesg >/tmp/kmsg.$t
    echo "--- kernel log of $t:"
    cat /tmp/kmsg.$t
    # A test that provokes some of these (a target killed on purpose)
    # names the lines it expects in a '# kernel log allows: REGEX' line.
    allow=$(sed -n 's/^# kernel log allows: //p' "$here/cases/$t.sh")
    bad=$(grep -E "$BAD" /tmp/kmsg.$t | grep -vE "${allow:-^$}" | head -1)
    case $status in
    0) result=PASS reason="" ;;
    77) result=SKIP reason=$(sed -n 's/^SKIP - //p' /tmp/out.$t | tail -1) ;;
    124|137) result=FAIL reason="timed out after ${limit}s" ;;
    *) result=FAIL reason=$(sed -n 's/^FAIL - //p' /tmp/out.$t | tail -1)
       reason=${reason:-"exit status $status"} ;;
    esac
    if [ -n "$bad" ] && [ "$result" != FAIL ]; then
        result=FAIL reason="kernel log: $bad"
    elif [ -n "$bad" ]; then
        reason="$reason; kernel log: $bad"
    fi
    echo "SPD-VM-RESULT $t $result $secs $reason"
done
