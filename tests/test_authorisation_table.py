"""The authorisation table, cell by cell: every role sends every message code we implement (and one we
do not) to a device pipeline, properly MAC'd by the ACB and signed with its own key where the code needs
a signature; the device accepts exactly the cells the table allows. And the docs are the table."""
import pytest

from meterfw import authorisation, authorisation_names, gbcs, roles
from meterfw.crypto import p256
from meterfw.pipeline import ACCEPT, REJECT_NOT_AUTHORISED, REJECT_UNKNOWN_CODE, DevicePipeline
from meterlab import docs
from pipeline_fakes import ACB_KA, DEVICE, DEVICE_KA, FakeAnchors, FakeCounters, acb_z, public

UNIMPLEMENTED_CODE = 0x0001
CODES = [row[0] for row in authorisation_names.rows()] + [UNIMPLEMENTED_CODE]
PARTY = {role: bytes.fromhex("90b3d51f3000%04x" % (0x100 + role)) for role in roles.ALL}
DS = {role: (0x20 + role).to_bytes(32, "big") for role in roles.ALL}


@pytest.fixture(scope="module")
def anchors():
    store = FakeAnchors()
    for role in roles.ALL:
        ka = public(ACB_KA) if role == roles.ACCESS_CONTROL_BROKER else public(DS[role])
        store.install(role, PARTY[role], public(DS[role]), ka)
    return store


def command_from(role, code, counter):
    apdu = gbcs.build(gbcs.CRA_COMMAND, counter, PARTY[role], DEVICE, code, b"\x01")
    if authorisation.needs_signature(code):
        signature = p256.sign(DS[role], gbcs.parse(apdu).signed_part)
        apdu = gbcs.build(gbcs.CRA_COMMAND, counter, PARTY[role], DEVICE, code, b"\x01", signature=signature)
    message = gbcs.parse(apdu)
    return gbcs.wrap(message.apdu, gbcs.mac_for(message, acb_z()))


@pytest.mark.parametrize("code", CODES, ids=lambda code: "0x%04X" % code)
@pytest.mark.parametrize("role", roles.ALL, ids=lambda role: roles.NAMES[role].replace(" ", "_"))
def test_each_cell_is_accepted_exactly_when_the_table_allows_it(anchors, role, code):
    counters = FakeCounters()
    pipeline = DevicePipeline(DEVICE, DEVICE_KA, anchors, counters)
    decision = pipeline.process(command_from(role, code, 7))
    if authorisation.allowed(role, code):
        assert decision.reason == ACCEPT and counters.counter(role) == 7
    else:
        expected = REJECT_UNKNOWN_CODE if authorisation.rule(code) is None else REJECT_NOT_AUTHORISED
        assert decision.reason == expected and counters.counter(role) == 0


def test_every_role_may_send_something_or_nothing_as_the_table_says():
    senders = {role for row in authorisation_names.rows() for role in roles.ALL if roles.NAMES[role] in row[2]}
    assert roles.SUPPLIER in senders and roles.NETWORK_OPERATOR in senders
    assert roles.ACCESS_CONTROL_BROKER not in senders  # the DCC MACs commands; it originates none here


def test_the_committed_docs_are_the_table():
    assert docs.AUTHORISATION_DOC.read_text() == docs.authorisation_markdown(), (
        "docs/authorisation.md is stale: run `python -m meterlab.docs`")


def test_every_command_of_the_table_has_a_name_for_the_docs_and_no_more():
    from meterfw import authorisation_names

    assert sorted(authorisation_names.NAMES) == sorted(code for code in CODES if code != UNIMPLEMENTED_CODE)
    assert all(name.split()[0][:2] in ("CS", "EC", "GC") for name in authorisation_names.NAMES.values())
