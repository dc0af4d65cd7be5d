# The board protocol: what the host and a board say to each other inside one serial frame
# (meterfw.framing delimits and checks the frames). This module is the board's side: the kinds and
# what a board encodes; meterfw.link_host adds what only the host needs (its requests, the decoders of
# the board's answers), so a board's RAM holds none of it. A payload is kind (1 byte) || body. A request's
# answer has the request's kind with the high bit set; a board that cannot serve a request answers
# ERROR with the request's kind and a reason code. The host imports this module too, so there is one
# encoder/decoder of the protocol.
try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


PING = const(0x01)  # body: nonce (4)
STATUS = const(0x02)  # body: empty
STATUS_REPLY = const(0x82)  # body: accepted (4) || n (1) || n reject counts (4 each, by pipeline reason)
IDENTIFY = const(0x04)  # body: empty
IDENTITY = const(0x84)  # body: state (1) || has RNG (1) || hardware ID (8) [|| device ID (8) || DS key || KA key]
KEYGEN = const(0x05)  # body: device ID (8) || MAC suite (1: 0 gbcs, 1 hmac)
INJECT = const(0x07)  # body: device ID (8) || MAC suite (1) || DS private key (32) || KA private key (32)
KEYS = const(0x85)  # answer to KEYGEN and INJECT: status (1) || DS key (64) || KA key (64), or || reason
COMMISSION = const(0x06)  # body: step (1) || step body (see commission_* below)
COMMISSION_REPLY = const(0x86)  # body: step (1) || status (1) || FINISH: signature (64); refused: reason
CONSENT_GRANT = const(0x50)  # in-home port only: months (1) || expires (4) || CA, DS, KA certificates
CONSENT_REVOKE = const(0x51)  # in-home port only: party ID (8)
CONSENTS = const(0x52)  # in-home port only: body empty
CONSENT_REPLY = const(0xD0)  # status (1) || grant: party ID; list: n x (party ID, months, expires, counter)
REJECTS = const(0x03)  # body: empty
REJECTS_REPLY = const(0x83)  # body: total logged (4) || n (1) || n entries, oldest first (see rejects())
PONG = const(0x81)  # body: nonce (4) || free heap (4) || uptime ms (4) || role, version, board, family
RADIO_SEND = const(0x20)  # body: peer address (6) || data (1..250): transmit on the hub/meter link
RADIO_SENT = const(0xA0)  # body: 1 if the peer acknowledged, else 0
RADIO_RECEIVED = const(0x40)  # board -> host, unsolicited: peer address (6) || data
GBCS = const(0x30)  # body: one GBCS frame for this device's security pipeline
GBCS_RESULT = const(0xB0)  # body: pipeline reason (1, 0 = accepted) || response frame (empty if none)
HAN_GBCS = const(0x31)  # to a hub: meter address (6) || GBCS frame, relayed over the HAN (meterfw.han);
#                          answered by the meter's GBCS_RESULT; to the hub's sleeping gas meter, kept by
#                          its GPF (meterfw.gpf) and answered by HAN_QUEUED
HAN_QUEUED = const(0xB1)  # body: ticket (4): the frame waits for the gas meter's next poll
HAN_COLLECT = const(0x32)  # to a hub: gas meter address (6) || ticket (4); answered by the meter's
#                            GBCS_RESULT once it has polled, else an error (ERR_PENDING, ERR_NO_SUCH_TICKET)
HAN_PAIR = const(0x0A)  # body: address (6): a gas meter's hub, or a hub's gas meter (config.json's han_peer)
HAN_PAIRED = const(0x8A)  # body: empty
LEDGER = const(0x09)  # body: empty; a battery meter's energy ledger for today
LEDGER_REPLY = const(0x89)  # body: day (4) || allowance, reserve, spent, spent critical (4 each, uJ)
#                             || refused, refused critical (4 each) || n (1) || n x (count (4) || uJ (4)),
#                             in meterfw.ledger.OPERATIONS order
ERROR = const(0xFF)  # body: request kind (1) || reason (1)

ERR_UNKNOWN_KIND = const(1)
ERR_MALFORMED = const(2)
ERR_NO_RADIO = const(3)
ERR_TOO_LONG = const(4)
ERR_NOT_COMMISSIONED = const(5)
ERR_STATE_DAMAGED = const(6)
ERR_NOT_A_HUB = const(7)
ERR_HAN_LOST = const(8)
ERR_NO_ANSWER = const(9)
ERR_NO_LEDGER = const(10)
ERR_PENDING = const(11)  # HAN_COLLECT: the gas meter has not polled since; ask again after its next wake
ERR_NO_SUCH_TICKET = const(12)  # HAN_COLLECT: never queued here, or its answer has been pushed out
ERR_QUEUE_FULL = const(13)  # HAN_GBCS: meterfw.gpf.QUEUE_MAX frames already wait for the gas meter
ERR_NOT_GAS = const(14)  # HAN_PAIR: only a gas meter and its hub pair


STEP_ROOT = const(1)  # root public key (64)
STEP_ANCHOR = const(2)  # role (1) || CA certificate || DS certificate || KA certificate, each len (2) || DER
STEP_FINISH = const(3)  # board role (1: index in commissioning.BOARD_ROLES)
STATUS_DONE = const(0)
STATUS_REFUSED = const(1)

ADDRESS_BYTES = const(6)
RADIO_MAX_FRAME = const(250)  # ESP-NOW's limit, kept on every link type
MAX_GBCS_FRAME = const(2047)  # a serial frame's 2048-byte payload less the kind byte


class LinkError(Exception):
    pass


def _u32(value):
    return bytes(((value >> 24) & 0xFF, (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF))


def _read_u32(data, offset):
    return (data[offset] << 24) | (data[offset + 1] << 16) | (data[offset + 2] << 8) | data[offset + 3]


def _text(value):
    encoded = value.encode()
    if len(encoded) > 255:
        raise ValueError("text longer than 255 bytes")
    return bytes((len(encoded),)) + encoded


def pong(nonce, free_heap, uptime_ms, role, version, board, family):
    return (
        bytes((PONG,))
        + _u32(nonce)
        + _u32(free_heap)
        + _u32(uptime_ms & 0xFFFFFFFF)
        + _text(role)
        + _text(version)
        + _text(board)
        + _text(family)
    )


def radio_sent(acknowledged):
    return bytes((RADIO_SENT, 1 if acknowledged else 0))


def radio_received(peer, data):
    return bytes((RADIO_RECEIVED,)) + peer + data


def gbcs_result(reason, response):
    return bytes((GBCS_RESULT, reason)) + (response or b"")


def han_queued(ticket):
    return bytes((HAN_QUEUED,)) + _u32(ticket)


def status(accepted, rejected):
    """rejected: the pipeline's per-reason counts (index = reason code)."""
    return bytes((STATUS_REPLY,)) + _u32(accepted) + bytes((len(rejected),)) + b"".join(_u32(n) for n in rejected)


def ledger(book, operations):
    """LEDGER_REPLY of a meterfw.ledger.EnergyLedger (its day's figures, then each operation's)."""
    book.left()  # a new day starts its figures afresh before they are read
    parts = [bytes((LEDGER_REPLY,)), _u32(book.day), _u32(book.allowance), _u32(book.reserve), _u32(book.spent),
             _u32(book.spent_critical), _u32(book.refused), _u32(book.refused_critical), bytes((len(operations),))]
    for operation in operations:
        count, uj = book.by_operation.get(operation, (0, 0))
        parts.append(_u32(count) + _u32(uj))
    return b"".join(parts)


_NO_ID = b"\xff" * 8


def rejects(total, entries):
    """entries: (reason, originator or None, message code or None, counter or None). Each goes as
    reason (1) || parsed (1) || originator (8) || message code (2) || counter (8)."""
    parts = [bytes((REJECTS_REPLY,)), _u32(total), bytes((len(entries),))]
    for reason, originator, code, counter in entries:
        if originator is None:
            parts.append(bytes((reason, 0)) + _NO_ID + b"\x00\x00" + bytes(8))
        else:
            parts.append(bytes((reason, 1)) + originator + bytes((code >> 8, code & 0xFF)) + counter.to_bytes(8, "big"))
    return b"".join(parts)


def identity(state, has_rng, hardware_id, keys=None):
    """keys: (device ID, DS public key, KA public key), or None for a blank board."""
    body = bytes((IDENTITY, state, 1 if has_rng else 0)) + bytes(hardware_id)
    if keys is not None:
        body += bytes(keys[0]) + bytes(keys[1]) + bytes(keys[2])
    return body


def keys_reply(status, body):
    return bytes((KEYS, status)) + body


def commission_reply(step, status, body):
    return bytes((COMMISSION_REPLY, step, status)) + body


def consent_reply(status, body):
    return bytes((CONSENT_REPLY, status)) + body


def split_length_prefixed(data, count):
    """count length-prefixed byte strings from data, which must hold exactly those; LinkError if not."""
    out = []
    at = 0
    for _ in range(count):
        if at + 2 > len(data):
            raise LinkError("length-prefixed field truncated")
        size = (data[at] << 8) | data[at + 1]
        if at + 2 + size > len(data):
            raise LinkError("length-prefixed field runs past the frame")
        out.append(bytes(data[at + 2:at + 2 + size]))
        at += 2 + size
    if at != len(data):
        raise LinkError("trailing bytes after the fields")
    return out


def error(kind, reason):
    return bytes((ERROR, kind & 0xFF, reason))


