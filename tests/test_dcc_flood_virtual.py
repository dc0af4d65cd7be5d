"""The compromised supplier, on virtual boards (issue: the DCC's anomaly detection): 1,000 disconnects
to its 20 meters; at most the threshold reach a meter, an alarm is raised, the rest wait in
quarantine and are still there after a DCC restart; another supplier's meters are untouched; and the
same flood injected at the CSP, without the DCC, changes nothing on any meter."""
import pytest

from meterfw import authorisation, der, gbcs, pipeline, roles
from meterlab.boards.virtual import VirtualBoard, start_boards
from meterlab.client import BoardClient
from meterlab.commission import commission
from meterlab.csp import Csp
from meterlab.dcc.anomaly import Thresholds
from meterlab.dcc.service import QUARANTINED, ROUTED, Dcc, command_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual
PASSPHRASE = "flood"
DISCONNECT = authorisation.SUPPLY_DISCONNECT
THRESHOLDS = Thresholds({"window_seconds": 86400, "per_user": {"0x0050": 5, "default": 10000},
                         "total": {"0x0050": 100, "default": 100000}})


def accepted_on_boards(csp, meters):
    # A board's serial port takes one connection at a time, like a real one: the CSP lets go first.
    csp.close()
    counts = {}
    for meter in meters:
        with BoardConnection(csp.endpoints[meter], timeout=30.0) as connection:
            counts[meter] = BoardClient(connection).status()[0]
    return counts


def test_compromised_supplier_flood_on_virtual_boards(tmp_path):
    smki, shares = Smki.create(tmp_path / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    A = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    B = Party.create(smki, "SUPPLIER B", roles.SUPPLIER, bytes.fromhex("90b3d51f30030000"), PASSPHRASE)
    device_ca = smki.create_device_ca("estate", 22, shares)
    boards = [VirtualBoard(tmp_path / f"m{n}", board="esp32", log=open(tmp_path / f"m{n}.log", "w"))
              for n in range(22)]
    csp = Csp({}, max_online=22, max_per_second=50)
    dcc = Dcc(tmp_path / "dcc", smki, PASSPHRASE, csp, THRESHOLDS)
    try:
        start_boards(boards)
        meters = []
        for board in boards:
            with BoardConnection(board.url, timeout=30.0) as connection:
                record = commission(BoardClient(connection), smki, device_ca, parties, dcc.register, "esme",
                                    progress=lambda *_: None)
            csp.endpoints[record["eui64"]] = board.url
            meters.append(record["eui64"])
        a_meters, b_meters = meters[:20], meters[20:]
        for meter in meters:
            assert dcc.change_supplier(meter, A if meter in a_meters else B).status == ROUTED
        before = accepted_on_boards(csp, meters)

        flood = [command_request(A, a_meters[n % 20], DISCONNECT, der.EMPTY) for n in range(1000)]
        results = []
        for at in range(0, 1000, 100):
            results.extend(dcc.submit_batch(flood[at:at + 100]))
        routed = [r for r in results if r.status == ROUTED]
        assert len(routed) == 5 and all(r.reason == pipeline.ACCEPT for r in routed)
        assert sum(r.status == QUARANTINED for r in results) == 995
        assert len(dcc.alarms()) == 1

        after = accepted_on_boards(csp, meters)
        assert sum(after[m] - before[m] for m in a_meters) == 5  # on the boards themselves
        assert all(after[m] == before[m] for m in b_meters)  # B's meters untouched

        # the DCC restarts: the quarantine and the alarm are still there, and still hold
        dcc.close()
        dcc = Dcc(tmp_path / "dcc", smki, PASSPHRASE, csp, THRESHOLDS)
        assert len(dcc.quarantined(A.eui64)) == 995 and len(dcc.alarms()) == 1
        assert dcc.submit(command_request(A, a_meters[0], DISCONNECT, der.EMPTY)).status == QUARANTINED

        # the same flood injected at the CSP, bypassing the DCC: A's keys, no ACB's MAC
        for meter in a_meters:
            device = dcc.register.device(meter)
            counter = commands.next_counter(A)
            apdu = gbcs.build(gbcs.CRA_COMMAND, counter, A.eui64, meter, DISCONNECT, der.EMPTY)
            signed = gbcs.build(gbcs.CRA_COMMAND, counter, A.eui64, meter, DISCONNECT, der.EMPTY,
                                signature=A.keys.sign("meter-ds", gbcs.parse(apdu).signed_part))
            forged = gbcs.wrap(signed, commands.acb_mac(A, device, signed))  # MAC'd with A's own KA key
            assert csp(device, forged) == (pipeline.REJECT_BAD_MAC, None)
        assert accepted_on_boards(csp, meters) == after
        assert dcc.audit.verify() == []
    finally:
        csp.close()
        dcc.close()
        for board in boards:
            board.kill()
