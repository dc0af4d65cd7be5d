# The board protocol: what the host and a board say to each other inside one serial frame
# (meterfw.framing delimits and checks the frames). A payload is kind (1 byte) || body. A request's
# answer has the request's kind with the high bit set; a board that cannot serve a request answers
# ERROR with the request's kind and a reason code. The host imports this module too, so there is one
# encoder/decoder of the protocol.
try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


PING = const(0x01)  # body: nonce (4)
PONG = const(0x81)  # body: nonce (4) || free heap (4) || uptime ms (4) || role, version, board, family
RADIO_SEND = const(0x20)  # body: peer address (6) || data (1..250): transmit on the hub/meter link
RADIO_SENT = const(0xA0)  # body: 1 if the peer acknowledged, else 0
RADIO_RECEIVED = const(0x40)  # board -> host, unsolicited: peer address (6) || data
ERROR = const(0xFF)  # body: request kind (1) || reason (1)

ERR_UNKNOWN_KIND = const(1)
ERR_MALFORMED = const(2)
ERR_NO_RADIO = const(3)
ERR_TOO_LONG = const(4)

REASONS = {
    ERR_UNKNOWN_KIND: "unknown request kind",
    ERR_MALFORMED: "malformed request",
    ERR_NO_RADIO: "board has no radio link",
    ERR_TOO_LONG: "radio frame longer than 250 bytes",
}

ADDRESS_BYTES = const(6)
RADIO_MAX_FRAME = const(250)  # ESP-NOW's limit, kept on every link type


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


def ping(nonce):
    return bytes((PING,)) + _u32(nonce)


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


def radio_sent(acknowledged):
    return bytes((RADIO_SENT, 1 if acknowledged else 0))


def radio_received(peer, data):
    return bytes((RADIO_RECEIVED,)) + peer + data


def error(kind, reason):
    return bytes((ERROR, kind & 0xFF, reason))


def describe_error(payload):
    if len(payload) != 3 or payload[0] != ERROR:
        raise LinkError("not an ERROR")
    return "request 0x%02x refused: %s" % (payload[1], REASONS.get(payload[2], "reason %d" % payload[2]))
