"""The HAN messages of a battery gas meter and its hub's GPF (design.md, "Gas: GSME, CHF and GPF"),
carried in meterfw.han's fragments like COMMAND and RESULT. Kept apart from meterfw.han so an electricity
meter, which never polls, does not hold them in RAM. Sans-I/O.

The gas meter's radio is off while it sleeps; it wakes on its schedule and polls its hub's GPF
(meterfw.gpf), which holds what was sent to it meanwhile:

    POLL     0x50 || mirror (13)                                  meter to hub: awake, here is my data
    QUEUED   0x31 || ticket (4) || a GBCS frame                   hub to meter: the oldest frame waiting
    DONE     0xD0 || ticket (4) || reason (1) || mirror (13) || response     meter to hub: its answer,
                                                                  and the next poll
    IDLE     0x32                                                 hub to meter: nothing waits; sleep

The meter answers POLL's answer with DONE, and DONE's with DONE, until IDLE, or until the hub is silent
(it sleeps and tries at its next wake). A QUEUED frame repeated after a lost DONE gets the meter's kept
answer, not a second run (meterfw.gsme's answer_queued).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


class HanError(ValueError):
    """Not a message of the sleeping meter's exchange (meterfw.han's own is for its fragments; this module
    stands alone so a gas meter without a radio loads neither)."""


POLL = const(0x50)
QUEUED = const(0x31)
DONE = const(0xD0)
IDLE = const(0x32)
_MIRROR = const(13)  # meterfw.gsme.MIRROR_SIZE (not imported: a hub does not load the gas meter)


def poll(mirror):
    return bytes((POLL,)) + bytes(mirror)


def queued(ticket, frame):
    return bytes((QUEUED,)) + ticket.to_bytes(4, "big") + bytes(frame)


def done(ticket, reason, mirror, response):
    return (bytes((DONE,)) + ticket.to_bytes(4, "big") + bytes((reason,)) + bytes(mirror)
            + (bytes(response) if response else b""))


def idle():
    return bytes((IDLE,))


def parse_poll(message):
    """The mirror of a POLL, or (ticket, reason, mirror, response or None) of a DONE; HanError."""
    if message and message[0] == POLL and len(message) == 1 + _MIRROR:
        return bytes(message[1:])
    if message and message[0] == DONE and len(message) >= 6 + _MIRROR:
        return (int.from_bytes(message[1:5], "big"), message[5], bytes(message[6:6 + _MIRROR]),
                bytes(message[6 + _MIRROR:]) or None)
    raise HanError("not a POLL or DONE message")


def parse_queued(message):
    """(ticket, frame) of a QUEUED message, None for IDLE; HanError otherwise."""
    if len(message) == 1 and message[0] == IDLE:
        return None
    if len(message) > 5 and message[0] == QUEUED:
        return int.from_bytes(message[1:5], "big"), bytes(message[5:])
    raise HanError("not a QUEUED or IDLE message")
