"""The gas meter (GSME): its register and valve, what an accepted command does to them, and the copy of
its data the comms hub's GPF keeps (design.md, "Gas: GSME, CHF and GPF"). Sans-I/O: storage, the valve
actuator, the clock and the energy ledger (meterfw.ledger) are passed in.

    meter = GasMeter(storage, valve, clock, ledger)    # valve(open: bool) drives the actuator
    meter.measure(litres)                               # gas that flowed since the last call
    reason, plan = meter.validate(message, role, rule)  # the pipeline's validator
    payload = meter.execute(decision)                   # the endpoint's executor
    meter.mirror()                                      # the GPF's copy: register, valve, when

    next_wake(now)                                      # when its schedule wakes it next

Its wake (meterfw.gsme_poll, loaded for the wake and dropped after) polls the hub's GPF.

It lives on a battery, so its pipeline asks the ledger before each MAC check and signature verify
(meterfw.pipeline's budget=ledger.allow), and closing the valve is charged to the day's reserve, which
only critical work may spend: a flood of reads stops at the reserve, and the valve still closes.

Commands, each with an empty payload (DER `30 00`); answers are the endpoint's (meterfw.der):

    GCS32 0x0081 close the valve (critical)   answer: { status } (1: failed when the day's energy,
                                                reserve included, cannot pay for the valve)
    GCS13a 0x0074 read the register           answer: { status, meter time, register (litres),
                                                valve open (BOOLEAN) }

What it keeps (meterfw.store's record format, written by write, read back, rename):

    gas.0   valve (1) || register (8, litres)
    gas.1   the last queued frame's ticket (4) || its SHA-256's first 8 bytes || reason (1) || response
            (meterfw.gsme_poll): a frame the hub hands again (its DONE was lost) gets this answer

Its day: asleep, radio off, until its schedule (every WAKE_INTERVAL_S of meter time) wakes it; it books
the gas, polls the hub's GPF with its mirror, runs what the hub queued for it (at most
QUEUED_PER_WAKE a wake: the rest waits), and sleeps. Nothing reaches it between wakes, so a flood of
reads at the hub costs its battery nothing; the ledger pays the wake and every byte on the radio.

The register is written every 100 litres (a flash write costs the battery too), so a cut of the power,
a battery change, loses less than that; the valve moves after its state is written, and at start it is
driven to the stored state, so a cut between the two is mended at boot. Gas that flows with the valve
closed is not booked (none does).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import authorisation, der, endpoint, ledger, pipeline, store

FORMAT_GAS = const(0xE7)
_STATE_SIZE = const(9)
_SAVE_EVERY_LITRES = const(100)  # flash writes cost energy too: the register is written every 100 l
MIRROR_SIZE = const(13)  # meter time (4) || register (8) || valve (1)
WAKE_INTERVAL_S = const(1800)
QUEUED_PER_WAKE = const(4)


def next_wake(now, interval=WAKE_INTERVAL_S):
    """The next wake after now (meter time): on the interval's boundaries, so a late wake does not
    shift the schedule."""
    return (now // interval + 1) * interval


class GasMeter:
    def __init__(self, storage, valve, clock, energy):
        self.storage = storage  # its flash folder (meterfw.gsme_poll keeps its last answer there too)
        self._valve = valve
        self._clock = clock
        self.ledger = energy
        self._sequence = 0
        for name in list(storage.names()):
            if name.endswith(store.NEW):
                storage.remove(name)
        data = storage.read("gas.0")
        if data is None:
            self.valve_open = True
            self.register = 0
        else:
            self._sequence, state = store._decode("gas.0", data, FORMAT_GAS, 0, _STATE_SIZE)
            self.valve_open = state[0] == 1
            self.register = int.from_bytes(state[1:9], "big")
        self._unsaved = 0
        valve(self.valve_open)

    def _save(self):
        sequence = (self._sequence + 1) & 0xFFFFFFFF
        payload = (b"\x01" if self.valve_open else b"\x00") + self.register.to_bytes(8, "big")
        store.commit(self.storage, "gas.0", store._encode(FORMAT_GAS, 0, sequence, payload))
        self._sequence = sequence
        self._unsaved = 0

    def measure(self, litres):
        """Book the gas that flowed; none flows through a closed valve."""
        if litres < 0:
            raise ValueError("gas measured cannot be negative")
        if self.valve_open and litres:
            self.register += litres
            self._unsaved += litres
            if self._unsaved >= _SAVE_EVERY_LITRES:
                self._save()

    def mirror(self):
        """What the hub's GPF keeps of this meter, refreshed at each sync."""
        return (self._clock().to_bytes(4, "big") + self.register.to_bytes(8, "big")
                + (b"\x01" if self.valve_open else b"\x00"))

    def validate(self, message, role, rule):
        if not authorisation.runs("gsme", message.message_code):
            return pipeline.REJECT_UNSUPPORTED, None
        if bytes(message.payload) != der.EMPTY:
            return pipeline.REJECT_BAD_PAYLOAD, None
        return pipeline.ACCEPT, None

    def execute(self, decision):
        if decision.message.message_code == authorisation.READ_GAS_REGISTER:
            return endpoint.answer(endpoint.STATUS_OK, self._clock(), self.register, bool(self.valve_open))
        # close the valve: the reserve pays for it, if the day has it
        if not self.ledger.spend(ledger.VALVE, critical=True):
            return endpoint.answer(endpoint.STATUS_FAILED)
        self.valve_open = False
        self._save()  # state first: the valve follows it, now or at the next boot
        self._valve(False)
        return endpoint.answer(endpoint.STATUS_OK)


def default_budget(costs):
    """(allowance, reserve) for a day, in microjoules, from the board's costs: the reserve pays for four
    valve closes (each a MAC check, a verify and the valve); the allowance adds twice a normal day's
    work (48 wakes that each move 200 bytes each way, and 100 commands with 100-byte answers)."""
    reserve = 4 * (costs[ledger.MAC_CHECK] + costs[ledger.SIGNATURE_VERIFY] + costs[ledger.VALVE])
    normal_day = (48 * (costs[ledger.WAKE] + 200 * (costs[ledger.RADIO_TX_BYTE] + costs[ledger.RADIO_RX_BYTE]))
                  + 100 * (costs[ledger.MAC_CHECK] + 100 * costs[ledger.RADIO_TX_BYTE]))
    return reserve + 2 * normal_day, reserve
