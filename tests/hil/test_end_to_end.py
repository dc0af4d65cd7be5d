"""The end-to-end suite a lab runs on its boards (meterlab.hil): on real boards given with
`--board ROLE=PORT`, on virtual boards otherwise. Each board is commissioned from the DCC's SMKI over its
own serial port, taken over by a supplier (a CS02b), sent that supplier's commands through the DCC and
the CSP, and sent a replay of one of them, which it must refuse.

    pytest tests/hil --board esme=/dev/ttyUSB0 --junitxml=hil.xml

Only what a board does over its own serial port is asked here (no HAN between boards), so any one role
can be a real board while the others are virtual."""
import pytest

from meterfw import authorisation, der, der_decode, endpoint, esme_host, gbcs, gbcs_host, pipeline, roles
from meterlab.client import BoardClient
from meterlab.commission import commission
from meterlab.csp import Csp
from meterlab.dcc.service import ROUTED, Dcc, command_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual
PASSPHRASE = "hil"
ROLES = ("esme", "gsme", "chf")
# a command of the supplier's each device type runs, and what it must answer (a sensitive read is
# encrypted to the supplier)
READS = {"esme": (authorisation.READ_IMPORT_REGISTERS, esme_host.read()),
         "gsme": (authorisation.READ_GAS_REGISTER, der.EMPTY)}


class RecordingCsp(Csp):
    """The CSP, keeping the last frame it delivered to each meter: what an eavesdropper on the WAN has."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last = {}

    def __call__(self, device, frame):
        self.last[device["eui64"]] = frame
        return super().__call__(device, frame)


@pytest.fixture(scope="module")
def site(lab_boards, tmp_path_factory):
    home = tmp_path_factory.mktemp("hil")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    supplier = Party.create(smki, "SUPPLIER", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    csp = RecordingCsp({}, max_online=3, max_per_second=50, timeout=60.0)
    dcc = Dcc(home / "dcc", smki, PASSPHRASE, csp)
    device_ca = smki.create_device_ca("hil", len(ROLES), shares)
    try:
        yield {"smki": smki, "parties": parties, "supplier": supplier, "csp": csp, "dcc": dcc,
               "device_ca": device_ca, "ids": {}, "boards": lab_boards}
    finally:
        csp.close()
        dcc.close()


def connected(site, role):
    # A serial port takes one program at a time (a real one is locked): the CSP lets go of its ports first.
    site["csp"].close()
    return BoardConnection(site["boards"][role].url, timeout=60.0)


def commissioned(site, role):
    if role not in site["ids"]:
        board = site["boards"][role]
        with connected(site, role) as connection:
            record = commission(BoardClient(connection), site["smki"], site["device_ca"], site["parties"],
                                site["dcc"].register, role, progress=lambda *_: None)
        site["ids"][role] = record["eui64"]
        site["csp"].endpoints[record["eui64"]] = board.url
    return site["ids"][role]


@pytest.mark.parametrize("role", ROLES)
def test_a_supplier_takes_the_board_over(site, role):
    meter = commissioned(site, role)
    result = site["dcc"].change_supplier(meter, site["supplier"])
    assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), result
    assert site["dcc"].owner(meter) == site["supplier"].eui64


@pytest.mark.parametrize("role", sorted(READS))
def test_the_supplier_reads_the_meter_and_only_it_can_read_the_answer(site, role):
    meter = commissioned(site, role)
    supplier, dcc = site["supplier"], site["dcc"]
    code, payload = READS[role]
    result = dcc.submit(command_request(supplier, meter, code, payload))
    assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), result
    z = supplier.keys.exchange("meter-ka", commands.device_keys(dcc.register.device(meter))[2])
    answer = gbcs.parse(result.response)
    assert gbcs.verify_mac(answer, z) and answer.recipient == supplier.eui64
    assert der_decode.answer(gbcs_host.decrypt_content(z, answer))[0] == endpoint.STATUS_OK  # encrypted to the supplier


@pytest.mark.parametrize("role", ROLES)
def test_a_replayed_command_is_refused(site, role):
    meter = commissioned(site, role)
    csp = site["csp"]
    device = site["dcc"].register.device(meter)
    captured = csp.last.get(meter)
    assert captured is not None, "the suite sends every board a command before replaying one"
    with connected(site, role) as connection:
        accepted_before, rejected_before = BoardClient(connection).status()
    assert csp(device, captured)[0] == pipeline.REJECT_REPLAY
    with connected(site, role) as connection:
        accepted, rejected = BoardClient(connection).status()
    assert accepted == accepted_before
    assert rejected[pipeline.REJECT_REPLAY] == rejected_before[pipeline.REJECT_REPLAY] + 1
