# What the meter measures on a board with no metrology chip: a household's load, simulated. A dev board has
# no current transformer, so every HAL hands the ESME this, and the energy it books is this load's.
# Deterministic (watts by half-hour of the UTC day), so a lab can predict what a meter will have read:
#   00:00-07:00 300 W, 07:00-09:00 1.2 kW, 09:00-17:00 450 W, 17:00-22:00 1.8 kW, 22:00-24:00 600 W.
# A gas meter burns the same household's energy as gas: natural gas holds about 10.8 kWh a cubic metre,
# so 92.6 litres a kWh (take_litres).
from micropython import const

_MAX_STEP_MS = const(60_000)
_LITRES_PER_KWH_X10 = const(926)  # a stall (or a debugger) longer than this is not energy used
_WATTS = ((0, 300), (14, 1200), (18, 450), (34, 1800), (44, 600))  # (from half-hour, watts)


def watts_at(seconds):
    slot = seconds % 86400 // 1800
    watts = 0
    for start, value in _WATTS:
        if start <= slot:
            watts = value
    return watts


class SimulatedLoad:
    def __init__(self, unix_time, ticks_ms, ticks_diff, steady_watts=None):
        self._unix_time = unix_time
        self._steady = steady_watts  # a load bank's fixed watts instead of the household's day
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self._last = ticks_ms()
        self._micro_wh = 0  # below a mWh, carried
        self._gas_rest = 0  # below a litre, carried (in ten-millionths of a litre)

    def take_mwh(self):
        """Energy (mWh) used since the previous call: the load's watts now, over the ticks elapsed."""
        now = self._ticks_ms()
        elapsed = min(max(self._ticks_diff(now, self._last), 0), _MAX_STEP_MS)
        self._last = now
        # W x ms / 3600 = uWh
        watts = self._steady if self._steady is not None else watts_at(self._unix_time())
        self._micro_wh += watts * elapsed * 1000 // 3600
        mwh = self._micro_wh // 1000
        self._micro_wh -= mwh * 1000
        return mwh

    def take_litres(self):
        """Gas (litres) burnt since the previous call, for a gas meter: the load's energy as gas."""
        litres, self._gas_rest = divmod(self._gas_rest + self.take_mwh() * _LITRES_PER_KWH_X10, 10_000_000)
        return litres
