# Tests of meterfw.response and gbcs content encryption that run unchanged under pytest and on
# MicroPython: each response is checked the way its recipient checks it, from the party's side of Z.
from meterfw import authorisation, der, der_decode, gbcs, gbcs_host, pipeline, roles
from meterfw.crypto import gcm
from mpcheck import flip
from pipeline_fakes import (DEVICE, DEVICE_DS, DEVICE_KA, KA_KEYS, PARTY_IDS, THIRD_PARTY_KA, FakeCounters,
                            command, make_anchors, party_z, public)
from meterfw.response import Responder

READ = authorisation.READ_IMPORT_REGISTERS
TARIFF = authorisation.TARIFF
S = roles.SUPPLIER
NO = roles.NETWORK_OPERATOR


def setup(suite="gbcs"):
    anchors = make_anchors()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters(), suite)
    return p, Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors, suite)


def raises(exception, function, *args):
    try:
        function(*args)
    except exception:
        return
    assert False, "expected " + exception.__name__


def test_mac_only_read_gets_a_macd_encrypted_response():
    p, responder = setup()
    decision = p.process(command(S, READ, 41))
    assert decision.accepted
    frame = responder.respond(decision, b"\x00reading 12345 Wh")
    response = gbcs.parse(frame)
    assert response.cra == gbcs.CRA_RESPONSE and response.counter == 41
    assert response.originator == DEVICE and response.recipient == PARTY_IDS[S]
    assert response.message_code == READ
    assert response.signature is None and response.mac is not None
    z = party_z(KA_KEYS[S])
    assert gbcs.verify_mac(response, z)
    # the reading is not on the wire in the clear, and only the supplier's Z opens it
    assert b"12345" not in frame
    assert gbcs_host.decrypt_content(z, response) == b"\x00reading 12345 Wh"
    raises(gcm.InvalidTag, gbcs_host.decrypt_content, party_z(KA_KEYS[NO]), response)
    assert not gbcs.verify_mac(response, party_z(KA_KEYS[NO]))


def test_response_goes_to_the_requester_of_each_role():
    p, responder = setup()
    decision = p.process(command(NO, READ, 7))
    response = gbcs.parse(responder.respond(decision, b"\x00data"))
    assert response.recipient == PARTY_IDS[NO]
    assert gbcs.verify_mac(response, party_z(KA_KEYS[NO]))
    assert gbcs_host.decrypt_content(party_z(KA_KEYS[NO]), response) == b"\x00data"


def test_critical_command_gets_a_device_signed_response():
    p, responder = setup()
    decision = p.process(command(S, TARIFF, 9, payload=b"tariff", sign=True))
    assert decision.accepted
    frame = responder.respond(decision, b"\x00")
    response = gbcs.parse(frame)
    assert response.mac is None and response.signature is not None
    assert response.counter == 9 and response.recipient == PARTY_IDS[S] and response.message_code == TARIFF
    assert response.payload == b"\x00"  # not sensitive: in the clear
    assert gbcs.verify_signature(response, public(DEVICE_DS))
    assert not gbcs.verify_signature(response, public(DEVICE_KA))
    # any bit flipped in the signed part breaks the signature (or the parse)
    signed_start = len(frame) - 1 - 64 - len(response.signed_part)
    for bit in range(signed_start * 8, (len(frame) - 65) * 8, 29):
        try:
            tampered = gbcs.parse(flip(frame, bit // 8, 1 << (bit % 8)))
        except gbcs.FrameError:
            continue
        assert not gbcs.verify_signature(tampered, public(DEVICE_DS)), bit


def test_macd_response_bit_flips_fail():
    p, responder = setup()
    frame = responder.respond(p.process(command(S, READ, 3)), b"\x00r")
    z = party_z(KA_KEYS[S])
    for bit in range(0, len(frame) * 8, 7):
        try:
            tampered = gbcs.parse(flip(frame, bit // 8, 1 << (bit % 8)))
        except gbcs.FrameError:
            continue
        assert not gbcs.verify_mac(tampered, z), bit


def test_hmac_suite_response():
    p, responder = setup("hmac")
    response = gbcs.parse(responder.respond(p.process(command(S, READ, 5, suite="hmac")), b"\x00"))
    assert gbcs.verify_mac(response, party_z(KA_KEYS[S]), "hmac")
    assert not gbcs.verify_mac(response, party_z(KA_KEYS[S]), "gbcs")


def test_sensitive_content_to_another_recipient():
    # A third party with consent: the MAC is still the requester's, the content is for the third party.
    p, responder = setup()
    decision = p.process(command(S, READ, 11))
    response = gbcs.parse(responder.respond(decision, b"\x00half-hourly", public(THIRD_PARTY_KA)))
    assert gbcs.verify_mac(response, party_z(KA_KEYS[S]))
    assert gbcs_host.decrypt_content(party_z(THIRD_PARTY_KA), response) == b"\x00half-hourly"
    raises(gcm.InvalidTag, gbcs_host.decrypt_content, party_z(KA_KEYS[S]), response)


def test_rejected_commands_are_not_answered():
    p, responder = setup()
    decision = p.process(command(S, READ, 1, z=party_z(KA_KEYS[S])))  # not the ACB's MAC
    assert decision.reason == pipeline.REJECT_BAD_MAC
    raises(ValueError, responder.respond, decision, b"\x00")


def test_requester_without_anchor_cannot_be_answered():
    anchors = make_anchors()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters())
    responder = Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors)
    decision = p.process(command(S, READ, 2))
    anchors.remove(S)
    raises(ValueError, responder.respond, decision, b"\x00")


def test_z_is_computed_once_per_recipient():
    p, responder = setup()
    for counter in range(1, 4):
        responder.respond(p.process(command(S, READ, counter)), b"\x00")
    assert responder.ecdh_count == 1
    responder.respond(p.process(command(NO, READ, 1)), b"\x00")
    assert responder.ecdh_count == 2


def test_content_key_and_iv_differ_per_message():
    z = party_z(KA_KEYS[S])
    args = (DEVICE, PARTY_IDS[S], READ, b"same plaintext")
    response = gbcs.encrypt_content(z, gbcs.CRA_RESPONSE, 5, *args)
    alert = gbcs.encrypt_content(z, gbcs.CRA_ALERT, 5, *args)  # same counter, other CRA: other IV
    later = gbcs.encrypt_content(z, gbcs.CRA_RESPONSE, 6, *args)  # other counter: other key
    assert len({response, alert, later}) == 3
    assert len(response) == 2 + len(b"same plaintext") + gbcs.MAC_SIZE  # one DER OCTET STRING
    assert der_decode.octets(response) and response[:2] == bytes((der.OCTET_STRING, 14 + gbcs.MAC_SIZE))
    # the content key is the GBCS KDF with CRA 04, never the MAC key
    fields = gbcs.parse(gbcs.build(gbcs.CRA_RESPONSE, 5, DEVICE, PARTY_IDS[S], READ, b""))
    assert gbcs.content_key(z, DEVICE, 5, PARTY_IDS[S]) != gbcs.mac_key(z, fields)


def test_encrypted_content_is_bound_to_its_message():
    z = party_z(KA_KEYS[S])
    content = gbcs.encrypt_content(z, gbcs.CRA_RESPONSE, 5, DEVICE, PARTY_IDS[S], READ, b"secret")
    good = gbcs.parse(gbcs.build(gbcs.CRA_RESPONSE, 5, DEVICE, PARTY_IDS[S], READ, content))
    assert gbcs_host.decrypt_content(z, good) == b"secret"
    for counter, code, cra in ((6, READ, 2), (5, TARIFF, 2), (5, READ, 3)):
        moved = gbcs.parse(gbcs.build(cra, counter, DEVICE, PARTY_IDS[S], code, content))
        raises(gcm.InvalidTag, gbcs_host.decrypt_content, z, moved)
    short = gbcs.parse(gbcs.build(gbcs.CRA_RESPONSE, 5, DEVICE, PARTY_IDS[S], READ, der.octet_string(bytes(11))))
    raises(gcm.InvalidTag, gbcs_host.decrypt_content, z, short)
    bare = gbcs.parse(gbcs.build(gbcs.CRA_RESPONSE, 5, DEVICE, PARTY_IDS[S], READ, der_decode.octets(content)))
    raises(gcm.InvalidTag, gbcs_host.decrypt_content, z, bare)  # the same bytes, not in their OCTET STRING
    raises(ValueError, gbcs.encrypt_content, z, gbcs.CRA_RESPONSE, 5, DEVICE[:7], PARTY_IDS[S], READ, b"")
