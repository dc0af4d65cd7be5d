"""Synthetic current traces with a known truth: what the tests calibrate against, and what a lab without a
power analyser can try the pipeline on (`meterlab power synthesize`).

    bench = synthesize(PowerProfile.of("esp32-devkitc"), true_costs_uj={...}, seed=1)
    write_trace_csv(bench.trace, "capture.csv", "ppk2"); write_events(bench.events, "events.csv")

The board wakes in bursts, a seeded random mix of what a gas meter does: the wake, the frames heard and
sent (bytes), MAC checks, signature verifies, now and then a valve move, one after another, each a pulse
of current (meterlab.power.pulses) at the true cost; asleep between bursts. The instrument samples the
average current over each sample interval (as a PPK2 or a Joulescope reports at reduced rates), starts
at its own time zero, offset from the board's clock, and adds Gaussian noise.
"""
from dataclasses import dataclass

import numpy as np

from meterfw import ledger
from meterlab.power.events import EventLog
from meterlab.power.pulses import operation_pulses
from meterlab.power.trace import Trace

_GAP_S = (1.0, 3.0)  # asleep between bursts, seconds
_STEP_S = 0.001  # between one operation's end and the next one's start in a burst
_BOARD_START_S = 5.0  # the board clock at the first burst (its uptime when the capture began, say)


@dataclass
class SyntheticBench:
    trace: Trace
    events: EventLog
    true_costs_uj: dict
    offset_s: float  # instrument time - board time
    sleep_a: float


def random_bursts(bursts, seed):
    """[[(operation, count), ...] a burst], seeded: every burst wakes and talks; the rest at random."""
    rng = np.random.default_rng(seed)
    schedule = []
    for _ in range(bursts):
        burst = [(ledger.WAKE, 1), (ledger.RADIO_RX_BYTE, int(rng.integers(10, 400)))]
        if rng.random() < 0.6:
            burst.append((ledger.MAC_CHECK, int(rng.integers(1, 3))))
        if rng.random() < 0.35:
            burst.append((ledger.SIGNATURE_VERIFY, 1))
        if rng.random() < 0.15:
            burst.append((ledger.VALVE, 1))
        burst.append((ledger.RADIO_TX_BYTE, int(rng.integers(20, 400))))
        schedule.append(burst)
    return schedule


def synthesize(profile, true_costs_uj=None, bursts=30, seed=0, offset_s=3.217, noise_a=20e-6,
               sample_rate_hz=1000.0, dev_board=True):
    """A trace and its event log from profile's board, its operations costing true_costs_uj (default: the
    profile's), the board asleep at its dev board's (or production) sleep current."""
    pulses = operation_pulses(profile, true_costs_uj)
    rng = np.random.default_rng([seed, 1])
    times, operations, counts = [], [], []
    now = _BOARD_START_S
    for burst in random_bursts(bursts, seed):
        for operation, count in burst:
            times.append(now)
            operations.append(operation)
            counts.append(count)
            now += pulses[operation].duration_s * count + _STEP_S
        now += rng.uniform(*_GAP_S)
    events = EventLog(np.array(times), tuple(operations), np.array(counts, dtype=np.int64), "synthetic")
    return trace_for_events(profile, events, true_costs_uj, seed, offset_s, noise_a, sample_rate_hz, dev_board)


def trace_for_events(profile, events, true_costs_uj=None, seed=0, offset_s=3.217, noise_a=20e-6,
                     sample_rate_hz=1000.0, dev_board=True):
    """What an instrument would record of a board that did events (an event log, a board's own as
    meterfw.event_log writes it, or synthesize's): each operation a pulse of current at its true cost,
    starting at its event's time, pulses that overlap adding up; asleep between them."""
    pulses = operation_pulses(profile, true_costs_uj)
    sleep_a = profile.sleep_ma(dev_board) / 1000
    rng = np.random.default_rng([seed, 2])
    spans = [(start, start + pulses[operation].duration_s * count, pulses[operation].current_a)
             for start, operation, count in zip(events.times_s, events.operations, events.counts)]
    end = max(stop for _, stop, _ in spans)
    dt = 1.0 / sample_rate_hz
    edges = np.arange(0.0, end + _GAP_S[1] + offset_s, dt)  # the instrument's clock, from its own zero
    charge = sleep_a * edges  # coulombs drawn by each edge time
    for start, stop, amperes in spans:
        charge += amperes * np.clip(edges - (start + offset_s), 0.0, stop - start)
    current = np.diff(charge) / dt + rng.normal(0.0, noise_a, edges.size - 1)
    trace = Trace(edges[:-1], current, "synthetic", "synthetic")
    costs = {operation: pulses[operation].current_a * profile.supply_v * pulses[operation].duration_s * 1e6
             for operation in ledger.OPERATIONS}
    return SyntheticBench(trace, events, costs, offset_s, sleep_a)


def write_trace_csv(trace, path, format, supply_v=3.3):
    """The trace as an instrument would export it: "ppk2", "joulescope" or "csv" (meterlab.power.trace)."""
    if format == "ppk2":  # the app's export with its digital channels, all low
        columns = np.column_stack((trace.times_s * 1e3, trace.current_a * 1e6))
        np.savetxt(path, columns, fmt="%.4f,%.4f,00000000", header="Timestamp(ms),Current(uA),D0-D7", comments="")
    elif format == "joulescope":  # the UI's CSV: time, current, voltage, power, charge, energy from the start
        power = trace.current_a * supply_v
        dt = np.diff(trace.times_s, prepend=trace.times_s[0])
        columns = np.column_stack((trace.times_s - trace.times_s[0], trace.current_a, np.full(trace.samples, supply_v),
                                   power, np.cumsum(trace.current_a * dt), np.cumsum(power * dt)))
        np.savetxt(path, columns, fmt="%.6f,%.6e,%.4f,%.6e,%.6e,%.6e",
                   header="#time,current,voltage,power,charge,energy", comments="")
    elif format == "csv":
        np.savetxt(path, np.column_stack((trace.times_s, trace.current_a)), fmt="%.6f,%.9f",
                   header="time_s,current_a", comments="")
    else:
        raise ValueError(f"unknown trace format {format!r}")
