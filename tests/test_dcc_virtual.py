"""The DCC and the CSP with meters on virtual boards, end to end: a supplier's read, tariff, disconnect and
reconnect; a DNO whose read works and whose tariff stops at the DCC, and at the meter when forced past
it; and the CSP's own limits."""
import time

import pytest

from meterfw import authorisation, der, der_decode, esme, esme_host, gbcs, gbcs_host, pipeline, roles
from meterlab.boards.virtual import VirtualBoard
from meterlab.client import BoardClient
from meterlab.commission import commission
from meterlab.csp import Csp
from meterlab.dcc.service import REFUSED, ROUTED, Dcc, command_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual
PASSPHRASE = "dcc virtual"
READ, TARIFF = authorisation.READ_IMPORT_REGISTERS, authorisation.TARIFF
CONNECT, DISCONNECT = authorisation.SUPPLY_CONNECT, authorisation.SUPPLY_DISCONNECT


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    home = tmp_path_factory.mktemp("dcc-virtual")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    supplier = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    dno = Party.create(smki, "DNO", roles.NETWORK_OPERATOR, bytes.fromhex("90b3d51f30020000"), PASSPHRASE)
    device_ca = smki.create_device_ca("site", 2, shares)
    # A Pico and an ESP32 DevKitC. The consent test uses the DevKitC on purpose: a grant loads the
    # certificate reader beside everything else, and the DevKitC's 108 KiB heap is the tightest we have.
    # The Pico's load bank draws 36 kW (10 Wh a second), so its registers move while a test watches.
    boards = [VirtualBoard(home / f"meter{n}", board=name, log=open(home / f"meter{n}.log", "w"), home=True,
                           load_watts=watts)
              for n, name, watts in ((1, "rp2040", 36_000), (2, "esp32", None))]
    dcc = csp = None
    try:
        endpoints = {}
        csp = Csp(endpoints, max_online=1, max_per_second=50)
        dcc = Dcc(home / "dcc", smki, PASSPHRASE, csp)
        for board in boards:
            board.start()
            with BoardConnection(board.url, timeout=30.0) as connection:
                record = commission(BoardClient(connection), smki, device_ca, parties, dcc.register, "esme",
                                    progress=lambda *_: None)
            csp.endpoints[record["eui64"]] = board.url
        meters = list(csp.endpoints)
        for meter in meters:
            assert dcc.change_supplier(meter, supplier).status == ROUTED
            assert dcc.install_by_recovery(meter, dno, roles.NETWORK_OPERATOR).status == ROUTED
        yield {"dcc": dcc, "csp": csp, "meters": meters, "supplier": supplier, "dno": dno, "boards": boards}
    finally:
        if csp is not None:
            csp.close()
        if dcc is not None:
            dcc.close()
        for board in boards:
            board.kill()


def test_supplier_commands_end_to_end(system):
    # The board's own state changes: its registers, its tariff, its relay pin; every answer checked here.
    dcc, supplier, meter = system["dcc"], system["supplier"], system["meters"][0]
    board = system["boards"][0]
    device = dcc.register.device(meter)
    z = supplier.keys.exchange("meter-ka", commands.device_keys(device)[2])

    def submit(code, payload=der.EMPTY):
        result = dcc.submit(command_request(supplier, meter, code, payload))
        assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), (code, result)
        response = gbcs.parse(result.response)
        assert response.message_code == code and response.originator == meter
        if authorisation.needs_signature(code):
            assert gbcs.verify_signature(response, commands.device_keys(device)[1])
            assert response.payload == der.encode([0])  # done
        return response

    def read(months=1):
        # MAC'd to the supplier and its content encrypted to it: the DCC carried ciphertext
        response = submit(READ, esme_host.read(months))
        assert gbcs.verify_mac(response, z)
        return esme_host.parse_read(gbcs_host.decrypt_content(z, response))

    def relay():
        return board.gpio()["supply_relay"]

    first = read()
    assert first.supply and relay() == 1 and first.tariff == [(0, 25_000)]
    assert len(first.days) == 31 and first.days[-1] is not None and first.days[:-2] == [None] * 29
    time.sleep(1.5)
    second = read()
    assert second.import_wh >= first.import_wh + 10  # the board's load bank draws 10 Wh a second
    assert second.balance < first.balance <= 0 and second.days[-1] >= first.days[-1] + 10
    new_tariff = [(0, 12_000), (32, 35_000)]
    submit(TARIFF, esme_host.tariff(new_tariff))
    assert read().tariff == new_tariff
    submit(DISCONNECT)
    off = read()
    assert not off.supply and relay() == 0
    time.sleep(1.5)
    assert read().import_wh == off.import_wh  # no current flows through an open load switch
    submit(CONNECT)
    assert read().supply and relay() == 1
    # a bad tariff is refused at the meter, and changes nothing there
    forced = dcc.submit(command_request(supplier, meter, TARIFF, b"\x01\x05\x00\x00\x00\x01"))
    assert (forced.status, forced.reason) == (ROUTED, pipeline.REJECT_BAD_PAYLOAD)
    assert read().tariff == new_tariff


def test_dno_reads_but_cannot_set_a_tariff(system):
    dcc, dno, meter = system["dcc"], system["dno"], system["meters"][1]
    assert dcc.submit(command_request(dno, meter, READ, der.EMPTY)).reason == pipeline.ACCEPT
    refused = dcc.submit(command_request(dno, meter, TARIFF, b"t"))
    assert refused.status == REFUSED and "network operator may not send 0x0019" in refused.detail
    # forced past the DCC (the ACB's MAC added by whoever compromised it): the meter refuses too
    forced = commands.build_command(dno, dcc.register.device(meter), TARIFF, b"t", dcc.acb)
    with BoardConnection(system["csp"].endpoints[meter], timeout=30.0) as connection:
        assert BoardClient(connection).gbcs(forced) == (pipeline.REJECT_NOT_AUTHORISED, None)


def test_csp_limits_meters_online_and_frames_per_second(system):
    dcc, csp, supplier = system["dcc"], system["csp"], system["supplier"]
    for meter in system["meters"] * 2:
        assert dcc.submit(command_request(supplier, meter, READ, der.EMPTY)).status == ROUTED
    assert csp.peak_online == 1  # one meter online at a time: each call took the other's place
    meter = system["meters"][0]
    csp.max_per_second = 3
    try:
        results = [dcc.submit(command_request(supplier, meter, READ, der.EMPTY)) for _ in range(8)]
    finally:
        csp.max_per_second = 50
    refused = [r for r in results if r.status == REFUSED]
    assert refused and all("frames a second" in r.detail for r in refused)
    assert 1 <= len([r for r in results if r.status == ROUTED]) <= 3  # at most 3 in any second


def test_csp_reconnects_when_a_board_link_drops(system):
    dcc, csp, supplier = system["dcc"], system["csp"], system["supplier"]
    meter = system["meters"][0]
    assert dcc.submit(command_request(supplier, meter, READ, der.EMPTY)).reason == pipeline.ACCEPT
    # someone else opens the board's port: the CSP's connection is dropped by the board
    with BoardConnection(csp.endpoints[meter], timeout=30.0) as connection:
        BoardClient(connection).ping()
    assert dcc.submit(command_request(supplier, meter, READ, der.EMPTY)).reason == pipeline.ACCEPT


def test_third_party_reads_only_with_the_consent_granted_at_the_meter(system):
    import time

    from meterlab.client import BoardRefused
    from meterlab.smki.parties import Party

    dcc, meter = system["dcc"], system["meters"][1]
    board = system["boards"][1]
    third = Party.create(dcc.smki, "ENERGY APP", roles.OTHER, bytes.fromhex("90b3d51f30070000"), PASSPHRASE)
    dcc.users[third.eui64] = third  # a DCC user from now on
    no_consent = dcc.submit(command_request(third, meter, READ, der.encode([3])))
    assert (no_consent.status, no_consent.reason) == (ROUTED, pipeline.REJECT_UNKNOWN_ORIGINATOR)
    organisation = dcc.smki.certificate("organisation-ca")
    certificates = (organisation, third.certificate("meter-ds"), third.certificate("meter-ka"))
    in_an_hour = int(time.time()) + 3600
    # nobody on the WAN side can grant one: the meter's serial port (the CSP's way in) does not serve it
    system["csp"].close()
    with BoardConnection(board.url, timeout=30.0) as connection:
        with pytest.raises(BoardRefused, match="unknown request kind"):
            BoardClient(connection).consent_grant(3, in_an_hour, *certificates)
    with BoardConnection(board.home_url, timeout=30.0) as home:
        consumer = BoardClient(home)
        assert consumer.ping().role == "esme"
        supplier = system["supplier"]
        with pytest.raises(BoardRefused, match="wrong role in the DS certificate"):
            consumer.consent_grant(3, in_an_hour, organisation, supplier.certificate("meter-ds"),
                                   supplier.certificate("meter-ka"))
        with pytest.raises(BoardRefused, match="1 to 13 months"):
            consumer.consent_grant(14, in_an_hour, *certificates)
        with pytest.raises(BoardRefused, match="unknown request kind"):
            consumer.gbcs(b"\xdd\x00")  # and the in-home port carries no commands
        assert consumer.consent_grant(3, in_an_hour, *certificates) == third.eui64
        assert consumer.consents() == [(third.eui64, 3, in_an_hour, 0)]

    result = dcc.submit(command_request(third, meter, READ, der.encode([3])))
    assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT)
    response = gbcs.parse(result.response)
    device = dcc.register.device(meter)
    z = third.keys.exchange("meter-ka", commands.device_keys(device)[2])
    assert gbcs.verify_mac(response, z)
    reading = esme_host.parse_read(gbcs_host.decrypt_content(z, response))
    # three months of daily totals (its consent's scope), energy only: no supply, balance or tariff
    assert len(reading.days) == esme.window_days(reading.time // esme.DAY_S, 3) and reading.import_wh >= 0
    assert (reading.supply, reading.balance, reading.tariff) == (None, None, None)
    # what the DCC carried back was ciphertext and tag only; the ACB's Z does not open it
    assert der_decode.octets(response.payload)[:-gbcs.MAC_SIZE] != gbcs_host.decrypt_content(z, response)  # ciphertext
    assert len(der_decode.octets(response.payload)) == len(gbcs_host.decrypt_content(z, response)) + gbcs.MAC_SIZE
    acb_z = dcc.acb.keys.exchange("meter-ka", commands.device_keys(device)[2])
    with pytest.raises(ValueError):
        gbcs_host.decrypt_content(acb_z, response)
    assert dcc.submit(command_request(third, meter, READ, der.encode([4]))).reason == pipeline.REJECT_CONSENT_SCOPE
    # a day's half-hours within the three months, and none from before them
    assert dcc.submit(command_request(third, meter, READ, esme_host.read(3, 80))).reason == pipeline.ACCEPT
    beyond = dcc.submit(command_request(third, meter, READ, esme_host.read(3, 93)))
    assert beyond.reason == pipeline.REJECT_BAD_PAYLOAD
    refused = dcc.submit(command_request(third, meter, TARIFF, b"t"))
    assert refused.status == REFUSED and "other may not send 0x0019" in refused.detail

    system["csp"].close()
    with BoardConnection(board.home_url, timeout=30.0) as home:
        consumer = BoardClient(home)
        consumer.consent_grant(3, int(time.time()) - 1, *certificates)  # renewed, already expired
    assert dcc.submit(command_request(third, meter, READ, der.encode([1]))).reason == pipeline.REJECT_NO_CONSENT
    system["csp"].close()
    with BoardConnection(board.home_url, timeout=30.0) as home:
        BoardClient(home).consent_revoke(third.eui64)
        assert BoardClient(home).consents() == []
    assert dcc.submit(command_request(third, meter, READ, der.encode([1]))).reason == pipeline.REJECT_UNKNOWN_ORIGINATOR
