"""Properties of meterfw.framing under CPython: what the framing guarantees, for any input hypothesis finds."""

import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterfw import framing

# Bytes that the escaping rules treat specially, drawn often so that examples exercise them.
SPECIAL_BYTES = [framing.END, framing.ESC, framing.ESC_END, framing.ESC_ESC, framing.INTERRUPT, framing.ESC_INTERRUPT]

wire_bytes = st.one_of(st.sampled_from(SPECIAL_BYTES), st.integers(0, 255))
payloads = st.one_of(
    st.binary(min_size=1, max_size=framing.MAX_PAYLOAD),
    st.lists(wire_bytes, min_size=1, max_size=300).map(bytes),
)
noise = st.one_of(st.binary(max_size=200), st.lists(wire_bytes, max_size=200).map(bytes))


def decode_in_chunks(data, cuts, max_payload=framing.MAX_PAYLOAD):
    decoder = framing.FrameDecoder(max_payload)
    result = []
    start = 0
    for cut in sorted(cuts) + [len(data)]:
        result += decoder.feed(data[start:cut])
        start = cut
    return result, decoder


def counters(decoder):
    return (decoder.frames, decoder.crc_errors, decoder.escape_errors, decoder.oversize, decoder.runts)


def fresh_decode(data):
    return framing.FrameDecoder().feed(data)


@st.composite
def data_and_cuts(draw, data_strategy):
    data = draw(data_strategy)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=20))
    return data, cuts


@given(st.binary(max_size=3000))
def test_crc32_portable_equals_zlib(data):
    assert framing.crc32_portable(data) == zlib.crc32(data)


@given(st.lists(payloads, min_size=1, max_size=5), st.data())
def test_any_payloads_round_trip_through_any_chunking(sent, data):
    stream = b"".join(framing.encode(payload) for payload in sent)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    received, decoder = decode_in_chunks(stream, cuts)
    assert received == sent
    assert counters(decoder) == (len(sent), 0, 0, 0, 0)


@given(payloads)
def test_encoded_frames_have_ends_only_at_their_edges_and_no_interrupt(payload):
    frame = framing.encode(payload)
    assert frame[0] == framing.END and frame[-1] == framing.END
    assert framing.END not in frame[1:-1]
    assert framing.INTERRUPT not in frame
    assert len(frame) <= 2 * (len(payload) + framing.CRC_SIZE) + 2


@given(data_and_cuts(st.binary(max_size=4000)))
def test_chunking_never_changes_the_result(data_with_cuts):
    data, cuts = data_with_cuts
    whole, whole_decoder = decode_in_chunks(data, [])
    chunked, chunked_decoder = decode_in_chunks(data, cuts)
    assert chunked == whole
    assert counters(chunked_decoder) == counters(whole_decoder)


@given(st.one_of(st.binary(max_size=4000), st.lists(wire_bytes, max_size=4000).map(bytes)))
def test_arbitrary_bytes_never_raise_and_every_candidate_is_counted_once(data):
    received, decoder = decode_in_chunks(data, [])
    # A payload comes out only if its whole escaped frame, correct CRC included, was in the input.
    for payload in received:
        assert framing.encode(payload)[1:] in data
    terminated_candidates = [part for part in data.split(b"\xc0")[:-1] if part]
    assert sum(counters(decoder)) == len(terminated_candidates)
    assert decoder.frames == len(received)


# What the design guarantees about noise between frames. Each frame starts with its own END, which closes
# whatever candidate the noise before it left open, and ends with an END, after which the decoder is in
# the same state as a new one. So the stream  noise_0 frame_1 noise_1 ... frame_n noise_n  decodes to
#     fresh(noise_0 + END), p_1, fresh(noise_1 + END), p_2, ..., p_n, fresh(noise_n)
# where fresh(x) is what a new decoder makes of x alone. Every sent payload comes out, in order, whatever
# the noise holds (END, ESC, Ctrl-C, a half frame); the only extra payloads are valid frames the noise
# itself contains, which no decoder could tell from real ones (hence the noise that embeds whole frames).
noise_with_frames = st.one_of(
    noise,
    st.tuples(noise, payloads, noise).map(lambda parts: parts[0] + framing.encode(parts[1]) + parts[2]),
)


@given(st.lists(st.tuples(noise_with_frames, payloads), max_size=8), noise_with_frames, st.data())
def test_noise_between_frames_never_costs_a_frame(noise_and_payloads, trailing_noise, data):
    stream = b""
    expected = []
    for noise_before, payload in noise_and_payloads:
        stream += noise_before + framing.encode(payload)
        expected += fresh_decode(noise_before + b"\xc0") + [payload]
    stream += trailing_noise
    expected += fresh_decode(trailing_noise)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    received, _ = decode_in_chunks(stream, cuts)
    assert received == expected


# One corrupted byte inside a frame loses that frame (CRC-32 catches every error up to 32 bits long;
# the escaping makes some corruptions change the length, caught with probability 1 - 2**-32) and
# never the frame after it, which starts with its own END.
@given(payloads, payloads, st.data())
def test_corrupted_frame_is_dropped_and_the_next_survives(first, second, data):
    frame = bytearray(framing.encode(first))
    position = data.draw(st.integers(1, len(frame) - 2))
    replacement = data.draw(wire_bytes.filter(lambda byte: byte != frame[position]))
    frame[position] = replacement
    received, _ = decode_in_chunks(bytes(frame) + framing.encode(second), [])
    assert received == [second]


@settings(max_examples=20)
@given(st.integers(1, 64), st.integers(1, 4000))
def test_oversize_frames_are_dropped_and_the_next_recovered(max_payload, extra):
    too_big = bytes(max_payload + extra)
    stream = framing.encode(too_big, len(too_big)) + framing.encode(b"\x01" * max_payload, max_payload)
    received, decoder = decode_in_chunks(stream, [], max_payload)
    assert received == [b"\x01" * max_payload]
    assert counters(decoder) == (1, 0, 0, 1, 0)


def test_oversize_candidate_does_not_grow_memory():
    noise_without_end = bytes(range(0x40, 0x80)) * (1 << 14)  # 1 MiB, never an END
    decoder = framing.FrameDecoder(64)
    tracemalloc.start()
    try:
        decoder.feed(noise_without_end)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4096
    assert decoder.feed(framing.encode(b"after", 64)) == [b"after"]
    assert decoder.oversize == 1


def test_encode_refuses_what_the_decoder_would_drop():
    for size in (0, framing.MAX_PAYLOAD + 1):
        with pytest.raises(ValueError, match="1 to %d bytes, not %d" % (framing.MAX_PAYLOAD, size)):
            framing.encode(bytes(size))
