"""The DCC's audit log (design.md, "DCC, CSP, parties"): append-only and hash-chained, in SQLite.

Every entry carries the hash of the one before it; an entry's hash covers its sequence number, time,
actor, action, detail and that previous hash. Editing, removing, inserting or reordering any entry
breaks the chain from there on, and `verify()` says where. What a chain cannot show by itself, the
last entries cut off, the head shows: the one row of `audit_head` holds the sequence number and hash of
the newest entry, written in the same transaction as the entries, so it never lags them (a crash
between two files could leave a head behind its log, a false alarm) and costs no second fsync.

SQLite triggers refuse UPDATE and DELETE on the entries, and any move of the head backwards, so no code
path of meterlab changes them; someone with the file can still drop the triggers and edit, which is
what the chain is for, and truncate the log and rewrite the head alike, which only a copy of the head
kept elsewhere reveals (`meterlab dcc audit verify` prints it). Appends are durable one by one, or a
batch at a time (group commit: one fsync for many entries), which is how the DCC keeps up.
"""
import hashlib
import json
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
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq <= OLD.seq
    BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_kept BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'the audit head is kept'); END;
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
        self.clock = clock
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq, self._last = row if row else (0, GENESIS)
        self._adopt_head_file(folder / "audit.head")
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

    def _adopt_head_file(self, path):
        # Logs written before the head moved into the database kept it in audit.head: take it over once.
        if not path.is_file() or self.head() is not None:
            return
        head = json.loads(path.read_text())
        with self._db:
            self._db.execute("INSERT INTO audit_head VALUES (1, ?, ?)", (head["seq"], head["hash"]))
        path.unlink()

    def head(self):
        """(seq, hash) of the newest entry, as recorded when it was appended; None before the first."""
        row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return tuple(row) if row else None

    def _commit(self):
        if self._pending:
            self._db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending)
            self._db.execute("INSERT INTO audit_head VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE "
                             "SET seq = excluded.seq, hash = excluded.hash", (self._seq, self._last))
            self._pending = []
        self._db.commit()

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
        commit, when the outermost batch ends (also on an exception: what was appended happened)."""
        return self._Batch(self)

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
        head = self.head()
        last_seq = expected_seq - 1
        if head is None:
            if last_seq:
                problems.append("the head is missing: the newest entries cannot be vouched for")
        elif head != (last_seq, prev):
            problems.append(f"the log ends at entry {last_seq}, but the head says entry {head[0]}: "
                            "entries were removed from the end, or the head was changed")
        return problems
