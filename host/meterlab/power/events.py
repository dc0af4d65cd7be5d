"""The firmware's energy-ledger events, as a CSV the host lines up with a current trace
(meterlab.power.calibrate).

One row for each thing the board did that its ledger charges (meterfw.ledger.OPERATIONS), when it
began on the board's own clock:

    time_s,operation,count
    12.000000,wake,1
    12.412000,radio_tx_byte,42
    12.413000,radio_rx_byte,17
    12.430000,mac_check,1

time_s: seconds on the board's clock (its ticks since boot, say); only differences matter, since the
calibration finds the offset to the instrument's clock. operation: one of meterfw.ledger.OPERATIONS.
count: how many, a whole number above zero (bytes for the radio, 1 for the rest). Rows go in time
order; rows at the same time are allowed (a burst logged at once).
"""
import csv
import os
from dataclasses import dataclass

import numpy as np

from meterfw import ledger

HEADER = ("time_s", "operation", "count")


class EventLogError(Exception):
    def __init__(self, path, what, line=None):
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}")


@dataclass
class EventLog:
    """The events in time order: times_s (board clock), operations (names) and counts, index by index."""
    times_s: np.ndarray
    operations: tuple
    counts: np.ndarray
    file_name: str = ""

    def __len__(self):
        return len(self.operations)

    def totals(self):
        """{operation: total count} of the operations the log exercises."""
        totals = {}
        for operation, count in zip(self.operations, self.counts):
            totals[operation] = totals.get(operation, 0) + int(count)
        return totals


def read_events(path):
    path = os.fspath(path)
    try:
        with open(path, newline="") as source:
            rows = list(csv.reader(source))
    except OSError as error:
        raise EventLogError(path, f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise EventLogError(path, "not a text file") from None
    if not rows or tuple(field.strip() for field in rows[0]) != HEADER:
        raise EventLogError(path, f"the header must be {','.join(HEADER)}", line=1)
    times, operations, counts = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if not any(field.strip() for field in row):
            continue
        if len(row) != 3:
            raise EventLogError(path, f"{len(row)} fields, expected 3 ({','.join(HEADER)})", line=number)
        time_text, operation, count_text = (field.strip() for field in row)
        try:
            time_s = float(time_text)
        except ValueError:
            raise EventLogError(path, f"time_s {time_text!r} is not a number", line=number) from None
        if not np.isfinite(time_s):
            raise EventLogError(path, f"time_s {time_text!r} is not a finite number", line=number)
        if operation not in ledger.OPERATIONS:
            raise EventLogError(path, f"unknown operation {operation!r}; the ledger's are "
                                      f"{', '.join(ledger.OPERATIONS)}", line=number)
        if not count_text.isdigit() or int(count_text) == 0:
            raise EventLogError(path, f"count {count_text!r} is not a whole number above zero", line=number)
        if times and time_s < times[-1]:
            raise EventLogError(path, f"time goes back: {time_s:g} after {times[-1]:g}", line=number)
        times.append(time_s)
        operations.append(operation)
        counts.append(int(count_text))
    if not times:
        raise EventLogError(path, "no events after the header")
    return EventLog(np.array(times), tuple(operations), np.array(counts, dtype=np.int64), os.path.basename(path))


def write_events(log, path):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for time_s, operation, count in zip(log.times_s, log.operations, log.counts):
            writer.writerow((f"{time_s:.6f}", operation, int(count)))
