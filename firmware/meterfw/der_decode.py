"""The strict decoder of meterlab's payload DER (meterfw.der, which describes the encoding and encodes).

    values = der_decode.decode(payload)          # a list; ValueError for anything encode() did not make
    der_decode.check(values, int, bool, bytes)   # values, if they are exactly these types in this order
    der_decode.octets(content)                   # the bytes of one OCTET STRING (encrypted content)
    der_decode.answer(payload)                   # (status, [fields]) of a device's answer

It accepts exactly what der.encode() produces and nothing else, so every value has one encoding: one-byte
tags of SEQUENCE, INTEGER, BOOLEAN and OCTET STRING only, definite lengths in the fewest bytes (at most
two), minimal INTEGERs, BOOLEAN TRUE as FF, nesting at most der.MAX_DEPTH deep, every length inside its
container, nothing after the top value. It raises ValueError, and nothing else, for any input.

A module of its own so that a device that only answers (a gas meter, a hub) never loads it.
"""
from meterfw.der import BOOLEAN, INTEGER, MAX_DEPTH, OCTET_STRING, SEQUENCE


def _decode(buf, at, end, depth):
    # (value, end of it) of the element at buf[at], which must lie within end
    if at + 2 > end:
        raise ValueError("DER truncated")
    tag = buf[at]
    size = buf[at + 1]
    at += 2
    if size > 0x80:
        count = size - 0x80
        if count > 2 or at + count > end:
            raise ValueError("DER length too long")
        size = buf[at] if count == 1 else buf[at] << 8 | buf[at + 1]
        if size < (0x80 if count == 1 else 0x100):
            raise ValueError("DER length not minimal")
        at += count
    elif size == 0x80:
        raise ValueError("DER length not definite")
    stop = at + size
    if stop > end:
        raise ValueError("DER length beyond its container")
    if tag == INTEGER:
        if not size or size > 1 and (buf[at] == 0 and buf[at + 1] < 0x80 or buf[at] == 0xFF and buf[at + 1] >= 0x80):
            raise ValueError("DER INTEGER empty or not minimal")
        value = int.from_bytes(bytes(buf[at:stop]), "big")
        return value - (1 << (8 * size)) if buf[at] >= 0x80 else value, stop
    if tag == BOOLEAN:
        if size != 1 or buf[at] not in (0, 0xFF):
            raise ValueError("DER BOOLEAN is one byte, 00 or FF")
        return buf[at] == 0xFF, stop
    if tag == OCTET_STRING:
        return bytes(buf[at:stop]), stop
    if tag != SEQUENCE or depth >= MAX_DEPTH:
        raise ValueError("DER type not used in payloads, or nested too deep")
    items = []
    while at < stop:
        item, at = _decode(buf, at, stop, depth + 1)
        items.append(item)
    return items, stop


def _whole(data, kind):
    buf = memoryview(data) if isinstance(data, (bytes, bytearray)) else data
    value, end = _decode(buf, 0, len(buf), 0)
    if end != len(buf) or not isinstance(value, kind):
        raise ValueError("not one DER %s" % ("SEQUENCE" if kind is list else "OCTET STRING"))
    return value


def decode(data):
    """The values of a payload encode() made: a list; ValueError for any other bytes."""
    return _whole(data, list)


def octets(data):
    """The contents of one DER OCTET STRING that is the whole of data; ValueError otherwise."""
    return _whole(data, bytes)


def check(values, *kinds):
    """values (a decoded SEQUENCE: a list) if it holds exactly one value of each of kinds (int, bool,
    bytes or list) in that order, an int never being a bool here; ValueError otherwise."""
    if not isinstance(values, list) or len(values) != len(kinds):
        raise ValueError("payload of the wrong shape")
    for value, kind in zip(values, kinds):
        if (value is True or value is False) != (kind is bool) or not isinstance(value, kind):
            raise ValueError("payload field of the wrong type")
    return values


def answer(payload):
    """(status, [fields]) of a device's answer (meterfw.endpoint.answer); ValueError when it is not one."""
    values = decode(payload)
    if not values:
        raise ValueError("an answer starts with its status")
    check(values[:1], int)
    return values[0], values[1:]
