"""A gas meter's wake (meterfw.gsme; design.md, "Gas: GSME, CHF and GPF"): when its schedule wakes it,
and its conversation with the hub's GPF over meterfw.han_poll's messages. Sans-I/O; loaded for a wake and
dropped after it (gas_io), so a sleeping meter's RAM does not hold it.

    cycle = PollCycle(meter, endpoint.handle)        # meter: a meterfw.gsme.GasMeter
    message = cycle.start()                          # POLL: send it to the hub
    message = cycle.answer(hub_message)              # DONE to send next, or None: sleep

A frame is run once: its answer is kept on flash (gas.1, with the ticket and the frame's SHA-256), so a
frame the hub hands again after a lost DONE gets that answer, not a second run or a replay refusal.
A power cut after the frame ran and before its answer is written loses the answer (not the effect): the
frame handed again is refused as the replay it is, and the DCC sees that refusal.
"""
import hashlib

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import gsme, han_poll, ledger, store

# What one wake may hear (meterfw.han's frames, 250 bytes at most): first the hub's answer to its poll,
# whatever the day has left, since a queued valve close must still arrive; then only what the day's
# non-critical allowance can pay; and never more than its queued frames (the largest GBCS frames) and the
# one after. Past either, the radio is off until the next wake.
FIRST_ANSWER_BYTES = const(2250)  # one message of 9 full fragments: the largest QUEUED
MAX_HEARD_A_WAKE = const(11_500)


class WakeRadio:
    """The wake's receiver: hear(n) books n bytes heard and says whether the radio is still on."""

    def __init__(self, energy, first=FIRST_ANSWER_BYTES, most=MAX_HEARD_A_WAKE):
        self._energy = energy
        self._first = first
        self._most = most
        self.heard = 0
        self.off = False  # off for the rest of the wake

    def hear(self, count):
        if self.off or self.heard + count > self._most:
            self.off = True
            return False
        if self.heard + count <= self._first:
            self._energy.charge(ledger.RADIO_RX_BYTE, count)  # the schedule's own: reserve and all
        elif not self._energy.spend(ledger.RADIO_RX_BYTE, count):
            self.off = True  # the rest would eat the reserve kept for critical work
            return False
        self.heard += count
        return True


def answer_queued(meter, ticket, frame, handle):
    """(reason, response) for a frame the hub queued: run once through handle (the endpoint's, which
    returns (decision, response)); handed again under the same ticket, the kept answer."""
    digest = hashlib.sha256(bytes(frame)).digest()[:8]
    key = ticket.to_bytes(4, "big") + digest
    data = meter.storage.read("gas.1")
    try:
        last = store._decode("gas.1", data, gsme.FORMAT_GAS, 1)[1] if data is not None else b""
    except store.StoreCorrupt:
        last = b""  # a damaged kept answer is none: the frame runs, and a replay of it is refused
    if len(last) > 12 and last[:12] == key:
        return last[12], (last[13:] or None)
    decision, response = handle(frame)
    store.commit(meter.storage, "gas.1", store._encode(
        gsme.FORMAT_GAS, 1, 0, key + bytes((decision.reason,)) + (bytes(response) if response else b"")))
    return decision.reason, response


class PollCycle:
    """One wake's conversation with the hub's GPF (meterfw.han_poll). Sans-I/O:

        message = cycle.start()              # POLL: send it to the hub
        message = cycle.answer(hub_message)  # DONE to send next, or None: sleep
    """

    def __init__(self, meter, handle, limit=gsme.QUEUED_PER_WAKE):
        self._meter = meter
        self._handle = handle
        self._limit = limit
        self.ran = 0  # queued frames answered this wake

    def start(self):
        return han_poll.poll(self._meter.mirror())

    def answer(self, message):
        try:
            queued = han_poll.parse_queued(message)
        except han_poll.HanError:
            return None  # not the hub's answer: sleep, and poll again at the next wake
        if queued is None or self.ran >= self._limit:
            return None
        ticket, frame = queued
        reason, response = answer_queued(self._meter, ticket, frame, self._handle)
        self.ran += 1
        return han_poll.done(ticket, reason, self._meter.mirror(), response)
