# meterfw.der and meterfw.der_decode, the encoding of every GBCS payload: exact bytes for known values, round trips, and every
# non-canonical or foreign form refused with ValueError. Runs under pytest and on MicroPython; the
# cross-check against an independent DER library and the property tests are tests/test_der_properties.py.
from meterfw import der, der_decode
from mpcheck import raised

KNOWN = (
    ([], "3000"),
    ([0], "3003020100"),
    ([127, 128, 255, 256], "300f" "02017f" "02020080" "020200ff" "02020100"),
    ([-1, -128, -129], "300a" "0201ff" "020180" "0202ff7f"),
    ([1 << 64], "300b020901" + "00" * 8),
    ([True, False], "30060101ff010100"),
    ([b"", b"\xab"], "3005" "0400" "0401ab"),
    ([[0, 25_000]], "3009" "3007" "020100" "020261a8"),
)


def test_known_values_have_these_bytes_and_read_back():
    for values, text in KNOWN:
        data = bytes.fromhex(text)
        assert der.encode(values) == data, values
        assert der_decode.decode(data) == values, text


def test_lengths_take_the_fewest_bytes():
    for size, head in ((127, "047f"), (128, "048180"), (255, "0481ff"), (256, "04820100"), (1000, "048203e8")):
        data = der.encode([bytes(size)])
        start = 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F)  # past the SEQUENCE's own header
        assert data[start:start + len(head) // 2] == bytes.fromhex(head), size
        assert der_decode.decode(data) == [bytes(size)]


def test_tuples_and_memory_encode_as_lists_and_bytes():
    assert der.encode((1, (2,), bytearray(b"x"), memoryview(b"y"))) == der.encode([1, [2], b"x", b"y"])


def test_what_has_no_encoding_is_refused():
    for values in (5, b"\x30\x00", "text", ["text"], [None], [1.5], [{}], [[[[1]]]]):
        raised(ValueError, der.encode, values)
    raised(ValueError, der.encode, [bytes(0x10000)])


def test_non_canonical_and_foreign_forms_are_refused():
    bad = (
        "", "30", "3001", "300100", "3000" "00",            # truncated, beyond its container, trailing
        "0201" "00", "0400",                                # not a SEQUENCE at the top
        "3080" "0000",                                      # indefinite length
        "308100", "30820003020100", "3081020000",          # long form where short does, or too long
        "3002" "0200",                                      # empty INTEGER
        "3004" "02020001", "3004" "0202ffff",               # INTEGERs with a redundant leading byte
        "3003" "010101", "3004" "01020000",                # BOOLEAN not FF / 00, not one byte
        "3002" "0500", "3003" "0c0161", "3003" "a00100",    # NULL, UTF8String, context tag: not ours
        "3008" "3006" "3004" "30023000",                   # four SEQUENCEs deep
        "3003" "020300",                                   # an INTEGER longer than its container
    )
    for text in bad:
        raised(ValueError, der_decode.decode, bytes.fromhex(text))


def test_check_holds_a_payload_to_its_shape():
    values = der_decode.decode(der.encode([7, True, b"ab", [1]]))
    assert der_decode.check(values, int, bool, bytes, list) == [7, True, b"ab", [1]]
    for kinds in ((int, bool, bytes), (int, bool, bytes, list, int), (bool, bool, bytes, list),
                  (int, int, bytes, list), (int, bool, list, list)):
        raised(ValueError, der_decode.check, values, *kinds)
    raised(ValueError, der_decode.check, 5, int)  # not a decoded SEQUENCE
    raised(ValueError, der_decode.check, [1], bool)  # an INTEGER is not a BOOLEAN
    assert der_decode.check([]) == []


def test_an_octet_string_wraps_and_unwraps():
    for size in (0, 12, 200, 300):
        data = bytes(range(256)) * 2
        wrapped = der.octet_string(data[:size])
        assert der_decode.octets(wrapped) == data[:size]
    for text in ("", "04", "0401", "040100" "00", "3000", "048100"):
        raised(ValueError, der_decode.octets, bytes.fromhex(text))


def test_the_empty_payload_is_an_empty_sequence():
    assert der.EMPTY == der.encode([]) and der_decode.decode(der.EMPTY) == []
