# Tests of meterfw.gbcs that run unchanged under pytest and on MicroPython (a runner calls every test_*
# function): plain functions and asserts, no pytest, no files, no f-strings. Real GBCS data (the 18.4
# worked example and RTDS 4.5.0) is checked under CPython by tests/test_gbcs_rtds.py.
from meterfw import gbcs
from meterfw.crypto import gcm, hmac, p256
from mpcheck import flip, pseudo_random_bytes, raised

SUPPLIER = b"\x90\xb3\xd5\x1f\x30\x01\x00\x00"
DEVICE = b"\x00\xdb\x12\x34\x56\x78\x90\x01"
DATE_TIME = b"\x07\xe8\x03\x1f\x07\x17\x3b\x3b\x00\x00\x00\x00"
Z = pseudo_random_bytes(32, 7)
PRIVATE_KEY = bytes(31) + b"\x2a"


def sample(cra=1, date_time=None, extra=b"", payload=b"\x01\x02\x03\x04\x05", signature=None, mac=None,
           counter=0x0123456789ABCDEF, code=0x00B3):
    originator, recipient = (SUPPLIER, DEVICE) if cra == 1 else (DEVICE, SUPPLIER)
    return gbcs.build(cra, counter, originator, recipient, code, payload, date_time, extra, signature, mac)


def maced(frame, z=Z, suite="gbcs"):
    # The MAC'd frame around a bare APDU, MAC'd with z under suite.
    message = gbcs.parse(frame)
    return gbcs.wrap(message.apdu, gbcs.mac_for(message, z, suite))


def check_fields(message, cra, counter, code, date_time, extra, payload, signature, mac):
    assert message.cra == cra
    assert message.counter == counter
    assert message.message_code == code
    assert message.date_time == date_time
    assert message.other_info_extra == extra
    assert message.payload == payload
    assert message.signature == signature
    assert message.mac == mac
    assert not message.precommand


def test_round_trip_every_shape():
    signature = pseudo_random_bytes(64, 1)
    mac = pseudo_random_bytes(12, 2)
    for cra in (1, 2, 3):
        for date_time in (None, DATE_TIME):
            for extra in (b"", DEVICE, pseudo_random_bytes(200, 3), pseudo_random_bytes(423, 4)):
                for sig in (None, signature):
                    for m in (None, mac):
                        frame = sample(cra, date_time, extra, b"\xaa\xbb", sig, m, 5, 0x0100 + cra)
                        message = gbcs.parse(frame)
                        check_fields(message, cra, 5, 0x0100 + cra, date_time, extra, b"\xaa\xbb", sig, m)
                        assert message.encode() == frame
                        assert frame[0] == (0xDF if m is None else 0xDD)
                        assert message.apdu[0] == 0xDF
                        assert message.apdu[1:1 + len(message.signed_part)] == message.signed_part
                        assert message.signed_part.endswith(b"\xaa\xbb")


def test_round_trip_lengths_and_counters():
    for size in (0, 1, 127, 128, 255, 256, 1000):
        payload = pseudo_random_bytes(size, size + 10)
        frame = sample(payload=payload, mac=bytes(12))
        message = gbcs.parse(frame)
        assert message.payload == payload
        assert message.encode() == frame
    for counter in (0, 1, 0xFF, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF):
        message = gbcs.parse(sample(counter=counter))
        assert message.counter == counter
        assert message.encode() == sample(counter=counter)


def test_layout_matches_the_wire():
    frame = sample(cra=2, counter=0x0102030405060708, code=0x00B3, payload=b"\x55")
    assert frame == (b"\xdf\x09\x02\x01\x02\x03\x04\x05\x06\x07\x08\x08" + DEVICE + b"\x08" + SUPPLIER
                     + b"\x00\x02\x00\xb3\x01\x55\x00")
    mac = pseudo_random_bytes(12, 5)
    wrapped = gbcs.wrap(frame, mac)
    assert wrapped == b"\xdd\x00\x00\x00\x00\x00\x00" + bytes((5 + len(frame) + 12,)) + b"\x11\x00\x00\x00\x00" + frame + mac
    message = gbcs.parse(wrapped)
    assert message.apdu == frame
    assert message.signed_part == frame[1:-1]


def test_every_truncation_raises():
    frames = [sample(3, DATE_TIME, DEVICE, b"\x10" * 130, pseudo_random_bytes(64, 6), pseudo_random_bytes(12, 7)),
              sample(2, None, b"", b"", None, None),
              sample(1, DATE_TIME, pseudo_random_bytes(300, 8), b"\x01", pseudo_random_bytes(64, 9), None)]
    for frame in frames:
        gbcs.parse(frame)
        for cut in range(len(frame)):
            assert isinstance(raised(gbcs.FrameError, gbcs.parse, frame[:cut]), gbcs.FrameError)


def test_trailing_bytes_raise():
    bare = sample(signature=pseudo_random_bytes(64, 10))
    assert raised(gbcs.FrameError, gbcs.parse, bare + b"\x00").reason == "trailing bytes after the signature"
    assert raised(gbcs.FrameError, gbcs.parse, sample() + b"\x01")
    wrapped = sample(mac=bytes(12))
    assert raised(gbcs.FrameError, gbcs.parse, wrapped + b"\x00").reason == "trailing bytes after the MAC"


def test_malformed_fields_raise():
    good = sample(date_time=DATE_TIME)
    assert gbcs.parse(good).date_time == DATE_TIME

    def replaced(index, value):
        changed = bytearray(good)
        changed[index] = value
        return bytes(changed)

    cases = [
        replaced(0, 0xDE),  # frame tag
        replaced(1, 0x08),  # transaction ID length
        replaced(2, 0x00), replaced(2, 0x04),  # CRA
        replaced(11, 0x07), replaced(20, 0x09),  # ID lengths
        replaced(29, 0x0B),  # date-time length
        replaced(42, 0x01),  # other-info too short for a message code
        good[:-1] + b"\x20",  # signature length
        good[:-1] + b"\x40",  # a signature that is not there
    ]
    for frame in cases:
        raised(gbcs.FrameError, gbcs.parse, frame)
    # Non-minimal BER lengths: one encoding per value.
    content_at = 43 + 2
    longer = good[:content_at] + b"\x81" + good[content_at:]
    assert raised(gbcs.FrameError, gbcs.parse, longer).reason == "non-minimal content length"
    longer = good[:content_at] + b"\x82\x00" + good[content_at:]
    assert raised(gbcs.FrameError, gbcs.parse, longer).reason == "non-minimal content length"
    wrapped = sample(mac=bytes(12))
    longer = wrapped[:7] + b"\x81" + wrapped[7:]
    assert raised(gbcs.FrameError, gbcs.parse, longer).reason == "non-minimal MAC header length"
    assert raised(gbcs.FrameError, gbcs.parse, flip(wrapped, 8, 0x20)).reason == "unsupported security header"
    assert raised(gbcs.FrameError, gbcs.parse, flip(wrapped, 3)).reason == "unsupported MAC header"
    for thing in (None, "DF09", 5, [0xDF]):
        assert raised(gbcs.FrameError, gbcs.parse, thing).reason == "frame must be bytes"
    assert raised(gbcs.FrameError, gbcs.parse, b"").reason == "truncated frame tag"
    assert raised(gbcs.FrameError, gbcs.parse, b"\xdf" * (gbcs.MAX_FRAME + 1)).reason == "frame too long"
    assert isinstance(raised(gbcs.FrameError, gbcs.parse, b"\xdd"), ValueError)


def test_mutations_raise_only_frame_error():
    frame = sample(2, DATE_TIME, DEVICE, b"\x81\x82" * 70, pseudo_random_bytes(64, 11), pseudo_random_bytes(12, 12))
    noise = pseudo_random_bytes(600, 13)
    for i in range(200):
        changed = bytearray(frame)
        changed[(noise[i] * 7 + noise[i + 200]) % len(frame)] = noise[i + 400]
        try:
            message = gbcs.parse(bytes(changed))
        except gbcs.FrameError:
            continue
        assert message.encode() == bytes(changed)  # whatever parses is canonical


def test_precommand():
    pre = gbcs.build(1, 9, SUPPLIER, DEVICE, 0x00B3, b"\x01\x02", DATE_TIME, b"", precommand=True)
    assert pre == sample(date_time=DATE_TIME, payload=b"\x01\x02", counter=9)[:-1]
    message = gbcs.parse(pre, precommand=True)
    assert message.precommand and message.signature is None and message.mac is None
    assert message.encode() == pre
    assert message.signed_part == pre[1:]
    assert raised(gbcs.FrameError, gbcs.parse, pre).reason == "truncated signature length"
    raised(gbcs.FrameError, gbcs.parse, pre + b"\x00", True)
    raised(gbcs.FrameError, gbcs.parse, sample(cra=2)[:-1], True)
    raised(gbcs.FrameError, gbcs.parse, sample(mac=bytes(12)), True)
    raised(ValueError, gbcs.build, 2, 9, DEVICE, SUPPLIER, 1, b"", None, b"", None, None, True)


def test_build_rejects_bad_fields():
    good = (1, 1, SUPPLIER, DEVICE, 1, b"")
    raised(ValueError, gbcs.build, 0, 1, SUPPLIER, DEVICE, 1, b"")
    raised(ValueError, gbcs.build, 4, 1, SUPPLIER, DEVICE, 1, b"")
    raised(ValueError, gbcs.build, 1, -1, SUPPLIER, DEVICE, 1, b"")
    raised(ValueError, gbcs.build, 1, 1 << 64, SUPPLIER, DEVICE, 1, b"")
    raised(ValueError, gbcs.build, 1, 1, SUPPLIER[:7], DEVICE, 1, b"")
    raised(ValueError, gbcs.build, 1, 1, SUPPLIER, DEVICE + b"\x00", 1, b"")
    raised(ValueError, gbcs.build, 1, 1, SUPPLIER, DEVICE, 0x10000, b"")
    raised(ValueError, gbcs.build, *(good + (DATE_TIME[:11],)))
    raised(ValueError, gbcs.build, *(good + (None, b"", bytes(63))))
    raised(ValueError, gbcs.build, *(good + (None, b"", None, bytes(16))))
    raised(ValueError, gbcs.wrap, sample(), bytes(11))


def test_mac_suites():
    for suite in ("gbcs", "hmac"):
        other = "hmac" if suite == "gbcs" else "gbcs"
        bare = sample(2, DATE_TIME, DEVICE, b"\x42" * 40, pseudo_random_bytes(64, 14))
        frame = maced(bare, Z, suite)
        message = gbcs.parse(frame)
        assert gbcs.verify_mac(message, Z, suite)
        assert not gbcs.verify_mac(message, Z, other)
        assert not gbcs.verify_mac(message, flip(Z, 0), suite)
        key = gbcs.mac_key(Z, message)
        aad = b"\x11\x00\x00\x00\x00\x00" + message.apdu
        if suite == "gbcs":
            assert message.mac == gcm.gmac(key, message.originator + b"\x00\x00\x00\x00", aad, 12)
        else:
            assert message.mac == hmac.hmac_sha256(key, aad)[:12]
        for position in range(0, len(frame), 7):
            changed = flip(frame, position, 1 << (position % 8))
            try:
                altered = gbcs.parse(changed)
            except gbcs.FrameError:
                continue
            assert not gbcs.verify_mac(altered, Z, suite), position
        assert not gbcs.verify_mac(gbcs.parse(bare), Z, suite)  # no MAC at all
    raised(ValueError, gbcs.verify_mac, gbcs.parse(maced(sample())), Z, "aes")
    raised(ValueError, gbcs.mac_for, gbcs.parse(sample()), Z, "GBCS")


def test_mac_key_binds_every_field():
    base = gbcs.parse(sample(counter=1))
    key = gbcs.mac_key(Z, base)
    assert len(key) == 16
    others = [sample(counter=2), sample(cra=2, counter=1), sample(cra=3, counter=1),
              gbcs.build(1, 1, DEVICE, DEVICE, 0x00B3, b"\x01\x02\x03\x04\x05"),
              gbcs.build(1, 1, SUPPLIER, SUPPLIER, 0x00B3, b"\x01\x02\x03\x04\x05")]
    for frame in others:
        assert gbcs.mac_key(Z, gbcs.parse(frame)) != key
    # The payload, date-time and message code are in the MAC, not the key.
    assert gbcs.mac_key(Z, gbcs.parse(sample(counter=1, payload=b"", date_time=DATE_TIME, code=7))) == key


def test_signature():
    public_key = p256.public_key(PRIVATE_KEY)
    unsigned = gbcs.parse(sample(3, DATE_TIME, DEVICE, b"\x0f" * 50))
    signature = p256.sign(PRIVATE_KEY, unsigned.signed_part)
    frame = maced(sample(3, DATE_TIME, DEVICE, b"\x0f" * 50, signature))
    message = gbcs.parse(frame)
    assert message.signature == signature and message.signed_part == unsigned.signed_part
    assert gbcs.verify_signature(message, public_key)
    payload_at = frame.index(message.payload)
    assert not gbcs.verify_signature(gbcs.parse(flip(frame, payload_at + 17, 0x10)), public_key)
    apdu_at = frame.index(message.apdu)
    assert not gbcs.verify_signature(gbcs.parse(flip(frame, apdu_at + 10)), public_key)  # the counter
    assert not gbcs.verify_signature(gbcs.parse(flip(frame, len(frame) - 13)), public_key)  # the signature
    assert gbcs.verify_signature(gbcs.parse(flip(frame, len(frame) - 1)), public_key)  # the MAC is not signed
    assert not gbcs.verify_signature(message, p256.public_key(bytes(31) + b"\x2b"))
    assert not gbcs.verify_signature(unsigned, public_key)
