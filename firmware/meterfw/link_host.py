# The board protocol, host side: everything in meterfw.link, plus the host's requests and the decoders of
# the boards' answers. Kept apart so a board never loads them (its RAM is the scarce thing); the host and
# the firmware's dual-run tests import this, so the protocol still has one codec.
from meterfw.link import *  # noqa: F401,F403
from meterfw.link import _read_u32, _text, _u32  # noqa: F401

REASONS = {
    ERR_UNKNOWN_KIND: "unknown request kind",
    ERR_MALFORMED: "malformed request",
    ERR_NO_RADIO: "board has no radio link",
    ERR_TOO_LONG: "radio frame longer than 250 bytes",
    ERR_NOT_COMMISSIONED: "board is not commissioned (it has no identity)",
    ERR_STATE_DAMAGED: "board's security state in flash is damaged; it refuses every command",
    ERR_NOT_A_HUB: "only a comms hub relays frames to its meters",
    ERR_HAN_LOST: "the meter did not acknowledge the frame over the HAN (out of range, or not listening)",
    ERR_NO_ANSWER: "the meter gave no answer over the HAN in time",
    ERR_NO_LEDGER: "this board keeps no energy ledger (only a battery meter does)",
    ERR_PENDING: "the gas meter has not polled since the frame was queued; ask again after its next wake",
    ERR_NO_SUCH_TICKET: "no such ticket at this hub's GPF (never queued here, or its answer was pushed out)",
    ERR_QUEUE_FULL: "the hub's GPF already holds as many frames as it keeps for its gas meter's next poll",
    ERR_NOT_GAS: "only a gas meter and its comms hub pair over the HAN",
}


class LedgerReport:
    """A LEDGER_REPLY: today's figures, in microjoules, and {operation: (count, uJ)}."""

    def __init__(self, day, allowance, reserve, spent, spent_critical, refused, refused_critical, by_operation):
        self.day = day
        self.allowance = allowance
        self.reserve = reserve
        self.spent = spent
        self.spent_critical = spent_critical
        self.refused = refused
        self.refused_critical = refused_critical
        self.by_operation = by_operation


def parse_ledger(payload, operations):
    if len(payload) < 30 or payload[0] != LEDGER_REPLY:
        raise LinkError("not a LEDGER_REPLY")
    figures = [_read_u32(payload, 1 + 4 * i) for i in range(7)]
    n = payload[29]
    if n != len(operations) or len(payload) != 30 + 8 * n:
        raise LinkError("LEDGER_REPLY's operations do not match")
    by_operation = {operations[i]: (_read_u32(payload, 30 + 8 * i), _read_u32(payload, 34 + 8 * i)) for i in range(n)}
    return LedgerReport(*figures, by_operation)


def ping(nonce):
    return bytes((PING,)) + _u32(nonce)


class Pong:
    def __init__(self, nonce, free_heap, uptime_ms, role, version, board, family):
        self.nonce = nonce
        self.free_heap = free_heap
        self.uptime_ms = uptime_ms
        self.role = role
        self.version = version
        self.board = board
        self.family = family


def parse_pong(payload):
    if len(payload) < 13 or payload[0] != PONG:
        raise LinkError("not a PONG")
    texts = []
    offset = 13
    for _ in range(4):
        if offset >= len(payload):
            raise LinkError("PONG truncated")
        length = payload[offset]
        end = offset + 1 + length
        if end > len(payload):
            raise LinkError("PONG text runs past the frame")
        texts.append(bytes(payload[offset + 1 : end]).decode())
        offset = end
    if offset != len(payload):
        raise LinkError("PONG has trailing bytes")
    return Pong(_read_u32(payload, 1), _read_u32(payload, 5), _read_u32(payload, 9), *texts)


def radio_send(peer, data):
    if len(peer) != ADDRESS_BYTES:
        raise ValueError("a peer address is 6 bytes")
    if not 0 < len(data) <= RADIO_MAX_FRAME:
        raise ValueError("a radio frame carries 1 to 250 bytes")
    return bytes((RADIO_SEND,)) + peer + data


def gbcs(frame):
    if not 0 < len(frame) < MAX_GBCS_FRAME + 1:
        raise ValueError("a GBCS frame on the link is 1 to %d bytes" % MAX_GBCS_FRAME)
    return bytes((GBCS,)) + bytes(frame)


def han_gbcs(peer, frame):
    """To a hub: relay frame to the meter at radio address peer, over the HAN."""
    if len(peer) != ADDRESS_BYTES:
        raise ValueError("a meter's address is 6 bytes")
    return bytes((HAN_GBCS,)) + bytes(peer) + gbcs(frame)[1:]


class Queued:
    """A hub's HAN_QUEUED: the frame waits at its GPF for the gas meter's next poll, under ticket."""

    def __init__(self, ticket):
        self.ticket = ticket

    def __repr__(self):
        return "Queued(%d)" % self.ticket


def parse_han_answer(payload):
    """A hub's answer to HAN_GBCS: (reason, response or None), or Queued."""
    if len(payload) == 5 and payload[0] == HAN_QUEUED:
        return Queued(_read_u32(payload, 1))
    return parse_gbcs_result(payload)


def han_collect(peer, ticket):
    if len(peer) != ADDRESS_BYTES:
        raise ValueError("a meter's address is 6 bytes")
    return bytes((HAN_COLLECT,)) + bytes(peer) + _u32(ticket)


def han_pair(address):
    if len(address) != ADDRESS_BYTES:
        raise ValueError("a radio address is 6 bytes")
    return bytes((HAN_PAIR,)) + bytes(address)


def parse_gbcs_result(payload):
    """(pipeline reason, response frame or None)."""
    if len(payload) < 2 or payload[0] != GBCS_RESULT:
        raise LinkError("not a GBCS_RESULT")
    return payload[1], (bytes(payload[2:]) or None)


def status_request():
    return bytes((STATUS,))


def parse_status(payload):
    """(accepted, tuple of reject counts by reason code)."""
    if len(payload) < 6 or payload[0] != STATUS_REPLY:
        raise LinkError("not a STATUS_REPLY")
    count = payload[5]
    if len(payload) != 6 + 4 * count:
        raise LinkError("STATUS_REPLY length does not match its count")
    return _read_u32(payload, 1), tuple(_read_u32(payload, 6 + 4 * i) for i in range(count))




def parse_rejects(payload):
    """(total logged, [(reason, originator or None, message code or None, counter or None)])."""
    if len(payload) < 6 or payload[0] != REJECTS_REPLY:
        raise LinkError("not a REJECTS_REPLY")
    count = payload[5]
    if len(payload) != 6 + 20 * count:
        raise LinkError("REJECTS_REPLY length does not match its count")
    entries = []
    for i in range(count):
        at = 6 + 20 * i
        if payload[at + 1]:
            entries.append((payload[at], bytes(payload[at + 2:at + 10]), (payload[at + 10] << 8) | payload[at + 11],
                            int.from_bytes(payload[at + 12:at + 20], "big")))
        else:
            entries.append((payload[at], None, None, None))
    return _read_u32(payload, 1), entries


def parse_identity(payload):
    """(state, has RNG, hardware ID, (device ID, DS key, KA key) or None)."""
    if len(payload) not in (11, 147) or payload[0] != IDENTITY:
        raise LinkError("not an IDENTITY")
    keys = None
    if len(payload) == 147:
        keys = (bytes(payload[11:19]), bytes(payload[19:83]), bytes(payload[83:147]))
    return payload[1], payload[2] == 1, bytes(payload[3:11]), keys


def parse_status_reply(payload, kind, step=None):
    """(status, body) of a KEYS, CONSENT_REPLY or COMMISSION_REPLY; a refusal's body is its reason (str)."""
    head = 3 if kind == COMMISSION_REPLY else 2
    if len(payload) < head or payload[0] != kind or (step is not None and payload[1] != step):
        raise LinkError("not the expected commissioning answer")
    status = payload[head - 1]
    body = bytes(payload[head:])
    if status == STATUS_REFUSED:
        return status, body.decode()
    return status, body


def lengths_prefixed(*parts):
    return b"".join(bytes((len(p) >> 8, len(p) & 0xFF)) + bytes(p) for p in parts)


def describe_error(payload):
    if len(payload) != 3 or payload[0] != ERROR:
        raise LinkError("not an ERROR")
    return "request 0x%02x refused: %s" % (payload[1], REASONS.get(payload[2], "reason %d" % payload[2]))
