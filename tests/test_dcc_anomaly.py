"""Threshold anomaly detection: exact sliding windows, per user and in total, quarantine that holds
until released, bounded memory; thresholds from a file with clear errors."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterlab.dcc.anomaly import DEFAULT_THRESHOLDS, AnomalyDetector, ThresholdError, Thresholds

DISCONNECT, READ = 0x0050, 0x0027


def detector(per_user=3, total=10, window=100):
    return AnomalyDetector(Thresholds({"window_seconds": window, "per_user": {"0x0050": per_user, "default": 1000},
                                       "total": {"0x0050": total, "default": 100000}}))


def test_a_flood_from_one_supplier_stops_at_its_threshold_and_stays_stopped():
    d = detector()
    verdicts = [d.check("A", DISCONNECT, t) for t in range(1000)]
    assert [v.routed for v in verdicts[:3]] == [True, True, True]
    assert not verdicts[3].routed and "A exceeded 3 requests of code 0x0050" in verdicts[3].alarm
    assert all(not v.routed and v.alarm is None for v in verdicts[4:])  # one alarm, the rest quarantined
    # its reads and another supplier's disconnects go on
    assert d.check("A", READ, 1000).routed and d.check("B", DISCONNECT, 1000).routed
    # released: the window is long past, so it routes again
    d.release("A", DISCONNECT)
    assert d.check("A", DISCONNECT, 2000).routed


def test_the_total_across_users_trips_for_everyone():
    d = detector(per_user=3, total=5)
    routed = [d.check(user, DISCONNECT, 1).routed for user in "ABCDEFG"]
    assert routed == [True] * 5 + [False, False]
    assert not d.check("A", DISCONNECT, 2).routed  # quarantined for everyone now
    assert d.check("A", READ, 2).routed
    d.release(code=DISCONNECT)
    assert d.check("H", DISCONNECT, 500).routed


def test_windows_slide():
    d = detector(per_user=2, window=10)
    assert d.check("A", DISCONNECT, 0).routed and d.check("A", DISCONNECT, 5).routed
    assert d.check("A", DISCONNECT, 9).routed is False  # 0 and 5 are both inside (-1, 9]
    d.release("A", DISCONNECT)
    assert d.check("A", DISCONNECT, 10.5).routed  # 0 has left the window (0.5, 10.5]; 5 is inside
    assert d.check("A", DISCONNECT, 11).routed is False  # 5 and 10.5 inside


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("AB"), st.floats(min_value=0, max_value=50)), max_size=60),
       st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=20))
def test_never_more_routed_than_the_limits_in_any_window(requests, per_user, window):
    d = detector(per_user=per_user, total=8, window=window)
    routed = []
    for user, t in sorted(requests, key=lambda r: r[1]):
        if d.check(user, DISCONNECT, t).routed:
            routed.append((user, t))
    for _, t in routed:
        inside = [r for r in routed if t - window < r[1] <= t]
        assert len(inside) <= 8
        for user in "AB":
            assert len([r for r in inside if r[0] == user]) <= per_user
    # memory: never more kept than the limits
    assert all(len(times) <= per_user for times in d._user.values())


def test_thresholds_file_and_errors(tmp_path):
    assert Thresholds().user_limit(DISCONNECT) == DEFAULT_THRESHOLDS["per_user"]["0x0050"]
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"window_seconds": 60, "per_user": {"0x0050": 2, "default": 9},
                                "total": {"default": 99}}))
    loaded = Thresholds.load(path)
    assert (loaded.user_limit(DISCONNECT), loaded.user_limit(READ), loaded.total_limit(DISCONNECT)) == (2, 9, 99)
    for bad, message in (({"window_seconds": 60, "per_user": {"0x0050": 2}, "total": {"default": 1}}, "default"),
                         ({"window_seconds": 0, "per_user": {"default": 1}, "total": {"default": 1}}, "positive"),
                         ({"window_seconds": 1, "per_user": {"default": -1}, "total": {"default": 1}}, "whole"),
                         ({"per_user": {"default": 1}, "total": {"default": 1}}, "window_seconds")):
        with pytest.raises(ThresholdError, match=message):
            Thresholds(bad)
    path.write_text("{not json")
    with pytest.raises(ThresholdError, match="thresholds.json"):
        Thresholds.load(path)
    with pytest.raises(ThresholdError, match="no thresholds file"):
        Thresholds.load(tmp_path / "missing.json")
