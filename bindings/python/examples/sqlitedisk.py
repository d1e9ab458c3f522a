#!/usr/bin/python3
"""A disk whose blocks live in SQLite: ./sqlitedisk.py --db disk.sqlite --nbd URI

Only blocks ever written are stored (one row each); a block without a row
reads as zeros, and unmap deletes rows, so the disk is thin provisioned
and says which blocks hold data (extents, for NBD block status). Writes
are collected in a transaction that flush (or a FUA write) commits. The
geometry is kept in the database: a disk reopened without --size keeps
its size."""
import sqlite3

import spd


class SqliteDisk:
    def __init__(self, params, db=None):
        if not db:
            raise spd.UsageError("--db PATH is required")
        self.db = sqlite3.connect(db, check_same_thread=False,
                                  isolation_level="DEFERRED")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS geometry (block_length INTEGER,
                                                 block_count INTEGER);
            CREATE TABLE IF NOT EXISTS blocks (lba INTEGER PRIMARY KEY,
                                               data BLOB NOT NULL);""")
        row = self.db.execute("SELECT * FROM geometry").fetchone()
        if row and not params.given & {"size", "block_length"}:
            params.block_length, params.block_count = row
        elif row and row != (params.block_length, params.block_count):
            raise spd.UsageError("%s holds a disk of %d blocks of %d bytes"
                                 % (db, row[1], row[0]))
        elif not row:
            self.db.execute("INSERT INTO geometry VALUES (?, ?)",
                            (params.block_length, params.block_count))
            self.db.commit()
        self.bl = params.block_length

    def read(self, lba, count):
        data = bytearray(count * self.bl)
        for block, blob in self.db.execute(
                "SELECT lba, data FROM blocks WHERE lba >= ? AND lba < ?",
                (lba, lba + count)):
            at = (block - lba) * self.bl
            data[at:at + self.bl] = blob
        return data

    def write(self, lba, buf, fua):
        self.db.executemany(
            "INSERT OR REPLACE INTO blocks VALUES (?, ?)",
            ((lba + i, bytes(buf[i * self.bl:(i + 1) * self.bl]))
             for i in range(len(buf) // self.bl)))
        if fua:
            self.db.commit()

    def flush(self):
        self.db.commit()

    def unmap(self, ranges):
        self.db.executemany("DELETE FROM blocks WHERE lba >= ? AND lba < ?",
                            ((lba, lba + count) for lba, count in ranges))

    def extents(self, lba, count):
        """(blocks from lba sharing its state, whether they hold data)"""
        if self.db.execute("SELECT 1 FROM blocks WHERE lba = ?",
                           (lba,)).fetchone():
            # The run of rows ends at the first row whose next block has
            # none.
            last, = self.db.execute(
                "SELECT MIN(a.lba) FROM blocks a WHERE a.lba >= ? AND "
                "a.lba < ? AND NOT EXISTS (SELECT 1 FROM blocks b WHERE "
                "b.lba = a.lba + 1)", (lba, lba + count)).fetchone()
            return (count if last is None else last + 1 - lba), True
        nxt, = self.db.execute("SELECT MIN(lba) FROM blocks WHERE lba > ?",
                               (lba,)).fetchone()
        return min(count, nxt - lba) if nxt else count, False

    def close(self):
        self.db.commit()
        self.db.close()


if __name__ == "__main__":
    spd.main(SqliteDisk, summary="a disk whose blocks live in SQLite",
             default_size=64 << 20,
             options=[spd.Option("db", "PATH", "the SQLite database "
                                 "(created when missing)", "d")])
