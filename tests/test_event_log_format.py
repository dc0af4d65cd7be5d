"""The firmware's event log (meterfw.event_log) is what the host's calibration reads (meterlab.power.events):
one format, written on the board, read on the host."""
from meterfw import ledger
from meterfw.event_log import EventLog
from meterlab.power.events import read_events


def test_the_boards_event_log_reads_as_the_calibrations_events(tmp_path):
    ticks = iter(range(5_000, 10_000, 250))
    events = EventLog(lambda: next(ticks), str(tmp_path / "events.csv"))
    book = ledger.EnergyLedger({op: 1 for op in ledger.OPERATIONS}, 10**9, 0, lambda: 0)
    book.events = events
    for operation in ledger.OPERATIONS:
        book.charge(operation, 3)
    events.flush()
    log = read_events(tmp_path / "events.csv")
    assert [(round(float(t), 3), op, int(n)) for t, op, n in zip(log.times_s, log.operations, log.counts)] == [
        (5.0 + 0.25 * i, op, 3) for i, op in enumerate(ledger.OPERATIONS)]
