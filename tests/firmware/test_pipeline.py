# Tests of meterfw.pipeline and meterfw.authorisation that run unchanged under pytest and on MicroPython
# (plain test_* functions, plain asserts). Stores are the in-memory fakes of pipeline_fakes.
from meterfw import authorisation, authorisation_names, gbcs, pipeline, roles
from meterfw.crypto import p256
from mpcheck import flip, pseudo_random_bytes
from pipeline_fakes import (DEVICE, DEVICE_KA, DS_KEYS, OTHER_DEVICE, STRANGER, FakeCounters, command,
                            make_anchors, public)

READ = authorisation.READ_IMPORT_REGISTERS
TARIFF = authorisation.TARIFF
S = roles.SUPPLIER
NO = roles.NETWORK_OPERATOR


def setup(log=None, suite="gbcs"):
    anchors = make_anchors()
    counters = FakeCounters()
    return pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, counters, suite, log=log), anchors, counters


def rejects(p, counters, frame, reason):
    # frame is rejected for reason, counted once, and the counter store is untouched.
    before = counters.snapshot()
    count = p.rejected[reason]
    decision = p.process(frame)
    assert not decision.accepted, decision
    assert decision.reason == reason, (decision, reason)
    assert p.rejected[reason] == count + 1
    assert counters.snapshot() == before
    return decision


def test_mac_only_read_accepted_and_advances_counter():
    p, anchors, counters = setup()
    decision = p.process(command(S, READ, 5))
    assert decision.accepted and decision.reason == pipeline.ACCEPT
    assert decision.role == S and decision.message.message_code == READ
    assert decision.rule[authorisation.SENSITIVE]
    assert counters.counter(S) == 5 and counters.writes == 1
    assert p.process(command(NO, READ, 3)).accepted  # the network operator may read too
    assert counters.counter(NO) == 3 and counters.counter(S) == 5
    assert p.accepted == 2 and sum(p.rejected) == 0


def test_signed_critical_command_accepted():
    p, anchors, counters = setup()
    decision = p.process(command(S, TARIFF, 100, b"tariff", sign=True))
    assert decision.accepted, decision
    assert decision.message.payload == b"tariff"
    assert counters.counter(S) == 100
    assert p.process(command(roles.TRANSITIONAL_COS, authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS, 1,
                             sign=True)).accepted


def test_hmac_suite():
    p, anchors, counters = setup(suite="hmac")
    assert p.process(command(S, READ, 1, suite="hmac")).accepted
    rejects(p, counters, command(S, READ, 2, suite="gbcs"), pipeline.REJECT_BAD_MAC)


def test_wrong_recipient():
    p, anchors, counters = setup()
    rejects(p, counters, command(S, READ, 1, recipient=OTHER_DEVICE), pipeline.REJECT_WRONG_RECIPIENT)
    assert p.ecdh_count == 0  # rejected before any key agreement


def test_bad_mac_before_signature_work():
    p, anchors, counters = setup()
    frame = command(S, TARIFF, 7, sign=True)
    tampered_mac = flip(frame, len(frame) - 1)
    rejects(p, counters, tampered_mac, pipeline.REJECT_BAD_MAC)
    message = gbcs.parse(frame)
    offset = len(frame) - 12 - len(message.apdu) + 1  # the APDU without its DF tag starts here
    payload_at = offset + len(message.signed_part) - 1  # the payload's last byte
    assert frame[payload_at] == message.payload[-1]
    decision = rejects(p, counters, flip(frame, payload_at), pipeline.REJECT_BAD_MAC)
    assert decision.role is None  # rejected before the originator was looked up
    # a forged MAC made with the wrong Z (say, a CSP injecting frames) dies the same way
    rejects(p, counters, command(S, READ, 8, z=pseudo_random_bytes(32, 3)), pipeline.REJECT_BAD_MAC)
    assert p.process(frame).accepted


def test_bad_mac_is_checked_before_signature():
    # A frame with a bad MAC and a bad signature is a bad MAC: the signature is never looked at.
    calls = []
    p, anchors, counters = setup()
    real_verify = p256.verify

    def counting_verify(*args):
        calls.append(1)
        return real_verify(*args)

    pipeline.p256.verify = counting_verify
    try:
        frame = command(S, TARIFF, 9, signature=bytes(64))
        rejects(p, counters, flip(frame, len(frame) - 3), pipeline.REJECT_BAD_MAC)
        assert not calls
        rejects(p, counters, frame, pipeline.REJECT_BAD_SIGNATURE)
        assert len(calls) == 1
    finally:
        pipeline.p256.verify = real_verify


def test_unknown_originator():
    p, anchors, counters = setup()
    rejects(p, counters, command(S, READ, 1, originator=STRANGER), pipeline.REJECT_UNKNOWN_ORIGINATOR)


def test_replay_and_older_counter():
    p, anchors, counters = setup()
    frame = command(S, READ, 10)
    assert p.process(frame).accepted
    rejects(p, counters, frame, pipeline.REJECT_REPLAY)
    rejects(p, counters, command(S, READ, 9), pipeline.REJECT_REPLAY)
    rejects(p, counters, command(S, TARIFF, 4, sign=True), pipeline.REJECT_REPLAY)
    assert p.process(command(S, READ, 11)).accepted
    assert counters.counter(S) == 11


def test_missing_or_bad_signature_on_critical_code():
    p, anchors, counters = setup()
    rejects(p, counters, command(S, TARIFF, 1), pipeline.REJECT_BAD_SIGNATURE)  # unsigned
    rejects(p, counters, command(S, TARIFF, 1, signer=DS_KEYS[NO]), pipeline.REJECT_BAD_SIGNATURE)
    rejects(p, counters, command(S, authorisation.SUPPLY_DISCONNECT, 1, signature=pseudo_random_bytes(64, 5)),
            pipeline.REJECT_BAD_SIGNATURE)
    # a signature over another payload, re-MAC'd by the ACB, still fails
    good = gbcs.parse(command(S, TARIFF, 2, b"one", sign=True))
    rejects(p, counters, command(S, TARIFF, 2, b"two", signature=good.signature), pipeline.REJECT_BAD_SIGNATURE)


def test_network_operator_cannot_set_a_tariff():
    p, anchors, counters = setup()
    # MAC'd, fresh and properly signed by the network operator's own anchor: still not its right
    rejects(p, counters, command(NO, TARIFF, 1, sign=True), pipeline.REJECT_NOT_AUTHORISED)
    rejects(p, counters, command(NO, authorisation.SUPPLY_DISCONNECT, 1, sign=True), pipeline.REJECT_NOT_AUTHORISED)
    # the supplier cannot replace credentials the transitional CoS way
    rejects(p, counters, command(S, authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS, 1, sign=True),
            pipeline.REJECT_NOT_AUTHORISED)


def test_unknown_code():
    p, anchors, counters = setup()
    rejects(p, counters, command(S, 0x7777, 1, sign=True), pipeline.REJECT_UNKNOWN_CODE)


def test_malformed_and_other_shapes():
    p, anchors, counters = setup()
    for seed in range(20):
        rejects(p, counters, pseudo_random_bytes(seed * 7, seed), pipeline.REJECT_MALFORMED)
    rejects(p, counters, None, pipeline.REJECT_MALFORMED)
    rejects(p, counters, "text", pipeline.REJECT_MALFORMED)
    frame = command(S, READ, 1)
    rejects(p, counters, frame[:-1], pipeline.REJECT_MALFORMED)
    rejects(p, counters, frame + b"\x00", pipeline.REJECT_MALFORMED)
    rejects(p, counters, bytes(3000), pipeline.REJECT_TOO_LONG)
    bare = gbcs.parse(frame).apdu
    rejects(p, counters, bare, pipeline.REJECT_NO_MAC)
    response = gbcs.build(gbcs.CRA_RESPONSE, 1, DEVICE, DEVICE, READ, b"", mac=bytes(12))
    rejects(p, counters, response, pipeline.REJECT_NOT_COMMAND)
    assert p.process(memoryview(bytearray(frame))).accepted


def test_no_acb_anchor_and_anchor_change():
    p, anchors, counters = setup()
    frames = [command(S, READ, n) for n in range(1, 6)]
    for frame in frames[:4]:
        assert p.process(frame).accepted
    assert p.ecdh_count == 1  # Z is computed once for the anchor, not per frame
    acb = anchors.anchor(roles.ACCESS_CONTROL_BROKER)
    anchors.remove(roles.ACCESS_CONTROL_BROKER)
    rejects(p, counters, frames[4], pipeline.REJECT_NO_ACB_ANCHOR)
    # a new ACB KA key: the old Z must not be used any more
    new_ka = bytes(31) + b"\x63"
    anchors.install(roles.ACCESS_CONTROL_BROKER, acb[0], acb[1], public(new_ka))
    rejects(p, counters, frames[4], pipeline.REJECT_BAD_MAC)
    assert p.ecdh_count == 2
    z = p256.ecdh(new_ka, public(DEVICE_KA))
    assert p.process(command(S, READ, 5, z=z)).accepted
    assert p.process(command(S, READ, 6, z=z)).accepted
    assert p.ecdh_count == 2
    # an ACB anchor that is not a point on the curve is no anchor
    anchors.install(roles.ACCESS_CONTROL_BROKER, acb[0], acb[1], bytes(64))
    rejects(p, counters, command(S, READ, 7, z=z), pipeline.REJECT_NO_ACB_ANCHOR)


def test_log_callback_and_store_failure():
    seen = []
    p, anchors, counters = setup(log=lambda reason, message: seen.append((reason, message is None)))
    p.process(b"\x00")
    p.process(command(S, READ, 1, recipient=OTHER_DEVICE))
    assert p.process(command(S, READ, 1)).accepted
    assert seen == [(pipeline.REJECT_MALFORMED, True), (pipeline.REJECT_WRONG_RECIPIENT, False)]

    def broken(*args):
        raise OSError("flash")

    counters.advance = broken
    decision = p.process(command(S, READ, 2))
    assert decision.reason == pipeline.REJECT_INTERNAL and counters.counter(S) == 1
    # a logger that raises does not make process() raise
    p.log = broken
    assert p.process(b"").reason == pipeline.REJECT_MALFORMED


def test_anchor_tables_give_the_same_answers():
    anchors = make_anchors()
    counters = FakeCounters()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, counters, anchor_tables=True)
    assert p.process(command(S, TARIFF, 1, sign=True)).accepted
    assert p.process(command(S, authorisation.RESET_BALANCE, 2, sign=True)).accepted
    rejects(p, counters, command(S, TARIFF, 3, signer=DS_KEYS[NO]), pipeline.REJECT_BAD_SIGNATURE)
    assert len(p._tables) == 1


def test_authorisation_table():
    assert authorisation.allowed(S, TARIFF) and not authorisation.allowed(NO, TARIFF)
    assert authorisation.allowed(NO, READ) and authorisation.allowed(S, READ)
    assert not authorisation.needs_signature(READ)
    assert authorisation.needs_signature(0x7777)  # unknown: fail closed
    for code in (0x0019, 0x00B3, 0x004F, 0x0050, 0x0081, 0x0102, 0x0107, 0x0108):
        assert authorisation.needs_signature(code)
        assert not authorisation.allowed(NO, code)
        assert not authorisation.allowed(roles.ACCESS_CONTROL_BROKER, code)
    assert authorisation.allowed(roles.TRANSITIONAL_COS, 0x0107)
    assert authorisation.allowed(roles.RECOVERY, 0x0108)
    rows = authorisation_names.rows()
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    for code, name, names, signed, sensitive, devices in rows:
        assert authorisation.rule(code)[authorisation.SIGNED] == signed
        assert names and devices and all(device in ("esme", "gsme", "chf") for device in devices)
    assert authorisation.rule(0x7777) is None
    assert len(pipeline.REASON_NAMES) == pipeline.REASON_COUNT
