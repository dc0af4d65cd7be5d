"""How each of the ledger's operations shows on a current trace: a rectangular pulse of current above the
sleep current, per unit of its count (a wake, a byte, a check). The board's power profile gives the
current and the duration; a cost that differs from the profile's (a calibrated one, or a synthetic
trace's truth) keeps the current and stretches the duration, since the profile's durations are the
estimates and its currents come from datasheets.

    pulses = operation_pulses(profile)                  # {operation: Pulse}, the profile's costs
    pulses = operation_pulses(profile, {"wake": 46_000}) # a wake that takes longer than the profile says
"""
from dataclasses import dataclass

from meterfw import ledger

VALVE_S = 2.0  # a motorised valve moves for about 2 s (the profile's valve_mj source: 100 mA for 2 s)


@dataclass(frozen=True)
class Pulse:
    current_a: float  # above the sleep current
    duration_s: float  # for a count of one


def operation_pulses(profile, costs_uj=None):
    """{operation: Pulse} on profile's board, with costs_uj (default: the profile's own) per count."""
    currents_ma = profile.currents_ma
    volts = profile.supply_v
    valve_ma = profile.valve_mj / (volts * VALVE_S)
    current_ma = {
        ledger.WAKE: currents_ma["active"],
        ledger.RADIO_TX_BYTE: currents_ma["radio_tx"],
        ledger.RADIO_RX_BYTE: currents_ma["radio_rx"],
        ledger.MAC_CHECK: currents_ma["active"],
        ledger.SIGNATURE_VERIFY: currents_ma["active"],
        ledger.VALVE: valve_ma,
    }
    costs = dict(profile.costs_uj())
    costs.update(costs_uj or {})
    # uJ = mA x V x ms, so the duration a cost takes at the operation's current is uJ / (mA x V) ms
    return {operation: Pulse(current_ma[operation] / 1000, costs[operation] / (current_ma[operation] * volts) / 1000)
            for operation in ledger.OPERATIONS}
