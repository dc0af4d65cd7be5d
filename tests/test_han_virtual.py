"""The DCC reaches a meter through its comms hub, over a lossy virtual radio: the CSP hands the frame to
the hub's serial port, the hub relays it over the HAN (meterfw.han: fragments, link acknowledgements,
repeats), and the meter's own pipeline decides. A supplier takes ownership, reads, sets a tariff and
disconnects and reconnects through the hub with 10% of the radio's frames lost; the hub adds and strips
nothing, so a frame injected at the hub without the DCC dies at the meter."""
import asyncio

import pytest

from meterfw import authorisation, der, esme_host, gbcs, gbcs_host, pipeline, roles
from meterlab.boards.radio import RadioClient
from meterlab.boards.virtual import VirtualBoard, VirtualRadio
from meterlab.client import BoardClient, BoardRefused
from meterlab.commission import commission
from meterlab.csp import Csp
from meterlab.dcc.service import ROUTED, Dcc, command_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual
PASSPHRASE = "han"
READ, TARIFF = authorisation.READ_IMPORT_REGISTERS, authorisation.TARIFF
CONNECT, DISCONNECT = authorisation.SUPPLY_CONNECT, authorisation.SUPPLY_DISCONNECT


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("han")
    log = open(home / "boards.log", "w")
    radio = VirtualRadio(log=log, seed=11, loss=0.1, delay_ms="2:15")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    supplier = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    device_ca = smki.create_device_ca("site", 2, shares)
    hub = VirtualBoard(home / "chf", board="esp32", radio=radio.address, log=log)
    meter = VirtualBoard(home / "esme", board="esp32", radio=radio.address, log=log, load_watts=36_000)
    csp = Csp({}, max_online=4, max_per_second=50, timeout=60.0)
    dcc = Dcc(home / "dcc", smki, PASSPHRASE, csp)
    try:
        records = {}
        for board, role in ((hub, "chf"), (meter, "esme")):
            board.start()
            with BoardConnection(board.url, timeout=30.0) as connection:
                records[role] = commission(BoardClient(connection), smki, device_ca, parties, dcc.register, role,
                                           progress=lambda *_: None)
        meter_id = records["esme"]["eui64"]
        csp.endpoints[meter_id] = (hub.url, meter.address)  # the meter only through its hub
        yield {"dcc": dcc, "csp": csp, "hub": hub, "meter": meter, "meter_id": meter_id, "supplier": supplier,
               "radio": radio}
    finally:
        csp.close()
        dcc.close()
        for board in (hub, meter):
            board.kill()
        radio.stop()


def test_a_supplier_works_a_meter_through_its_hub_over_a_lossy_radio(site):
    dcc, supplier, meter_id = site["dcc"], site["supplier"], site["meter_id"]
    assert dcc.change_supplier(meter_id, supplier).status == ROUTED  # a 1.2 KB CS02b: five fragments
    device = dcc.register.device(meter_id)
    z = supplier.keys.exchange("meter-ka", commands.device_keys(device)[2])

    def submit(code, payload=der.EMPTY):
        result = dcc.submit(command_request(supplier, meter_id, code, payload))
        assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), (code, result)
        return gbcs.parse(result.response)

    def read(months=1):
        response = submit(READ, esme_host.read(months))
        assert gbcs.verify_mac(response, z)
        return esme_host.parse_read(gbcs_host.decrypt_content(z, response))

    assert read().supply
    submit(TARIFF, esme_host.tariff([(0, 11_000), (36, 31_000)]))
    submit(DISCONNECT)
    assert site["meter"].gpio() == {"supply_relay": 0}
    thirteen_months = read(13)  # the biggest answer: about 1.2 KB back over the air
    assert not thirteen_months.supply and thirteen_months.tariff == [(0, 11_000), (36, 31_000)]
    assert len(thirteen_months.days) >= 365
    submit(CONNECT)
    assert site["meter"].gpio() == {"supply_relay": 1}
    totals = radio_stats(site["radio"])["totals"]
    assert totals["lost"] > 0 and totals["delivered"] >= 20  # frames were lost, and sent again


def radio_stats(radio):
    async def ask():
        async with await RadioClient.connect(radio.host, radio.port) as control:
            return await control.stats()

    return asyncio.run(ask())


def test_the_hub_adds_nothing_and_only_hubs_relay(site):
    csp, meter_id = site["csp"], site["meter_id"]
    csp.close()  # the boards' ports take one host at a time
    forged = gbcs.wrap(gbcs.build(gbcs.CRA_COMMAND, 1 << 60, site["supplier"].eui64, meter_id,
                                  authorisation.SUPPLY_DISCONNECT, der.EMPTY), bytes(12))
    with BoardConnection(site["hub"].url, timeout=60.0) as connection:
        hub = BoardClient(connection)
        assert hub.han_gbcs(site["meter"].address, forged) == (pipeline.REJECT_BAD_MAC, None)
        with pytest.raises(BoardRefused, match="did not acknowledge"):
            hub.han_gbcs(bytes.fromhex("02aabbccddee"), forged)  # nobody at that address
    with BoardConnection(site["meter"].url, timeout=30.0) as connection:
        with pytest.raises(BoardRefused, match="only a comms hub relays"):
            BoardClient(connection).han_gbcs(site["hub"].address, forged)
    assert site["meter"].gpio() == {"supply_relay": 1}
