# meterfw.ownership's payload and the checks that need no certificates, under pytest and on MicroPython.
# The certificate checks run against SMKI certificates on virtual boards (tests/test_ownership_virtual.py).
from meterfw import authorisation, ownership, pipeline, roles
from meterfw.crypto import p256
from pipeline_fakes import FakeCounters, make_anchors


class Message:
    def __init__(self, code, payload):
        self.message_code = code
        self.payload = payload


def test_payload_round_trip_and_every_malformation():
    payload = ownership.encode_payload(roles.SUPPLIER, 12345, b"ca", b"ds-cert", b"")
    assert ownership.decode_payload(payload) == (roles.SUPPLIER, 12345, b"ca", b"ds-cert", b"")
    for cut in range(len(payload)):
        assert ownership.decode_payload(payload[:cut]) is None
    assert ownership.decode_payload(payload + b"\x00") is None


def test_targets_are_critical_codes_of_the_table():
    for code, targets in ownership.TARGETS.items():
        rule = authorisation.rule(code)
        assert rule is not None and rule[authorisation.SIGNED], hex(code)
        assert roles.ROOT not in targets
    assert ownership.TARGETS[authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS] == (roles.SUPPLIER,)
    # the codes a router loads this module for are exactly these
    assert sorted(authorisation.CREDENTIAL_CODES) == sorted(ownership.TARGETS)
    assert len(ownership.TARGETS[authorisation.CREDENTIALS_ANY_BY_RECOVERY]) == len(roles.ALL) - 1


def test_checks_before_any_certificate_work():
    anchors = make_anchors()
    updater = ownership.CredentialUpdater(anchors, FakeCounters())
    by_transcos = authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS
    assert updater.validate(Message(authorisation.TARIFF, b"x"), roles.SUPPLIER, None) == (pipeline.ACCEPT, None)
    assert updater.validate(Message(by_transcos, b"\x02"), roles.TRANSITIONAL_COS, None) == (
        pipeline.REJECT_BAD_PAYLOAD, None)
    wrong_target = ownership.encode_payload(roles.ACCESS_CONTROL_BROKER, 0, b"", b"", b"")
    assert updater.validate(Message(by_transcos, wrong_target), roles.TRANSITIONAL_COS, None)[0] == \
        pipeline.REJECT_BAD_PAYLOAD
    root = ownership.encode_payload(roles.ROOT, 0, b"", b"", b"")
    assert updater.validate(Message(authorisation.CREDENTIALS_ANY_BY_RECOVERY, root), roles.RECOVERY, None)[0] == \
        pipeline.REJECT_BAD_PAYLOAD
    # no root anchor to check certificates against: nothing can chain
    supplier = ownership.encode_payload(roles.SUPPLIER, 0, b"", b"", b"")
    assert updater.validate(Message(by_transcos, supplier), roles.TRANSITIONAL_COS, None)[0] == \
        pipeline.REJECT_CERTIFICATE_CHAIN
    # with a root anchor, a certificate that is not one
    key = p256.public_key(bytes(31) + b"\x09")
    anchors.install(roles.ROOT, bytes(8), key, key)
    assert updater.validate(Message(by_transcos, supplier), roles.TRANSITIONAL_COS, None)[0] == \
        pipeline.REJECT_CERTIFICATE


def test_a_router_loads_the_updater_for_a_cs02b_only_and_drops_it_after():
    from meterfw.endpoint import CredentialsOnDemand

    on_demand = CredentialsOnDemand(make_anchors(), FakeCounters())
    assert not on_demand.handles(authorisation.TARIFF) and on_demand._updater is None
    assert on_demand.handles(authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS)
    refused = on_demand.validate(Message(authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS, b"\x02"),
                                 roles.TRANSITIONAL_COS, None)
    assert refused == (pipeline.REJECT_BAD_PAYLOAD, None) and on_demand._updater is None  # dropped: no execute
