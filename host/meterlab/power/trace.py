"""Current traces from power analysers (design.md, "Power budget"): what `meterlab power import` reads, and
the normalised file (.npz) that `calibrate` and `report` read back.

    trace = read_trace("capture.csv")            # the format told by its header
    trace.mean_current_a, trace.charge_c
    save_trace(trace, "capture.npz"); load_trace("capture.npz")

The formats, as the instruments write them:

- ppk2: the nRF Connect Power Profiler app's CSV export for the Power Profiler Kit II. Header
  `Timestamp(ms),Current(uA)`, then the digital channels if they were exported: one `D0-D7` column of
  bit strings, or eight columns `D0`..`D7` (older apps: `Bits`). Only time and current are kept.
- joulescope: the Joulescope UI's CSV. Header `#time,current,voltage,power,charge,energy` (seconds,
  amperes, volts, watts, coulombs, joules; a recording may carry more `#` lines), or the UI 0.x export
  with no header: `time,current,voltage` in s, A, V (give --format joulescope for that one: with no
  header, nothing tells it from any other three numbers). JLS files are binary and need Jetperch's
  pyjls library, which meterlab does not use: export CSV from the UI instead.
- csv: a plain CSV, e.g. an INA219-class sensor's logger: a header naming a time column and a current
  column with their units, `time_s|time_ms|time_us` and `current_a|current_ma|current_ua|current_na`
  (any case; other columns are ignored).

Every error is a TraceError that names the file, the line and what is wrong; the file is only read.
Large exports (a PPK2 at 100 kS/s for minutes is millions of rows) are parsed a block of lines at a time
by numpy, and a progress callback hears (bytes read, file size) once a read has taken a second.
"""
import io
import itertools
import os
import time
from dataclasses import dataclass

import numpy as np

FORMATS = ("ppk2", "joulescope", "csv")
_BLOCK_LINES = 200_000
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_CURRENT_UNITS = {"a": 1.0, "ma": 1e-3, "ua": 1e-6, "na": 1e-9}
_NPZ_KIND = "meterlab power trace 1"


class TraceError(Exception):
    def __init__(self, path, what, line=None):
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {what}")
        self.path = path
        self.line = line
        self.what = what


@dataclass
class Trace:
    """A current trace on the instrument's clock: times_s (increasing) and current_a, as numpy arrays."""
    times_s: np.ndarray
    current_a: np.ndarray
    source_format: str
    file_name: str

    @property
    def samples(self):
        return len(self.times_s)

    @property
    def duration_s(self):
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def sample_rate_hz(self):
        """Samples a second, from the median interval (robust to a dropped sample or two)."""
        return 1.0 / float(np.median(np.diff(self.times_s)))

    @property
    def charge_c(self):
        """The charge drawn over the trace (coulombs): the current integrated by the trapezoid rule."""
        return float(np.trapezoid(self.current_a, self.times_s))

    @property
    def mean_current_a(self):
        return self.charge_c / self.duration_s


@dataclass(frozen=True)
class _Layout:
    """Where a format keeps time and current, in which units, and how many lines its header takes."""
    source_format: str
    header_lines: int
    time_column: int
    current_column: int
    time_scale: float
    current_scale: float


def read_trace(path, format="auto", progress=None, clock=time.monotonic):
    """The Trace in a PPK2, Joulescope or plain CSV export. format: "auto" (from the header) or one of
    FORMATS. progress(bytes_read, total_bytes) is called after each block once a second has passed."""
    path = os.fspath(path)
    if format != "auto" and format not in FORMATS:
        raise TraceError(path, f"unknown format {format!r}; choose auto or one of {', '.join(FORMATS)}")
    try:
        with open(path, "rb") as raw:
            head = raw.read(4096)
    except OSError as error:
        raise TraceError(path, f"cannot read: {error.strerror}") from None
    _refuse_binary(path, head)
    layout = _layout(path, head.decode("utf-8", "replace"), format)
    times, current = _read_columns(path, layout, progress, clock)
    _check_samples(path, layout, times, current)
    return Trace(times * layout.time_scale, current * layout.current_scale, layout.source_format,
                 os.path.basename(path))


def _refuse_binary(path, head):
    if head.startswith(b"PK\x03\x04"):
        raise TraceError(path, "a zip file (a .ppk2 session of the Power Profiler app?): export CSV from the "
                               "app (Export, with the current and timestamp columns) and import that")
    if b"\x00" in head:
        raise TraceError(path, "a binary file (a Joulescope .jls?): JLS needs Jetperch's pyjls library, which "
                               "meterlab does not use; export CSV from the Joulescope UI and import that")


def _layout(path, text, format):
    lines = text.splitlines()
    if not lines:
        raise TraceError(path, "empty file: no header and no samples")
    first = lines[0].strip().lstrip("\ufeff")
    names = [name.strip().lower() for name in first.split(",")]
    if format in ("auto", "ppk2") and names[:2] == ["timestamp(ms)", "current(ua)"]:
        return _Layout("ppk2", 1, 0, 1, 1e-3, 1e-6)
    if format in ("auto", "joulescope") and first.startswith("#"):
        comments = list(itertools.takewhile(lambda line: line.lstrip().startswith("#"), lines))
        header = [name.strip().lower() for name in comments[-1].lstrip()[1:].split(",")]
        if "time" in header and "current" in header:
            return _Layout("joulescope", len(comments), header.index("time"), header.index("current"), 1.0, 1.0)
    if format == "joulescope" and _numbers(names):
        return _Layout("joulescope", 0, 0, 1, 1.0, 1.0)  # UI 0.x: time, current, voltage; no header
    if format in ("auto", "csv"):
        layout = _plain_layout(names)
        if layout:
            return layout
    wanted = {
        "ppk2": "a PPK2 export's header 'Timestamp(ms),Current(uA)'",
        "joulescope": "a Joulescope header '#time,current,...' (or, from UI 0.x, rows of time,current,voltage)",
        "csv": "a header naming time and current with units, e.g. 'time_s,current_a' or 'time_ms,current_ma'",
    }
    told = " or ".join(wanted.values()) if format == "auto" else wanted[format]
    if format == "auto" and _numbers(names):
        told += " (no header: a Joulescope UI 0.x export? give --format joulescope)"
    raise TraceError(path, f"header {first[:80]!r} is not {told}", line=1)


def _plain_layout(names):
    time_columns = [(i, _TIME_UNITS[n[5:]]) for i, n in enumerate(names) if n[5:] in _TIME_UNITS
                    and n.startswith("time_")]
    current_columns = [(i, _CURRENT_UNITS[n[8:]]) for i, n in enumerate(names) if n[8:] in _CURRENT_UNITS
                       and n.startswith("current_")]
    if len(time_columns) != 1 or len(current_columns) != 1:
        return None
    (time_column, time_scale), (current_column, current_scale) = time_columns[0], current_columns[0]
    return _Layout("csv", 1, time_column, current_column, time_scale, current_scale)


def _numbers(fields):
    try:
        [float(field) for field in fields]
    except ValueError:
        return False
    return True


def _read_columns(path, layout, progress, clock):
    """Time and current in the file's own units, a block of lines at a time (numpy's C parser)."""
    started = clock()
    total = os.path.getsize(path)
    blocks_t, blocks_i = [], []
    line = layout.header_lines
    with open(path, "rb") as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline=None)
        for _ in range(layout.header_lines):
            text.readline()
        while True:
            block = list(itertools.islice(text, _BLOCK_LINES))
            if not block:
                break
            while block and not block[-1].strip():  # blank lines at the end of a file are not samples
                block.pop()
            if block:
                values = _parse_block(path, layout, block, line)
                blocks_t.append(values[:, 0])
                blocks_i.append(values[:, 1])
            line += len(block)
            if progress is not None and clock() - started >= 1.0:
                progress(binary.tell(), total)
    if not blocks_t:
        raise TraceError(path, "no samples after the header")
    return np.concatenate(blocks_t), np.concatenate(blocks_i)


def _parse_block(path, layout, block, first_line):
    columns = (layout.time_column, layout.current_column)
    try:
        return np.loadtxt(block, delimiter=",", usecols=columns, ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        pass
    for offset, row in enumerate(block):  # numpy says a row is wrong, not which: find it
        fields = row.rstrip("\r\n").split(",")
        number = first_line + offset + 1
        if len(fields) <= max(columns):
            raise TraceError(path, f"{len(fields)} columns, expected at least {max(columns) + 1}: "
                                   f"{row.strip()[:60]!r}", line=number)
        for column in columns:
            try:
                float(fields[column])
            except ValueError:
                raise TraceError(path, f"column {column + 1} is not a number: {fields[column].strip()[:40]!r}",
                                 line=number) from None
    raise TraceError(path, "unreadable rows", line=first_line + 1)


def _check_samples(path, layout, times, current):
    def line_of(index):
        return layout.header_lines + int(index) + 1

    bad = np.flatnonzero(~np.isfinite(times) | ~np.isfinite(current))
    if bad.size:
        raise TraceError(path, "a time or current that is not a finite number", line=line_of(bad[0]))
    if times.size < 2:
        raise TraceError(path, "one sample: a trace needs at least two")
    steps = np.flatnonzero(np.diff(times) <= 0)
    if steps.size:
        i = steps[0]
        raise TraceError(path, f"time does not increase: {times[i + 1]:g} after {times[i]:g}",
                         line=line_of(i + 1))


def save_trace(trace, path):
    """The normalised trace (seconds, amperes) as .npz, what `calibrate` and `report` read."""
    with open(path, "wb") as out:
        np.savez(out, kind=_NPZ_KIND, times_s=trace.times_s, current_a=trace.current_a,
                 source_format=trace.source_format, file_name=trace.file_name)


def load_trace(path):
    """A trace saved by save_trace (or, for convenience, any CSV read_trace knows)."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        return read_trace(path)
    try:
        with np.load(path, allow_pickle=False) as saved:
            if str(saved.get("kind", "")) != _NPZ_KIND:
                raise TraceError(path, "not a trace saved by `meterlab power import`")
            trace = Trace(saved["times_s"], saved["current_a"], str(saved["source_format"]),
                          str(saved["file_name"]))
    except (OSError, ValueError, KeyError) as error:
        raise TraceError(path, f"cannot read the saved trace: {error}") from None
    _check_samples(path, _Layout(trace.source_format, 0, 0, 1, 1.0, 1.0), trace.times_s, trace.current_a)
    return trace
