"""What each operation really costs on a board: a measured current trace lined up with the firmware's
event log (meterlab.power.events), and the costs fitted by least squares (design.md, "Power budget").

    result = calibrate(trace, events, PowerProfile.of("esp32-devkitc"))
    result.offset_s, result.fitted_uj, result.ratios, result.rms_residual_uj, result.unexercised

1. Alignment. The instrument and the board keep their own clocks, so the log's times are the trace's
   less an unknown offset. A model built from the log and the profile's nominal pulses
   (meterlab.power.pulses) says where the current should rise: each event starts a pulse of its
   operation's current. The trace's rises (the positive steps of its current, on a common grid) are
   cross-correlated with the model's by FFT; the lag of the peak is the offset, to
   the grid's step (1 ms, or the trace's sample interval if longer). Rises, not the currents
   themselves: the durations are what is being calibrated, so where a pulse ends is unknown, while the
   log says exactly where each one begins. The score is the share of the model's rises the trace shows
   at that lag (near 1 when it matches); the runner-up is the best score at least a second away, which
   a periodic schedule with identical bursts makes close (then give the offset yourself).
2. Windows. Events closer than a quiet gap form a burst; the trace is cut midway through the quiet
   between bursts, so each window holds one burst and the sleep around it, and an alignment a little
   off, or a pulse longer than the profile's, stays inside its window.
3. Fit. In each window the measured energy (the supply voltage x the current's integral) is
   sum(count of op x cost of op) + sleep current x voltage x window length; numpy.linalg.lstsq gives
   each exercised operation's cost and the sleep current. Operations the log never exercises are
   reported, not guessed; ones that always come together in the same proportions cannot be told
   apart, and the fit refuses them by name.
"""
from dataclasses import dataclass, field

import numpy as np

from meterfw import ledger
from meterlab.power.pulses import operation_pulses

SLEEP = "sleep current"
_GRID_S = 0.001  # the alignment's resolution at most
_QUIET_S = 0.5  # a gap this long after an operation's nominal end starts a new burst
_MIN_SCORE = 0.3
_RUNNER_UP_AWAY_S = 1.0
_RANK_TOLERANCE = 1e-9


class CalibrationError(Exception):
    pass


@dataclass
class Window:
    start_s: float  # on the instrument's clock
    end_s: float
    counts: dict  # {operation: count}
    measured_uj: float
    fitted_uj: float = 0.0

    @property
    def residual_uj(self):
        return self.measured_uj - self.fitted_uj


@dataclass
class Calibration:
    board: str
    trace_file: str
    events_file: str
    supply_v: float
    offset_s: float  # instrument time - board time
    alignment_score: float
    runner_up_score: float
    fitted_uj: dict  # {operation: uJ}, the operations the log exercises
    standard_error_uj: dict
    profile_uj: dict  # {operation: uJ}, every operation
    unexercised: tuple
    sleep_a: float
    windows: list = field(repr=False)
    bursts_outside: int = 0  # bursts of the log the trace does not wholly cover

    @property
    def ratios(self):
        return {op: self.fitted_uj[op] / self.profile_uj[op] for op in self.fitted_uj}

    @property
    def residuals_uj(self):
        return np.array([window.residual_uj for window in self.windows])

    @property
    def rms_residual_uj(self):
        return float(np.sqrt(np.mean(self.residuals_uj ** 2)))

    def costs_uj(self):
        """Every operation's cost: fitted where the log exercised it, the profile's where it did not."""
        return {op: self.fitted_uj.get(op, self.profile_uj[op]) for op in ledger.OPERATIONS}

    def to_json(self):
        return {
            "board": self.board, "trace": self.trace_file, "events": self.events_file, "supply_v": self.supply_v,
            "offset_s": self.offset_s, "alignment_score": self.alignment_score,
            "runner_up_score": self.runner_up_score, "sleep_ma": self.sleep_a * 1000,
            "operations": {op: {"fitted_uj": self.fitted_uj[op], "standard_error_uj": self.standard_error_uj[op],
                                "profile_uj": self.profile_uj[op], "ratio": self.ratios[op]}
                           for op in self.fitted_uj},
            "unexercised": list(self.unexercised),
            "windows": [{"start_s": w.start_s, "end_s": w.end_s, "counts": w.counts, "measured_uj": w.measured_uj,
                         "fitted_uj": w.fitted_uj, "residual_uj": w.residual_uj} for w in self.windows],
            "rms_residual_uj": self.rms_residual_uj, "bursts_outside": self.bursts_outside,
        }


def calibrate(trace, events, profile, offset_s=None):
    """The Calibration of profile's board from trace and its event log; offset_s (instrument time - board
    time) if known, else found by alignment."""
    pulses = operation_pulses(profile)
    if offset_s is None:
        offset_s, score, runner_up = align(trace, events, pulses)
    else:
        score = runner_up = float("nan")
    windows, outside = _windows(trace, events, pulses, offset_s, profile.supply_v)
    exercised = [op for op in ledger.OPERATIONS if any(w.counts.get(op) for w in windows)]
    unknowns = exercised + [SLEEP]
    if len(windows) <= len(unknowns):
        raise CalibrationError(
            f"{len(windows)} bursts of the event log lie wholly inside the trace ({outside} outside), too few to fit "
            f"{len(unknowns)} unknowns ({', '.join(unknowns)}): a longer capture, or one that overlaps the log")
    design = np.array([[w.counts.get(op, 0) for op in exercised] + [profile.supply_v * (w.end_s - w.start_s) * 1e6]
                       for w in windows], dtype=float)
    measured = np.array([w.measured_uj for w in windows])
    _refuse_inseparable(design, unknowns)
    solution, *_ = np.linalg.lstsq(design, measured, rcond=None)
    for window, fitted in zip(windows, design @ solution):
        window.fitted_uj = float(fitted)
    residuals = measured - design @ solution
    variance = residuals @ residuals / (len(windows) - len(unknowns))
    errors = np.sqrt(np.diag(variance * np.linalg.inv(design.T @ design)))
    profile_uj = profile.costs_uj()
    return Calibration(
        board=profile.board, trace_file=trace.file_name, events_file=events.file_name, supply_v=profile.supply_v,
        offset_s=float(offset_s), alignment_score=float(score), runner_up_score=float(runner_up),
        fitted_uj={op: float(cost) for op, cost in zip(exercised, solution)},
        standard_error_uj={op: float(error) for op, error in zip(exercised, errors)},
        profile_uj=profile_uj, unexercised=tuple(op for op in ledger.OPERATIONS if op not in exercised),
        sleep_a=float(solution[-1]), windows=windows, bursts_outside=outside)


def _refuse_inseparable(design, unknowns):
    """Refuse a fit whose unknowns the windows cannot tell apart (a rank-deficient design), naming them:
    the unknowns that weigh in the design's null space (its columns scaled alike, so units do not)."""
    scaled = design / np.linalg.norm(design, axis=0)
    _, singular, right = np.linalg.svd(scaled)
    null = right[singular < _RANK_TOLERANCE * singular[0]]
    if null.size:
        tangled = [name for name, weight in zip(unknowns, np.abs(null).max(axis=0)) if weight > 0.05]
        raise CalibrationError(
            "the event log cannot tell apart " + ", ".join(tangled) + ": in every burst they come in the same "
            "proportions, so only their sum is measured; log a capture where they vary independently")


def align(trace, events, pulses):
    """(offset_s, score, runner_up score): the offset (instrument - board time) at which the trace's current
    rises best match the events', by FFT cross-correlation on a common grid."""
    grid = max(_GRID_S, float(np.median(np.diff(trace.times_s))))
    current = _grid_current(trace, grid)
    measured = np.zeros_like(current)  # a rise may straddle two grid steps: take it over two
    measured[1:-1] = np.maximum(current[2:] - current[:-2], 0.0)
    measured -= measured.mean()
    model_start = events.times_s[0] - grid
    model = np.zeros(int((events.times_s[-1] - model_start) / grid) + 2)
    np.add.at(model, np.round((events.times_s - model_start) / grid).astype(int), _rises(events, pulses))
    size = 1 << int(np.ceil(np.log2(measured.size + model.size)))
    correlation = np.fft.irfft(np.fft.rfft(measured, size) * np.conj(np.fft.rfft(model, size)), size)
    lags = np.concatenate((np.arange(0, measured.size), np.arange(-model.size + 1, 0)))
    correlation = np.concatenate((correlation[:measured.size], correlation[size - model.size + 1:]))
    scores = correlation / float(model @ model)
    best = int(np.argmax(scores))
    away = np.abs(lags - lags[best]) * grid >= _RUNNER_UP_AWAY_S
    runner_up = float(scores[away].max()) if away.any() else 0.0
    if scores[best] < _MIN_SCORE:
        raise CalibrationError(
            f"the trace and the event log do not line up: at the best offset the trace shows {scores[best]:.0%} of "
            f"the current rises the log's events should cause (is the log from this capture? do they overlap?)")
    return trace.times_s[0] - model_start + lags[best] * grid, float(scores[best]), runner_up


def _rises(events, pulses):
    """How far the current rises where each event begins: its operation's current, less the current of
    the operation before it in the same burst (a MAC check straight after the wake shows no rise)."""
    rises, before, end = [], 0.0, -np.inf
    for time_s, op, count in zip(events.times_s, events.operations, events.counts):
        pulse = pulses[op]
        rises.append(max(pulse.current_a - (before if time_s <= end + _QUIET_S else 0.0), 0.0))
        before, end = pulse.current_a, time_s + pulse.duration_s * count
    return rises


def _grid_current(trace, grid):
    """The trace's mean current in each grid step from its first sample: its charge, interpolated."""
    edges = np.arange(trace.times_s[0], trace.times_s[-1], grid)
    return np.diff(np.interp(edges, trace.times_s, _charge(trace))) / grid


def _charge(trace):
    steps = np.diff(trace.times_s) * (trace.current_a[1:] + trace.current_a[:-1]) / 2
    return np.concatenate(([0.0], np.cumsum(steps)))


def _bursts(events, pulses):
    """[(first index, last index + 1, nominal end on the board clock)] of the log's bursts."""
    ends = events.times_s + np.array([pulses[op].duration_s * count
                                      for op, count in zip(events.operations, events.counts)])
    bursts, first, end = [], 0, ends[0]
    for i in range(1, len(events)):
        if events.times_s[i] > end + _QUIET_S:
            bursts.append((first, i, end))
            first = i
        end = max(end, ends[i])
    bursts.append((first, len(events), end))
    return bursts


def _windows(trace, events, pulses, offset_s, supply_v):
    """(windows inside the trace, bursts outside): each burst from midway through the quiet before it to
    midway through the quiet after (the first and last: as far out as the median quiet)."""
    bursts = _bursts(events, pulses)
    starts = np.array([events.times_s[first] for first, _, _ in bursts]) + offset_s
    ends = np.array([end for _, _, end in bursts]) + offset_s
    quiet = starts[1:] - ends[:-1]
    half = float(np.median(quiet)) / 2 if quiet.size else _QUIET_S
    cuts = np.concatenate(([starts[0] - half], (ends[:-1] + starts[1:]) / 2, [ends[-1] + half]))
    charge = _charge(trace)
    windows, outside = [], 0
    for (first, last, _), start, end in zip(bursts, cuts[:-1], cuts[1:]):
        if start < trace.times_s[0] or end > trace.times_s[-1]:
            outside += 1
            continue
        counts = {}
        for op, count in zip(events.operations[first:last], events.counts[first:last]):
            counts[op] = counts.get(op, 0) + int(count)
        coulombs = np.interp(end, trace.times_s, charge) - np.interp(start, trace.times_s, charge)
        windows.append(Window(float(start), float(end), counts, float(coulombs * supply_v * 1e6)))
    return windows, outside
