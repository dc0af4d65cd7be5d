"""A battery gas meter's day in energy (design.md, "Power budget"; property 9), from its board's costs
(meterfw.ledger, PowerProfile.costs_uj) and the way it works (meterfw.gsme, meterfw.han_poll): asleep,
awake WAKES_A_DAY times to poll its hub's GPF, running what was queued for it.

    day = normal_day(costs)                       # microjoules of a normal day's work
    day = worst_day(costs, allowance, thresholds)  # the most a day can cost, whatever the traffic
    project(profile, battery)                      # years for each, production meter and dev board

What the GPF answers (reads of the mirror) never reaches the meter, so a flood of them costs it nothing:
its day is the normal one. The worst day is bounded by the design, not by the attacker: the meter wakes on
its schedule only; each wake takes at most QUEUED_PER_WAKE frames from the hub; the DCC's thresholds
bound the frames of each code a day; and the ledger caps the MAC checks, verifies and valve moves a day
may pay for at the day's allowance. What it cannot refuse is the radio: every frame the hub hands it is
heard before it can be judged, so the worst day adds those bytes to the allowance.
"""
from meterfw import authorisation, authorisation_names, gsme, han, ledger
from meterfw.gsme_poll import MAX_HEARD_A_WAKE

WAKES_A_DAY = 86400 // gsme.WAKE_INTERVAL_S
_POLL_BYTES = han.HEADER + 1 + gsme.MIRROR_SIZE  # one fragment: POLL || mirror
_IDLE_BYTES = han.HEADER + 1
_READ_FRAME = 120  # a GCS13a read as the DCC sends it (MAC'd, no signature)
_READ_ANSWER = 140  # its MAC'd, encrypted answer
_WORST_ANSWER = 300  # a signed answer to a critical command, with its DONE header and mirror


def _air(message_bytes):
    """Bytes on the air for a message of message_bytes: its payload and a header a fragment."""
    fragments = max(1, -(-message_bytes // han.FRAGMENT_DATA))
    return message_bytes + fragments * han.HEADER


def traffic_uj(costs, wakes, tx_bytes, rx_bytes, mac_checks=0, verifies=0, valves=0):
    return (wakes * costs[ledger.WAKE] + tx_bytes * costs[ledger.RADIO_TX_BYTE]
            + rx_bytes * costs[ledger.RADIO_RX_BYTE] + mac_checks * costs[ledger.MAC_CHECK]
            + verifies * costs[ledger.SIGNATURE_VERIFY] + valves * costs[ledger.VALVE])


def normal_day(costs, queued_reads=1, loss=0.1):
    """A normal day: every wake polls and hears IDLE; the supplier's daily read is queued for the meter
    once (its other reads go to the GPF). loss: the share of radio frames sent again."""
    resend = 1 / (1 - loss)
    tx = WAKES_A_DAY * _POLL_BYTES + queued_reads * _air(1 + 4 + 1 + gsme.MIRROR_SIZE + _READ_ANSWER)
    rx = WAKES_A_DAY * _IDLE_BYTES + queued_reads * _air(1 + 4 + _READ_FRAME)
    return traffic_uj(costs, WAKES_A_DAY, tx * resend, rx, mac_checks=queued_reads)


def frames_a_day_at_most(thresholds):
    """The most frames the hub can hand its gas meter in a day: QUEUED_PER_WAKE a wake, and no more than
    the DCC's thresholds route of the codes a gas meter runs (each code's total over all users)."""
    schedule = WAKES_A_DAY * gsme.QUEUED_PER_WAKE
    routed = 0
    for code, *_ in authorisation_names.rows():
        if authorisation.runs("gsme", code):
            routed += thresholds.total.get(code, thresholds.total["default"]) * 86400 / thresholds.window
    return int(min(schedule, routed))


def worst_day(costs, allowance, thresholds, loss=0.1):
    """The most a day can cost: the whole allowance spent (the ledger refuses work beyond it), answers
    sent for the most frames the hub can hand over, and every wake hearing all it may (gsme_poll's
    MAX_HEARD_A_WAKE, which its largest frames and a neighbour's together cannot pass). (The ledger books
    the radio inside the day's spending; adding it on top of the allowance errs on the safe side.)"""
    frames = frames_a_day_at_most(thresholds)
    tx = (WAKES_A_DAY * _POLL_BYTES + frames * _air(_WORST_ANSWER)) / (1 - loss)
    rx = WAKES_A_DAY * MAX_HEARD_A_WAKE
    return allowance + traffic_uj(costs, WAKES_A_DAY, tx, rx), frames


def project(profile, battery, thresholds, flood_reads=10_000, costs=None):
    """The report: each day's microjoules and the battery's life on it, as a production meter (the bare
    module asleep) and as the dev board (its own sleep current). costs: {operation: uJ} in place of the
    profile's (a calibration's, measured on the board)."""
    from meterlab.power.battery import life_years

    costs = profile.costs_uj() if costs is None else costs
    allowance, reserve = gsme.default_budget(costs)
    normal = normal_day(costs)
    worst, frames = worst_day(costs, allowance, thresholds)
    days = {
        "normal": (normal, "48 polls a day, each hearing IDLE, and one read queued for the meter"),
        "gpf_flood": (normal, f"{flood_reads} reads of the gas meter a day, all answered by the hub's GPF "
                              "from its mirror: none reaches the meter"),
        "worst_thresholds_allow": (worst, f"the day's whole allowance spent, and {frames} of the largest frames "
                                          "heard (the most the schedule and the DCC's thresholds let through)"),
    }
    report = {"board": profile.board, "battery": battery.name, "supply_v": profile.supply_v,
              "allowance_uj": allowance, "reserve_uj": reserve, "days": {}}
    for name, (uj, what) in days.items():
        report["days"][name] = {
            "what": what, "uj_a_day": round(uj),
            "production_years": life_years(battery, uj, profile.supply_v, profile.sleep_ma(False)),
            "dev_board_years": life_years(battery, uj, profile.supply_v, profile.sleep_ma(True)),
        }
    report["sleep_ma"] = {"production": profile.sleep_ma(False), "dev_board": profile.sleep_ma(True)}
    report["sleep_sources"] = {"production": profile.sources["currents_ma.deep_sleep"],
                               "dev_board": profile.sources["currents_ma.dev_board_sleep"]}
    return report
