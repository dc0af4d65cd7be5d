# Tests of meterfw.framing that run unchanged under pytest and on MicroPython (a runner calls every
# test_* function): plain functions and asserts, no pytest, no hypothesis, no f-strings.
import binascii

from meterfw import framing
from mpcheck import pseudo_random_bytes

END = framing.END

# Payloads at the edges of the escaping rules: every byte value, runs of the three escaped bytes,
# the escape codes themselves, and the largest payload made entirely of bytes that double in size.
EDGE_PAYLOADS = [
    b"\x00",
    b"\xc0",
    b"\xdb",
    b"\x03",
    b"\xdc\xdd\xde",
    b"\xdb\xdc",
    b"\xdb\xdd",
    b"\xdb\xde",
    b"\xc0\xdb\x03" * 50,
    bytes(range(256)),
    bytes(range(255, -1, -1)) * 4,
    b"\xc0" * framing.MAX_PAYLOAD,
    b"\x03" * framing.MAX_PAYLOAD,
]


def decode_all(data, max_payload=framing.MAX_PAYLOAD):
    decoder = framing.FrameDecoder(max_payload)
    return decoder.feed(data), decoder


def counters(decoder):
    return (decoder.frames, decoder.crc_errors, decoder.escape_errors, decoder.oversize, decoder.runts)


def raises_value_error(function, *args):
    try:
        function(*args)
    except ValueError:
        return True
    return False


def test_crc32_portable_matches_the_ieee_check_value():
    assert framing.crc32_portable(b"123456789") == 0xCBF43926
    assert framing.crc32_portable(b"") == 0


def test_crc32_portable_matches_binascii():
    for data in (b"\x00", b"\xff" * 7, bytes(range(256)), pseudo_random_bytes(300, 7)):
        assert framing.crc32_portable(data) == binascii.crc32(data)


def test_edge_payloads_round_trip():
    for payload in EDGE_PAYLOADS:
        payloads, decoder = decode_all(framing.encode(payload))
        assert payloads == [payload], payload[:16]
        assert counters(decoder) == (1, 0, 0, 0, 0)


def test_encoded_frames_hold_no_interrupt_and_end_only_at_their_edges():
    for payload in EDGE_PAYLOADS:
        frame = framing.encode(payload)
        assert frame[0] == END and frame[-1] == END
        assert END not in frame[1:-1]
        assert framing.INTERRUPT not in frame


def test_encoded_frame_layout():
    frame = framing.encode(b"\x01\xc0\xdb\x03")
    crc = binascii.crc32(b"\x01\xc0\xdb\x03")
    crc_bytes = bytes(((crc >> 24) & 0xFF, (crc >> 16) & 0xFF, (crc >> 8) & 0xFF, crc & 0xFF))
    assert b"\xdb" not in crc_bytes and b"\xc0" not in crc_bytes and b"\x03" not in crc_bytes
    assert frame == b"\xc0\x01\xdb\xdc\xdb\xdd\xdb\xde" + crc_bytes + b"\xc0"


def test_worst_case_expansion_is_twice_plus_ends():
    frame = framing.encode(b"\xc0" * framing.MAX_PAYLOAD)
    assert len(frame) <= 2 * (framing.MAX_PAYLOAD + framing.CRC_SIZE) + 2


def test_encode_refuses_empty_and_oversize_payloads():
    assert raises_value_error(framing.encode, b"")
    assert raises_value_error(framing.encode, bytes(framing.MAX_PAYLOAD + 1))
    assert raises_value_error(framing.encode, b"12345", 4)
    assert framing.encode(b"1234", 4)


def test_decoder_accepts_bytearray_and_memoryview():
    frame = framing.encode(b"reading")
    decoder = framing.FrameDecoder()
    assert decoder.feed(bytearray(frame)) == [b"reading"]
    assert decoder.feed(memoryview(frame)) == [b"reading"]


def test_split_at_every_byte_boundary_gives_the_same_frames():
    payloads = [b"\x01", b"tariff\xc0\xdb\x03", bytes(range(256)), b"\xdb" * 40]
    garbage = b"\xdb\x03noise\xc0\xdb"
    stream = garbage + b"".join([framing.encode(p) for p in payloads]) + garbage
    whole, whole_decoder = decode_all(stream)
    assert whole == payloads
    expected_counters = counters(whole_decoder)

    one_byte_decoder = framing.FrameDecoder()
    one_byte = []
    for i in range(len(stream)):
        one_byte.extend(one_byte_decoder.feed(stream[i : i + 1]))
    assert one_byte == payloads
    assert counters(one_byte_decoder) == expected_counters

    for cut in range(len(stream) + 1):
        decoder = framing.FrameDecoder()
        halves = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert halves == payloads, cut
        assert counters(decoder) == expected_counters, cut


def test_frame_completes_only_on_its_last_byte():
    frame = framing.encode(b"credit")
    decoder = framing.FrameDecoder()
    for i in range(len(frame) - 1):
        assert decoder.feed(frame[i : i + 1]) == []
    assert decoder.feed(frame[-1:]) == [b"credit"]


def test_crc_error_drops_that_frame_only():
    frame = bytearray(framing.encode(b"disconnect"))
    frame[3] ^= 0x01  # "s" -> "r": still a plain byte, so only the CRC can notice
    payloads, decoder = decode_all(bytes(frame) + framing.encode(b"connect"))
    assert payloads == [b"connect"]
    assert counters(decoder) == (1, 1, 0, 0, 0)


def test_oversize_candidate_is_dropped_with_bounded_memory():
    decoder = framing.FrameDecoder(16)
    assert decoder.feed(framing.encode(bytes(17), 17)) == []
    assert decoder.oversize == 1
    for _ in range(10):
        assert decoder.feed(b"\x55" * 1024) == []
    assert len(decoder._buffer) == 16 + framing.CRC_SIZE  # the only buffer; it never grows
    assert decoder.feed(framing.encode(bytes(16), 16)) == [bytes(16)]
    assert counters(decoder) == (1, 0, 0, 2, 0)


def test_largest_frame_fits_exactly():
    payload = pseudo_random_bytes(64, 3)
    payloads, decoder = decode_all(framing.encode(payload, 64), 64)
    assert payloads == [payload]


def test_bad_escapes_and_raw_interrupts_drop_the_frame():
    good = framing.encode(b"ok")
    bad_candidates = [
        b"\xc0ab\xdb\x41cdefgh\xc0",  # ESC followed by a byte that is not an escape code
        b"\xc0abcdefgh\xdb\xdb\xc0",  # ESC ESC
        b"\xc0abcdefgh\xdb\xc0",  # ESC right before END
        b"\xc0abc\x03defgh\xc0",  # raw Ctrl-C inside a frame
    ]
    for candidate in bad_candidates:
        payloads, decoder = decode_all(candidate + good)
        assert payloads == [b"ok"], candidate
        assert counters(decoder) == (1, 0, 1, 0, 0), candidate


def test_raw_interrupt_inside_a_valid_frame_is_rejected():
    frame = framing.encode(b"valve close")
    tampered = frame[:4] + b"\x03" + frame[4:]
    payloads, decoder = decode_all(tampered)
    assert payloads == []
    assert decoder.escape_errors == 1


def test_consecutive_ends_are_silent():
    payloads, decoder = decode_all(b"\xc0" * 20 + framing.encode(b"x") + b"\xc0" * 20)
    assert payloads == [b"x"]
    assert counters(decoder) == (1, 0, 0, 0, 0)


def test_runts_are_counted():
    # Four zero bytes would be the frame of an empty payload (CRC-32 of nothing is 0): refused.
    payloads, decoder = decode_all(b"\xc0\x01\xc0\x01\x02\x04\x05\xc0\x00\x00\x00\x00\xc0")
    assert payloads == []
    assert counters(decoder) == (0, 0, 0, 0, 3)


def test_garbage_then_frame_recovers():
    garbage = pseudo_random_bytes(500, 11) + b"\xdb"  # ends mid-escape
    payloads, decoder = decode_all(garbage + framing.encode(b"reading") + framing.encode(b"alert"))
    assert payloads == [b"reading", b"alert"]
    assert decoder.frames == 2


def test_random_bytes_never_raise_and_yield_only_checked_frames():
    for seed in range(1, 6):
        data = pseudo_random_bytes(2000, seed)
        payloads, decoder = decode_all(data)
        for payload in payloads:
            assert framing.encode(payload)[1:] in data
        candidates = [part for part in data.split(b"\xc0")[:-1] if part]
        assert sum(counters(decoder)) == len(candidates)


def test_reset_forgets_the_partial_frame_but_keeps_counters():
    decoder = framing.FrameDecoder()
    decoder.feed(b"\xc0\x01\x02\xc0")
    decoder.feed(framing.encode(b"half")[:-3])
    decoder.reset()
    assert decoder.feed(b"\xc0" + framing.encode(b"next")) == [b"next"]
    assert counters(decoder) == (1, 0, 0, 0, 1)
