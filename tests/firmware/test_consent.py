# meterfw.consent and third parties in the pipeline and responses, under pytest and on MicroPython.
from meterfw import authorisation, der, gbcs, gbcs_host, pipeline, roles, store
from meterfw.consent import MAX_CONSENTS, ConsentStore
from meterfw.crypto import gcm
from meterfw.response import Responder
from mpcheck import raised
from pipeline_fakes import (DEVICE, DEVICE_DS, DEVICE_KA, KA_KEYS, THIRD_PARTY_KA, FakeCounters, command,
                            make_anchors, party_z, public)

TP = b"\x90\xb3\xd5\x1f\x30\x07\x00\x00"  # a third party: no anchor on the meter
TP_DS = bytes(31) + b"\x19"
READ, TARIFF = authorisation.READ_IMPORT_REGISTERS, authorisation.TARIFF
NOW = 1_800_000_000


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def grant(consents, months=13, expires=NOW + 3600):
    return consents.grant(TP, public(TP_DS), public(THIRD_PARTY_KA), months, expires)


def test_grant_renew_revoke_and_reload():
    storage = store.MemoryStorage()
    consents = ConsentStore(storage, Clock())
    assert consents.find(TP) is None
    first = grant(consents, 6)
    assert (first.slot, first.months, first.counter) == (0, 6, 0) and consents.active(first)
    consents.advance(TP, 41)
    raised(ValueError, consents.advance, TP, 41)
    renewed = grant(consents, 13, NOW + 7200)
    assert renewed.slot == 0 and renewed.counter == 41 and renewed.months == 13  # a renewal keeps the counter
    again = ConsentStore(storage, Clock())
    assert again.find(TP).counter == 41 and again.find(TP).expires == NOW + 7200
    assert again.revoke(TP) and not again.revoke(TP) and again.find(TP) is None
    assert ConsentStore(storage, Clock()).consents() == []


def test_bad_grants_change_nothing_and_slots_are_bounded():
    storage = store.MemoryStorage()
    consents = ConsentStore(storage, Clock())
    for months, expires in ((0, NOW + 1), (14, NOW + 1), (3, 0), (3, 1 << 32), (True, NOW + 1)):
        raised(ValueError, consents.grant, TP, public(TP_DS), public(THIRD_PARTY_KA), months, expires)
    raised(ValueError, consents.grant, TP[:7], public(TP_DS), public(THIRD_PARTY_KA), 3, NOW + 1)
    assert storage.names() == []
    for n in range(MAX_CONSENTS):
        consents.grant(bytes(7) + bytes((n,)), public(TP_DS), public(THIRD_PARTY_KA), 1, NOW + 1)
    assert "revoke one first" in str(raised(ValueError, consents.grant, TP, public(TP_DS), public(THIRD_PARTY_KA),
                                            1, NOW + 1))
    assert consents.find(TP) is None


def test_a_third_party_reads_a_gas_register_with_consent_and_no_months():
    p, consents, _ = setup()
    read = command(roles.OTHER, authorisation.READ_GAS_REGISTER, 2, payload=der.EMPTY, originator=TP)
    assert p.process(read).reason == pipeline.REJECT_UNKNOWN_ORIGINATOR
    grant(consents, months=1)
    decision = p.process(command(roles.OTHER, authorisation.READ_GAS_REGISTER, 3, payload=der.EMPTY, originator=TP))
    assert decision.accepted and decision.role == roles.OTHER and decision.consent.months == 1


def setup(clock=None):
    anchors = make_anchors()
    consents = ConsentStore(store.MemoryStorage(), clock or Clock())
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters(), consents=consents)
    return p, consents, Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors)


def read(counter, months=1):
    return command(roles.OTHER, READ, counter, payload=der.encode([months]), originator=TP)


def test_third_party_reads_only_with_consent_and_gets_it_encrypted_to_itself():
    clock = Clock()
    p, consents, responder = setup(clock)
    assert p.process(read(1)).reason == pipeline.REJECT_UNKNOWN_ORIGINATOR
    grant(consents, months=6)
    decision = p.process(read(2, months=6))
    assert decision.accepted and decision.role == roles.OTHER and consents.find(TP).counter == 2
    response = gbcs.parse(responder.respond(decision, b"\x00six months of readings"))
    z = party_z(THIRD_PARTY_KA)
    assert response.recipient == TP and gbcs.verify_mac(response, z)
    assert gbcs_host.decrypt_content(z, response) == b"\x00six months of readings"
    raised(gcm.InvalidTag, gbcs_host.decrypt_content, party_z(KA_KEYS[roles.SUPPLIER]), response)  # not the supplier's
    # its own counter: a replay is refused, and nobody else's counter moved
    assert p.process(read(2)).reason == pipeline.REJECT_REPLAY
    # no further back than granted; nothing but reads
    assert p.process(read(3, months=7)).reason == pipeline.REJECT_CONSENT_SCOPE
    assert p.process(command(roles.OTHER, READ, 3, payload=der.EMPTY, originator=TP)).reason == pipeline.REJECT_CONSENT_SCOPE
    tariff = command(roles.OTHER, TARIFF, 3, signer=TP_DS, originator=TP)
    assert p.process(tariff).reason == pipeline.REJECT_NOT_AUTHORISED
    assert consents.find(TP).counter == 2  # rejects change nothing
    # expiry, then revocation
    clock.now = NOW + 3600
    assert p.process(read(4)).reason == pipeline.REJECT_NO_CONSENT
    clock.now = NOW
    assert p.process(read(4)).accepted
    consents.revoke(TP)
    assert p.process(read(5)).reason == pipeline.REJECT_UNKNOWN_ORIGINATOR


def test_a_pipeline_without_consents_knows_no_third_party():
    anchors = make_anchors()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters())
    assert p.process(read(1)).reason == pipeline.REJECT_UNKNOWN_ORIGINATOR
