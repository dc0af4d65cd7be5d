"""The DCC's audit log (design.md, "DCC, CSP, parties"): append-only and hash-chained, in SQLite.

Every entry carries the hash of the one before it; an entry's hash covers its sequence number, time,
actor, action, detail and that previous hash. Editing, removing, inserting or reordering any entry
breaks the chain from there on, and `verify()` says where. What a chain cannot show by itself, the
last entries cut off, the head file shows: beside the database, `audit.head` holds the sequence number
and hash of the newest entry, replaced atomically after each append.

SQLite triggers refuse UPDATE and DELETE on the table, so no code path of meterlab changes an entry;
someone with the file can still drop them, which is what the chain is for. Appends are durable one by
one, or a batch at a time (group commit: one fsync for many entries), which is how the DCC keeps up.
"""
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def entry_hash(seq, at, actor, action, detail, prev):
    # Fields joined by the unit separator, which none can hold: the detail is JSON (it escapes control
    # characters), the others are meterlab's own names, a number and a hash; actor and action are checked.
    if "\x1f" in actor or "\x1f" in action:
        raise ValueError("an audit actor or action holds a control character")
    body = "\x1f".join((str(seq), repr(float(at)), actor, action, detail, prev))
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    def __init__(self, folder, clock=time.time):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "audit.sqlite"
        self.head_path = folder / "audit.head"
        self.clock = clock
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq, self._last = row if row else (0, GENESIS)
        self._batch_depth = 0
        self._pending = []  # rows appended in the open batch, inserted together at its commit

    def close(self):
        self._db.close()

    def append(self, actor, action, detail=None):
        """Add an entry (detail: anything JSON can hold); its hash."""
        detail_text = json.dumps(detail if detail is not None else {}, sort_keys=True, separators=(",", ":"))
        seq = self._seq + 1
        at = float(self.clock())
        digest = entry_hash(seq, at, actor, action, detail_text, self._last)
        self._pending.append((seq, at, actor, action, detail_text, self._last, digest))
        self._seq, self._last = seq, digest
        if not self._batch_depth:
            self._commit()
        return digest

    def _commit(self):
        if self._pending:
            self._db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending)
            self._pending = []
        self._db.commit()
        self._write_head()

    class _Batch:
        def __init__(self, log):
            self.log = log

        def __enter__(self):
            self.log._batch_depth += 1
            return self.log

        def __exit__(self, *exc):
            self.log._batch_depth -= 1
            if not self.log._batch_depth:
                self.log._commit()

    def batch(self):
        """Group commit: entries appended inside `with log.batch():` are made durable together, with one
        commit and one head write, when the outermost batch ends (also on an exception: what was
        appended happened)."""
        return self._Batch(self)

    def _write_head(self):
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"seq": self._seq, "hash": self._last}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.head_path)

    def entries(self, since=0):
        """[(seq, at, actor, action, detail dict)] after seq `since`, oldest first."""
        rows = self._db.execute("SELECT seq, at, actor, action, detail FROM audit WHERE seq > ? ORDER BY seq",
                                (since,))
        return [(seq, at, actor, action, json.loads(detail)) for seq, at, actor, action, detail in rows]

    def verify(self):
        """[] when the log is whole; else one line for each problem found, first problem first."""
        problems = []
        expected_seq, prev = 1, GENESIS
        for seq, at, actor, action, detail, stored_prev, stored_hash in self._db.execute(
                "SELECT seq, at, actor, action, detail, prev, hash FROM audit ORDER BY seq"):
            if seq != expected_seq:
                problems.append(f"entry {expected_seq} is missing (next is {seq})")
            if stored_prev != prev:
                problems.append(f"entry {seq} does not follow the entry before it")
            if entry_hash(seq, at, actor, action, detail, stored_prev) != stored_hash:
                problems.append(f"entry {seq} was changed after it was written")
            expected_seq, prev = seq + 1, stored_hash
        try:
            head = json.loads(self.head_path.read_text())
        except (FileNotFoundError, ValueError):
            head = None
        last_seq = expected_seq - 1
        if head is None:
            if last_seq:
                problems.append("the head file is missing: the newest entries cannot be vouched for")
        elif (head.get("seq"), head.get("hash")) != (last_seq, prev):
            problems.append(f"the log ends at entry {last_seq}, but the head says entry {head.get('seq')}: "
                            "entries were removed from the end, or the head was changed")
        return problems
