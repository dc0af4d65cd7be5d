"""A board's power profile (its description's "power"), and what each of meterfw.ledger's operations
costs on it. Every number carries its source in the description: a datasheet table, a third party's
measurement, or an estimate that says so and waits for a measured trace.

    profile = PowerProfile.of("esp32-devkitc")
    profile.costs_uj()          # {operation: microjoules}, what the board's ledger charges
    profile.sleep_ma(dev_board=False)
"""
from meterfw import ledger
from meterlab.boards.descriptions import BoardDescriptionError, load_board

CURRENTS = ("active", "radio_tx", "radio_rx", "deep_sleep", "dev_board_sleep")
DURATIONS = ("wake", "link_byte", "mac_check", "signature_verify")


class PowerProfile:
    def __init__(self, board, power):
        self.board = board
        self.supply_v = power["supply_v"]
        self.currents_ma = power["currents_ma"]
        self.durations_ms = power["durations_ms"]
        self.valve_mj = power["valve_mj"]
        self.sources = power["sources"]

    @classmethod
    def of(cls, board_name):
        description = load_board(board_name)
        power = description.get("power")
        if not isinstance(power, dict):
            raise BoardDescriptionError(f"{description['board']}: no power profile")
        problems = []
        wanted = [("supply_v", power.get("supply_v")), ("valve_mj", power.get("valve_mj"))]
        wanted += [("currents_ma." + k, (power.get("currents_ma") or {}).get(k)) for k in CURRENTS]
        wanted += [("durations_ms." + k, (power.get("durations_ms") or {}).get(k)) for k in DURATIONS]
        sources = power.get("sources") or {}
        for key, value in wanted:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                problems.append(f"{key} is not a positive number")
            if not str(sources.get(key, "")).strip():
                problems.append(f"{key} has no source")
        if problems:
            raise BoardDescriptionError(f"{description['board']}: power profile: " + "; ".join(problems))
        return cls(description["board"], power)

    def costs_uj(self):
        """What meterfw.ledger charges for each operation on this board, in whole microjoules: the
        board's own computation (meterfw.ledger.costs_from), so host and board agree."""
        return ledger.costs_from({"supply_v": self.supply_v, "currents_ma": self.currents_ma,
                                  "durations_ms": self.durations_ms, "valve_mj": self.valve_mj})

    def sleep_ma(self, dev_board=False):
        """Current asleep: the bare module's deep sleep (a production meter), or the dev board's."""
        return self.currents_ma["dev_board_sleep" if dev_board else "deep_sleep"]
