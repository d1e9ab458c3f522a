#!/bin/sh
# Hostile clients against a live spd-ramdisk (server_attacks.py): clients
# that do not read, memory ceilings and spare buffers, floods from one
# address, idle slots, login trickles, out of descriptors, SIGTERM. One
# line per attack: the fresh client's wait and the server's RSS.
. "$(dirname "$0")/../lib.sh"
need python3
python3 "$(dirname "$0")/server_attacks.py" "$BUILD" "$WORK"
