"""The DCC's audit log: append-only, hash-chained; every kind of tampering is found and located."""
import json
import sqlite3

import pytest

from meterlab.dcc.audit import AuditLog


@pytest.fixture
def log(tmp_path):
    clock = iter(range(1000, 100000))
    audit = AuditLog(tmp_path / "dcc", clock=lambda: next(clock))
    for n in range(1, 11):
        audit.append("supplier 90b3d51f30010000", "route", {"code": 0x50, "meter": f"00db12345678900{n % 10}"})
    yield audit
    audit.close()


def raw(log):
    # What someone with the file can do: drop the triggers and edit.
    db = sqlite3.connect(log.path)
    db.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
    return db


def test_whole_log_verifies_and_survives_a_restart(log, tmp_path):
    assert log.verify() == []
    assert [entry[0] for entry in log.entries()] == list(range(1, 11))
    log.close()
    again = AuditLog(tmp_path / "dcc")
    again.append("dcc", "restart")
    assert again.verify() == [] and again.entries(since=10)[0][3] == "restart"
    again.close()


def test_the_api_refuses_to_change_entries(log):
    for statement in ("UPDATE audit SET actor = 'x' WHERE seq = 3", "DELETE FROM audit WHERE seq = 3"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            with log._db:
                log._db.execute(statement)
    assert log.verify() == []


@pytest.mark.parametrize("column, value", [("actor", "supplier 90b3d51f30030000"), ("action", "release"),
                                           ("detail", json.dumps({"code": 79})), ("at", 5.0)])
def test_editing_one_row_is_detected_where_it_happened(log, column, value):
    with raw(log) as db:
        db.execute(f"UPDATE audit SET {column} = ? WHERE seq = 4", (value,))
    assert log.verify() == ["entry 4 was changed after it was written"]


def test_removing_reordering_and_truncating_are_detected(log):
    with raw(log) as db:
        db.execute("DELETE FROM audit WHERE seq = 5")
    assert log.verify()[:2] == ["entry 5 is missing (next is 6)", "entry 6 does not follow the entry before it"]


def test_rehashing_an_edited_row_still_breaks_the_next_link(log):
    from meterlab.dcc.audit import entry_hash

    with raw(log) as db:
        seq, at, actor, action, detail, prev = db.execute(
            "SELECT seq, at, actor, action, detail, prev FROM audit WHERE seq = 7").fetchone()
        db.execute("UPDATE audit SET actor = ?, hash = ? WHERE seq = 7",
                   ("someone else", entry_hash(seq, at, "someone else", action, detail, prev)))
    assert log.verify() == ["entry 8 does not follow the entry before it"]


def test_cutting_off_the_newest_entries_is_detected_by_the_head(log):
    with raw(log) as db:
        db.execute("DELETE FROM audit WHERE seq > 8")
    problems = log.verify()
    assert len(problems) == 1 and "ends at entry 8, but the head says entry 10" in problems[0]
    with pytest.raises(sqlite3.DatabaseError, match="only moves forward"):  # the head cannot be wound back
        with log._db:
            log._db.execute("UPDATE audit_head SET seq = 8")
    db = sqlite3.connect(log.path)
    db.executescript("DROP TRIGGER audit_head_kept; DELETE FROM audit_head;")
    db.close()
    assert "the head is missing" in log.verify()[0]


def test_a_head_file_of_an_older_log_is_taken_over(log, tmp_path):
    seq, digest = log.head()
    log.close()
    db = sqlite3.connect(log.path)
    db.executescript("DROP TRIGGER audit_head_kept; DELETE FROM audit_head;")
    db.close()
    (tmp_path / "dcc" / "audit.head").write_text(json.dumps({"seq": seq, "hash": digest}))
    again = AuditLog(tmp_path / "dcc")
    assert again.head() == (seq, digest) and again.verify() == [] and not (tmp_path / "dcc" / "audit.head").exists()
    again.close()


def test_cli_audit_verify(log, tmp_path):
    import subprocess
    import sys

    def verify():
        return subprocess.run([sys.executable, "-m", "meterlab", "dcc", "audit", "verify", str(tmp_path / "dcc")],
                              capture_output=True, text=True, timeout=60)

    result = verify()
    assert result.returncode == 0 and "audit log whole, 10 entries" in result.stdout
    with raw(log) as db:
        db.execute("UPDATE audit SET detail = '{}' WHERE seq = 2")
    result = verify()
    assert result.returncode == 1 and "entry 2 was changed" in result.stdout and "tampered" in result.stderr
    result = subprocess.run([sys.executable, "-m", "meterlab", "dcc", "audit", "verify", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no audit log" in result.stderr
