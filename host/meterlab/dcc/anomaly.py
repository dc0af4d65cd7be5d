"""Threshold anomaly detection (design.md, "DCC, CSP, parties"; property 8). Sans-I/O: the DCC passes
in each request's user, message code and time, and gets a verdict.

Two kinds of limit, each over a sliding window:
    per user and message code   how many of that code one user may send (a handful of disconnects a
                                supplier a day, say)
    per message code, in total  how many all users together may send
Over a limit: an alarm, and the request is quarantined, and so is every later request of the same
kind (that user and code, or that code from anyone when the total tripped) until an authorised release
(AnomalyDetector.release, which the DCC calls only on a signed instruction). A quarantined request is
not counted in the windows: only routed requests are.

Windows are exact: for each key the detector keeps the times of at most `limit` routed requests, so
its memory is bounded by the limits, not by the traffic.
"""
import json
from collections import deque
from pathlib import Path

ROUTE = "route"
QUARANTINE = "quarantine"

DEFAULT_THRESHOLDS = {
    # seconds in the window, then limits by message code (hex, as GBCS writes them) or "default"
    "window_seconds": 86400,
    "per_user": {"0x0050": 5, "0x004F": 5, "0x0081": 5, "0x0019": 50, "default": 10000},
    "total": {"0x0050": 100, "0x004F": 100, "0x0081": 100, "default": 1000000},
}


class ThresholdError(ValueError):
    pass


class Thresholds:
    def __init__(self, config=None):
        config = DEFAULT_THRESHOLDS if config is None else config
        try:
            self.window = float(config["window_seconds"])
            self.per_user = self._limits(config["per_user"])
            self.total = self._limits(config["total"])
        except (KeyError, TypeError, ValueError) as error:
            raise ThresholdError(f"bad anomaly thresholds: {error}") from None
        if self.window <= 0:
            raise ThresholdError("bad anomaly thresholds: window_seconds must be positive")

    @staticmethod
    def _limits(table):
        limits = {}
        for key, value in table.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"limit {key}={value!r} is not a whole number")
            limits["default" if key == "default" else int(key, 16)] = value
        if "default" not in limits:
            raise ValueError("a 'default' limit is required")
        return limits

    @classmethod
    def defaults_with(cls, per_user=None, total=None):
        """The DCC's default thresholds with some codes' limits changed, e.g. per_user={"0x0050": 3}."""
        return cls({**DEFAULT_THRESHOLDS, "per_user": {**DEFAULT_THRESHOLDS["per_user"], **(per_user or {})},
                    "total": {**DEFAULT_THRESHOLDS["total"], **(total or {})}})

    @classmethod
    def load(cls, path):
        try:
            return cls(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ThresholdError(f"no thresholds file {path}") from None
        except ValueError as error:
            raise ThresholdError(f"{path}: {error}") from None

    def user_limit(self, code):
        return self.per_user.get(code, self.per_user["default"])

    def total_limit(self, code):
        return self.total.get(code, self.total["default"])


class Verdict:
    def __init__(self, action, alarm=None):
        self.action = action
        self.alarm = alarm  # text of the alarm this request raised, or None

    @property
    def routed(self):
        return self.action == ROUTE


class AnomalyDetector:
    def __init__(self, thresholds=None):
        self.thresholds = thresholds or Thresholds()
        self._user = {}  # (user, code) -> deque of times of routed requests
        self._total = {}  # code -> deque
        self.quarantined_users = set()  # (user, code)
        self.quarantined_codes = set()  # codes quarantined for everyone

    def _prune(self, times, now):
        horizon = now - self.thresholds.window
        while times and times[0] <= horizon:
            times.popleft()

    def check(self, user, code, now):
        """The verdict for a request of code from user at time now (seconds)."""
        if (user, code) in self.quarantined_users or code in self.quarantined_codes:
            return Verdict(QUARANTINE)
        user_times = self._user.setdefault((user, code), deque())
        total_times = self._total.setdefault(code, deque())
        self._prune(user_times, now)
        self._prune(total_times, now)
        user_limit = self.thresholds.user_limit(code)
        total_limit = self.thresholds.total_limit(code)
        if len(user_times) >= user_limit:
            self.quarantined_users.add((user, code))
            return Verdict(QUARANTINE, f"{user} exceeded {user_limit} requests of code 0x{code:04X} in "
                                       f"{self.thresholds.window:g} s")
        if len(total_times) >= total_limit:
            self.quarantined_codes.add(code)
            return Verdict(QUARANTINE, f"all users together exceeded {total_limit} requests of code "
                                       f"0x{code:04X} in {self.thresholds.window:g} s")
        user_times.append(now)
        total_times.append(now)
        return Verdict(ROUTE)

    def release(self, user=None, code=None):
        """Lift a quarantine (after the signed instruction that authorises it): a user's for code, or
        the total one for code (user None). The windows are kept: a released flood trips again."""
        if user is None:
            self.quarantined_codes.discard(code)
        else:
            self.quarantined_users.discard((user, code))
