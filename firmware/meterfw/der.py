"""The encoding of every GBCS payload meterlab sends (design.md, "The wire": one encoding per value,
bounded lengths): a small, strict subset of ASN.1 DER (X.690).

    SEQUENCE        a list or tuple            30 len items...
    INTEGER         an int (signed)            02 len two's complement, minimal
    BOOLEAN         True or False              01 01 FF / 00
    OCTET STRING    bytes, bytearray, memory   04 len bytes

    der.encode([0, True, b"\\x01", [1, 2]])   # the payload: always a SEQUENCE at the top
    der.decode(payload)                       # -> [0, True, b"\\x01", [1, 2]]; ValueError otherwise

Why DER rather than packed bytes: GBCS itself carries its non-DLMS, non-ZigBee payloads in DER, so the
GBCS dissector in Wireshark hands ours to its ASN.1 decoder and shows every field, where packed bytes
were flagged malformed; any ASN.1 tool reads a captured payload; and DER is canonical by construction.
The cost is two bytes of tag and length a field. Bulk series (a day's 48 half-hours, months of daily
totals) stay packed in one OCTET STRING each: a list of 400 ints would cost a meter far more RAM.

The decoder is meterfw.der_decode, a module of its own because a device that only answers (a gas meter,
a hub) never loads it: on the smallest board every kilobyte of bytecode is heap. It accepts exactly what
encode() produces and nothing else, so every value has one encoding.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


# Kept small on purpose: every byte of this module's bytecode is heap on the smallest board (design.md,
# "Boards and links"), and every device loads it.
BOOLEAN = const(0x01)
INTEGER = const(0x02)
EMPTY = b"\x30\x00"  # the payload of a command that carries nothing
MAX_DEPTH = const(3)  # a payload, a list in it, a pair in that (a tariff's blocks)
OCTET_STRING = const(0x04)
SEQUENCE = const(0x30)


def _header(tag, size):
    if size < 0x80:
        return bytes((tag, size))
    if size < 0x100:
        return bytes((tag, 0x81, size))
    if size < 0x10000:  # two length bytes: far above any frame a link carries
        return bytes((tag, 0x82, size >> 8, size & 0xFF))
    raise ValueError("DER value too long")


def _encode(value, out, depth):
    # Appends headers and values to out, joined once by encode(): a 13-month read's kilobyte of daily
    # totals is copied once, not once a nesting level.
    if value is True or value is False:
        out.append(b"\x01\x01\xff" if value else b"\x01\x01\x00")
    elif isinstance(value, int):
        size = 1  # MicroPython ints have no bit_length(): widen until the value fits, two's complement
        while not -(1 << (8 * size - 1)) <= value < 1 << (8 * size - 1):
            size += 1
        out.append(_header(INTEGER, size))
        out.append((value % (1 << (8 * size))).to_bytes(size, "big"))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out.append(_header(OCTET_STRING, len(value)))
        out.append(value if isinstance(value, bytes) else bytes(value))  # MicroPython joins bytes only
    elif isinstance(value, (list, tuple)) and depth < MAX_DEPTH:
        at = len(out)
        out.append(None)  # the header, once the size of what follows is known
        for item in value:
            _encode(item, out, depth + 1)
        out[at] = _header(SEQUENCE, sum(len(part) for part in out[at + 1:]))
    else:
        raise ValueError("no DER encoding for this value, or nested too deep")


def encode(values):
    """The DER SEQUENCE of values (a list or tuple of ints, bools, bytes and lists); ValueError for
    anything else, or nested deeper than MAX_DEPTH."""
    if not isinstance(values, (list, tuple)):
        raise ValueError("a payload is a SEQUENCE")
    out = []
    _encode(values, out, 0)
    return b"".join(out)


def octet_string(*parts):
    """The parts, joined, as one DER OCTET STRING (the form of encrypted content: meterfw.gbcs)."""
    return b"".join((_header(OCTET_STRING, sum(len(part) for part in parts)),) + parts)
