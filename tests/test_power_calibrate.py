"""Calibration (meterlab.power.calibrate) against synthetic traces with a known truth
(meterlab.power.synthetic): costs that differ from the board's profile, an unknown clock offset and
noise, exported as a PPK2 and a Joulescope would; the fit must find the offset and every exercised
operation's true cost within 5%, and refuse what it cannot tell."""
import dataclasses

import numpy as np
import pytest

from meterfw import ledger
from meterlab.power.calibrate import CalibrationError, calibrate
from meterlab.power.events import EventLog, EventLogError, read_events, write_events
from meterlab.power.profile import PowerProfile
from meterlab.power.synthetic import synthesize, write_trace_csv
from meterlab.power.trace import read_trace

# the board as measured differs from its profile: a slower wake and verify, a cheaper MAC check, ...
TRUTH_OVER_PROFILE = {ledger.WAKE: 1.3, ledger.RADIO_TX_BYTE: 0.9, ledger.RADIO_RX_BYTE: 1.1,
                      ledger.MAC_CHECK: 0.8, ledger.SIGNATURE_VERIFY: 1.25, ledger.VALVE: 0.95}


def bench(board="esp32-devkitc", seed=1, **options):
    profile = PowerProfile.of(board)
    truth = {op: cost * TRUTH_OVER_PROFILE[op] for op, cost in profile.costs_uj().items()}
    return profile, synthesize(profile, truth, seed=seed, **options)


@pytest.mark.parametrize("board, fmt, seed, offset_s", [
    ("esp32-devkitc", "ppk2", 1, 3.217), ("esp32-devkitc", "joulescope", 2, 11.5),
    ("esp32-s3-devkitc", "ppk2", 3, 0.75), ("rpi-pico", "joulescope", 4, 7.0),
])
def test_the_fit_recovers_the_true_costs_from_an_exported_trace(tmp_path, board, fmt, seed, offset_s):
    profile, truth = bench(board, seed, offset_s=offset_s, noise_a=50e-6)
    write_trace_csv(truth.trace, tmp_path / "trace.csv", fmt, profile.supply_v)
    write_events(truth.events, tmp_path / "events.csv")
    trace, events = read_trace(tmp_path / "trace.csv"), read_events(tmp_path / "events.csv")
    assert trace.source_format == fmt
    result = calibrate(trace, events, profile)
    assert result.offset_s == pytest.approx(offset_s, abs=0.002)  # the grid's millisecond, give or take one
    assert result.alignment_score > 0.5 and result.runner_up_score < 0.5 * result.alignment_score
    assert set(result.fitted_uj) == set(ledger.OPERATIONS) and result.unexercised == ()
    for op, fitted in result.fitted_uj.items():
        assert fitted == pytest.approx(truth.true_costs_uj[op], rel=0.05), op
        assert result.ratios[op] == pytest.approx(TRUTH_OVER_PROFILE[op], rel=0.05), op
    assert result.sleep_a == pytest.approx(truth.sleep_a, rel=0.05)
    assert len(result.windows) == 30 and result.bursts_outside == 0
    assert result.rms_residual_uj < 0.01 * np.median([w.measured_uj for w in result.windows])


def test_a_given_offset_skips_the_search_and_a_trace_cut_short_drops_the_bursts_it_misses():
    profile, truth = bench()
    trace = truth.trace
    half = trace.times_s < trace.times_s[-1] / 2
    cut = dataclasses.replace(trace, times_s=trace.times_s[half], current_a=trace.current_a[half])
    result = calibrate(cut, truth.events, profile, offset_s=truth.offset_s)
    assert np.isnan(result.alignment_score) and result.offset_s == truth.offset_s
    assert 0 < result.bursts_outside < 30 and len(result.windows) + result.bursts_outside == 30


def test_operations_the_log_never_exercises_are_reported_not_guessed():
    profile = PowerProfile.of("esp32-devkitc")
    truth = {op: cost * TRUTH_OVER_PROFILE[op] for op, cost in profile.costs_uj().items()}
    truth[ledger.VALVE] = 1e-9  # a board whose valve never moved: drop it from the log too
    bench_ = synthesize(profile, truth, seed=1)
    keep = [i for i, op in enumerate(bench_.events.operations) if op != ledger.VALVE]
    events = EventLog(bench_.events.times_s[keep], tuple(bench_.events.operations[i] for i in keep),
                      bench_.events.counts[keep], "no-valve.csv")
    result = calibrate(bench_.trace, events, profile)
    assert result.unexercised == (ledger.VALVE,) and ledger.VALVE not in result.fitted_uj
    assert result.costs_uj()[ledger.VALVE] == profile.costs_uj()[ledger.VALVE]
    for op, fitted in result.fitted_uj.items():
        assert fitted == pytest.approx(truth[op], rel=0.05), op


def test_operations_always_logged_together_are_refused_by_name():
    profile, truth = bench()
    events = truth.events
    times, operations, counts = [], [], []
    for time_s, op, count in zip(events.times_s, events.operations, events.counts):
        if op in (ledger.MAC_CHECK, ledger.SIGNATURE_VERIFY):
            continue
        times.append(time_s)
        operations.append(op)
        counts.append(count)
        if op == ledger.WAKE:  # every wake followed by one MAC check and one verify, in this log
            times += [time_s, time_s]
            operations += [ledger.MAC_CHECK, ledger.SIGNATURE_VERIFY]
            counts += [1, 1]
    together = EventLog(np.array(times), tuple(operations), np.array(counts), "together.csv")
    with pytest.raises(CalibrationError) as error:
        calibrate(truth.trace, together, profile, offset_s=truth.offset_s)
    message = str(error.value)
    assert "cannot tell apart wake, mac_check, signature_verify" in message
    assert "radio" not in message and "valve" not in message


def test_a_log_from_another_capture_does_not_line_up():
    profile, truth = bench()
    _, other = bench(seed=9)
    flat = dataclasses.replace(truth.trace, current_a=np.full(truth.trace.samples, 0.0038)
                               + np.random.default_rng(0).normal(0, 50e-6, truth.trace.samples))
    with pytest.raises(CalibrationError, match="do not line up"):
        calibrate(flat, other.events, profile)
    short = dataclasses.replace(truth.trace, times_s=truth.trace.times_s[:3000], current_a=truth.trace.current_a[:3000])
    with pytest.raises(CalibrationError, match=r"too few to fit"):
        calibrate(short, truth.events, profile, offset_s=truth.offset_s)


@pytest.mark.parametrize("text, message", [
    ("time,op,count\n", "line 1: the header must be time_s,operation,count"),
    ("time_s,operation,count\n1.0,reboot,1\n", "line 2: unknown operation 'reboot'"),
    ("time_s,operation,count\n1.0,wake,one\n", "line 2: count 'one' is not a whole number above zero"),
    ("time_s,operation,count\n1.0,wake,0\n", "count '0'"),
    ("time_s,operation,count\nsoon,wake,1\n", "line 2: time_s 'soon' is not a number"),
    ("time_s,operation,count\n2,wake,1\n1,wake,1\n", "line 3: time goes back: 1 after 2"),
    ("time_s,operation,count\n2,wake\n", "line 2: 2 fields, expected 3"),
    ("time_s,operation,count\n\n", "no events after the header"),
])
def test_event_log_errors_are_specific(tmp_path, text, message):
    path = tmp_path / "events.csv"
    path.write_text(text)
    with pytest.raises(EventLogError, match=message):
        read_events(path)
    assert path.read_text() == text
