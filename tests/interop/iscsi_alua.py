#!/usr/bin/env python3
"""iscsi_alua.py - log in to an iSCSI target and run one command of each
kind a target port group's state decides on, printing the
TargetPortalGroupTag of the login and one line per command: its name and
status, and for a check condition the sense key and ASC/ASCQ in hex
("READ(10) 02 2/04/0b"). Raw PDUs: libiscsi's login sends TEST UNIT
READY and gives up when a port in standby refuses it.

With --session, the commands are the names read from standard input, one
a line, each answered at once on one session (one I_T nexus): the caller
changes the target's states between them.

Usage: iscsi_alua.py PORT TARGET_NAME [--session]
"""
import socket
import struct
import sys

PORT = int(sys.argv[1])
TARGET = sys.argv[2]


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        self.itt = 0
        self.cmdsn = 0
        self.statsn = 0

    def send(self, bhs, data=b""):
        bhs = bytearray(bhs)
        bhs[5:8] = len(data).to_bytes(3, "big")
        self.s.sendall(bytes(bhs) + data + b"\0" * (-len(data) % 4))

    def exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("the target closed the connection")
            buf += chunk
        return buf

    def recv(self):
        bhs = self.exact(48)
        self.exact(bhs[4] * 4)
        dsl = int.from_bytes(bhs[5:8], "big")
        data = self.exact(dsl + (-dsl % 4))[:dsl]
        self.statsn = struct.unpack(">I", bhs[24:28])[0] + 1
        return bhs, data


def login(conn):
    keys = [("InitiatorName", "iqn.2026-01.org.example:alua-test"),
            ("SessionType", "Normal"), ("TargetName", TARGET),
            ("HeaderDigest", "None"), ("DataDigest", "None"),
            ("ErrorRecoveryLevel", "0")]
    bhs = bytearray(48)
    bhs[0] = 0x43                       # Login Request, immediate
    bhs[1] = 0x80 | 1 << 2 | 3          # transit, operational -> full
    bhs[8:14] = b"\x80\0\0\0\0\x17"     # ISID
    struct.pack_into(">IHHII", bhs, 16, 1, 0, 0, 0, 0)
    conn.send(bhs, b"".join(f"{k}={v}\0".encode() for k, v in keys))
    bhs, data = conn.recv()
    if bhs[36:38] != b"\0\0" or bhs[1] & 3 != 3:
        sys.exit(f"login failed: {bhs[36:38].hex()}")
    conn.cmdsn = struct.unpack(">I", bhs[28:32])[0]      # ExpCmdSN
    return dict(p.split("=", 1) for p in data.decode().split("\0") if p)


def command(conn, cdb, alloc):
    """(status, sense) of a command with alloc bytes of data-in room."""
    conn.itt += 1
    bhs = bytearray(48)
    bhs[0] = 0x01
    bhs[1] = 0x80 | (0x40 if alloc else 0) | 1   # final, read, simple
    struct.pack_into(">IIII", bhs, 16, conn.itt, alloc, conn.cmdsn,
                     conn.statsn)
    conn.cmdsn += 1
    bhs[32:32 + len(cdb)] = cdb
    conn.send(bhs)
    while True:
        bhs, data = conn.recv()
        op = bhs[0] & 0x3F
        if op == 0x25 and bhs[1] & 1:            # Data-In with status
            return bhs[3], b""
        if op == 0x21:                           # SCSI Response
            n = int.from_bytes(data[:2], "big") if data else 0
            return bhs[3], data[2:2 + n]


COMMANDS = [
    ("TEST UNIT READY", bytes(6), 0),
    ("READ(10)", bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 512),
    ("WRITE(10)", bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0),
    ("INQUIRY", bytes([0x12, 0, 0, 0, 96, 0]), 96),
    ("MODE SENSE(6)", bytes([0x1A, 0, 0x3F, 0, 255, 0]), 255),
    ("READ CAPACITY(16)", bytes([0x9E, 0x10] + [0] * 11 + [32, 0, 0]), 32),
    ("REPORT LUNS", bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), 256),
    ("PERSISTENT RESERVE IN", bytes([0x5E, 0, 0, 0, 0, 0, 0, 1, 0, 0]), 256),
    ("REPORT TARGET PORT GROUPS",
     bytes([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), 256),
]


def main():
    conn = Conn()
    keys = login(conn)
    print("tpgt", keys.get("TargetPortalGroupTag"))
    # REQUEST SENSE runs in every state: it takes the new nexus's
    # power-on unit attention, which would come before the answers.
    command(conn, bytes([0x03, 0, 0, 0, 252, 0]), 252)
    if sys.argv[3:] == ["--session"]:
        by_name = {name: (name, cdb, alloc) for name, cdb, alloc in COMMANDS}
        # readline(), not iteration: each line as soon as it is written.
        todo = (by_name[line] for line in
                iter(lambda: sys.stdin.readline().strip(), ""))
    else:
        todo = COMMANDS
    sys.stdout.flush()
    for name, cdb, alloc in todo:
        status, sense = command(conn, cdb, alloc)
        line = f"{name} {status:02x}"
        if status == 2 and len(sense) >= 14:
            line += f" {sense[2] & 0x0F:x}/{sense[12]:02x}/{sense[13]:02x}"
        print(line, flush=True)


main()
