#!/bin/sh
# The network server core shared by the NBD server and the iSCSI target
# (server_core.py): port 0, systemd socket activation, the connection cap,
# idle and handshake timeouts, a client that does not read its replies.
. "$(dirname "$0")/../lib.sh"
need python3
python3 "$(dirname "$0")/server_core.py" "$BUILD" "$WORK"
