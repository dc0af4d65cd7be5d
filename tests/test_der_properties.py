"""meterfw.der and meterfw.der_decode under CPython, held to an independent DER implementation (asn1crypto) and to its own
promise of one encoding per value.

- Any value the payloads can hold encodes to DER that asn1crypto parses strictly to the same values and
  dumps back to the same bytes; DER asn1crypto builds for such values decodes to them.
- decode() of any bytes either raises ValueError or returns values that encode() turns back into exactly
  those bytes: nothing non-canonical gets through (hypothesis, random and mutated payloads).
"""
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st

from meterfw import der, der_decode

scalars = st.one_of(st.integers(min_value=-(1 << 80), max_value=1 << 80), st.booleans(),
                    st.binary(max_size=300))


def nested(depth):
    if depth == 0:
        return scalars
    return st.one_of(scalars, st.lists(nested(depth - 1), max_size=6))


payloads = st.lists(nested(der.MAX_DEPTH - 1), max_size=8)


def to_asn1crypto(value):
    # asn1crypto's own classes for each value, built without meterfw.der
    if value is True or value is False:
        return core.Boolean(value)
    if isinstance(value, int):
        return core.Integer(value)
    if isinstance(value, bytes):
        return core.OctetString(value)
    sequence = core.Sequence()
    sequence._contents = b"".join(to_asn1crypto(item).dump() for item in value)
    sequence._header = None
    return sequence


def from_asn1crypto(parsed):
    if isinstance(parsed, core.Boolean):
        return parsed.native
    if isinstance(parsed, core.Integer):
        return parsed.native
    if isinstance(parsed, core.OctetString):
        return parsed.native
    assert parsed.tag == 16 and parsed.method == 1, parsed
    items, at = [], 0
    contents = parsed.contents
    while at < len(contents):
        item = core.load(contents[at:], strict=False)
        at += len(item.dump())
        items.append(from_asn1crypto(item))
    return items


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_our_der_is_what_asn1crypto_reads_and_writes(values):
    data = der.encode(values)
    parsed = core.load(data, strict=True)  # strict: no bytes left over
    assert from_asn1crypto(parsed) == values
    assert to_asn1crypto(values).dump(force=True) == data
    assert der_decode.decode(data) == values


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_asn1crypto_der_decodes_to_the_same_values(values):
    assert der_decode.decode(to_asn1crypto(values).dump(force=True)) == values


def canonical_or_refused(data):
    try:
        values = der_decode.decode(data)
    except ValueError:
        return
    assert der.encode(values) == data  # one encoding per value: anything decoded is the only encoding


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_are_canonical_or_refused(data):
    canonical_or_refused(b"\x30" + bytes((len(data),)) + data if len(data) < 0x80 else data)


@settings(max_examples=1000, deadline=None)
@given(payloads, st.data())
def test_mutated_payloads_are_canonical_or_refused(values, data):
    encoded = bytearray(der.encode(values))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(encoded) - 1))
        encoded[at] = data.draw(st.integers(0, 255))
    canonical_or_refused(bytes(encoded))
