"""The battery meter's energy ledger (design.md, "Power budget"; property 9: the gas meter runs 15 years
on its battery). Sans-I/O: the costs come from the board's power profile, the clock is passed in.

Every operation the meter does is charged at its cost (microjoules): waking, each byte on the radio, a
MAC check, a signature verify, moving the valve. Each day (meter time, UTC) has an allowance; its last
part, the reserve, is kept for critical work (a valve close, a tariff: signed commands). Work the meter
must do whatever the day has been like (its scheduled wake and poll) is charged as it happens; anything
else asks first:

    ledger = EnergyLedger(costs, allowance_uj, reserve_uj, clock)
    ledger.charge(WAKE)                                  # done: booked, whatever is left
    if ledger.spend(VERIFY, critical=True): ...          # False: refused (ledger.why says why)

A non-critical request that would dip into the reserve is refused, so a flood of reads or of rejected
frames can spend the day's allowance down to the reserve and no further: the battery's life is bounded
by the allowance, whatever the traffic. A critical one may use the reserve; past the allowance nothing
more is spent that day. The day's figures (spent, refused, per operation) are the ledger's report.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


WAKE = "wake"  # a wake from deep sleep: boot, clock, the poll's set-up
RADIO_TX_BYTE = "radio_tx_byte"
RADIO_RX_BYTE = "radio_rx_byte"
MAC_CHECK = "mac_check"  # ECDH-derived key and GMAC of one command
SIGNATURE_VERIFY = "signature_verify"  # ECDSA P-256 verify of a critical command
VALVE = "valve"  # one valve movement
OPERATIONS = (WAKE, RADIO_TX_BYTE, RADIO_RX_BYTE, MAC_CHECK, SIGNATURE_VERIFY, VALVE)

_DAY_S = const(86400)


def _ceil(value):
    whole = int(value)
    return whole if whole == value else whole + 1


def costs_from(power):
    """{operation: whole microjoules} from a board's power profile (its description's "power", as
    board.json holds it): current (mA) x supply (V) x duration (ms) = microjoules, rounded up so the
    ledger never books less than the board spends (a board's single-precision floats may round a
    microjoule differently from the host's)."""
    volts = power["supply_v"]
    current = power["currents_ma"]
    duration = power["durations_ms"]
    return {
        WAKE: _ceil(current["active"] * volts * duration["wake"]),
        RADIO_TX_BYTE: _ceil(current["radio_tx"] * volts * duration["link_byte"]),
        RADIO_RX_BYTE: _ceil(current["radio_rx"] * volts * duration["link_byte"]),
        MAC_CHECK: _ceil(current["active"] * volts * duration["mac_check"]),
        SIGNATURE_VERIFY: _ceil(current["active"] * volts * duration["signature_verify"]),
        VALVE: _ceil(power["valve_mj"] * 1000),
    }


class EnergyLedger:
    def __init__(self, costs_uj, allowance_uj, reserve_uj, clock):
        for operation in OPERATIONS:
            cost = costs_uj.get(operation)
            if not isinstance(cost, int) or isinstance(cost, bool) or cost < 0:
                raise ValueError("the power profile gives no cost in whole microjoules for " + operation)
        if not 0 <= reserve_uj <= allowance_uj:
            raise ValueError("the reserve is part of the day's allowance")
        self.costs = dict(costs_uj)
        self.allowance = allowance_uj
        self.reserve = reserve_uj
        self._clock = clock
        self.day = clock() // _DAY_S
        self._reset()
        self.why = None  # why the last spend() was refused
        self.events = None  # an event log (meterfw.event_log) while a lab calibrates the power profile

    def _reset(self):
        self.spent = 0
        self.spent_critical = 0
        self.refused = 0
        self.refused_critical = 0
        self.by_operation = {}  # operation -> [count, microjoules]

    def _roll(self):
        day = self._clock() // _DAY_S
        if day != self.day:  # a new day, a new allowance (the clock set back keeps today's)
            if day > self.day:
                self._reset()
            self.day = max(day, self.day)

    def cost(self, operation, count=1):
        return self.costs[operation] * count

    def left(self, critical=False):
        """Microjoules still to spend today: down to the reserve, or (critical) to the allowance."""
        self._roll()
        limit = self.allowance if critical else self.allowance - self.reserve
        return max(0, limit - self.spent)

    def charge(self, operation, count=1, critical=False):
        """Book an operation done (or about to be) whatever the day has left."""
        self._roll()
        uj = self.cost(operation, count)
        self.spent += uj
        if critical:
            self.spent_critical += uj
        entry = self.by_operation.get(operation)
        if entry is None:
            entry = self.by_operation[operation] = [0, 0]
        entry[0] += count
        entry[1] += uj
        if self.events is not None:
            self.events.record(operation, count)

    def spend(self, operation, count=1, critical=False):
        """Book it if the day can afford it (non-critical work: without the reserve); else False."""
        uj = self.cost(operation, count)
        if uj > self.left(critical):
            if critical:
                self.refused_critical += 1
                self.why = "the day's energy allowance is spent, its reserve included"
            else:
                self.refused += 1
                self.why = "the day's energy allowance is spent down to the reserve kept for critical commands"
            return False
        self.charge(operation, count, critical)
        self.why = None
        return True

    def allow(self, operation, critical):
        """One operation if the day can afford it: the pipeline's budget (meterfw.pipeline)."""
        return self.spend(operation, 1, critical)

    def affords(self, operations, critical=False):
        """True if all of [(operation, count)] fit in what is left: to ask before starting work."""
        total = 0
        for operation, count in operations:
            total += self.cost(operation, count)
        return total <= self.left(critical)
