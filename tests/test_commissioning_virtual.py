"""Commissioning virtual boards (design.md, "Identities"; property 7): an SMKI with a device CA of quota 3
commissions three boards, each checked on the board itself; the fourth fails and the CA's key is gone.
Boards refuse anchors whose certificates fail the meter's checks, refuse to be commissioned twice, and
a board without a random source gets its keys injected (and one with a source refuses injection)."""
import pytest

from meterfw import commissioning, roles, store
from meterfw import link_host as link
from meterlab.boards.provision import security_storage
from meterlab.boards.virtual import VirtualBoard
from meterlab.client import BoardClient, BoardRefused
from meterlab.commission import CommissioningFailed, commission
from meterlab.dcc.register import DeviceRegister
from meterlab.smki.authority import QuotaExhausted, Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual
PASSPHRASE = "lab operator"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=2, custodian_count=3)
    parties = create_dcc_parties(smki, PASSPHRASE)
    supplier = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    return {"home": home, "smki": smki, "shares": shares, "parties": parties, "supplier": supplier}


def board(tmp_path, name, board_name="esp32", **options):
    return VirtualBoard(tmp_path / name, board=board_name, log=open(tmp_path / f"{name}.log", "w"), **options)


def client_for(url):
    connection = BoardConnection(url, timeout=30.0)
    return connection, BoardClient(connection)


def test_device_ca_quota_three_boards_then_the_key_is_gone(lab, tmp_path):
    smki = lab["smki"]
    device_ca = smki.create_device_ca("quota-test", 3, lab["shares"][:2])
    register = DeviceRegister(tmp_path / "dcc")
    boards = [board(tmp_path, f"b{n}", name) for n, name in enumerate(("esp32", "rp2040", "esp32", "esp32"))]
    roles_wanted = ("esme", "gsme", "chf", "esme")
    try:
        for n, (virtual, role) in enumerate(zip(boards, roles_wanted)):
            virtual.start()
            connection, client = client_for(virtual.url)
            with connection:
                state, has_rng, hardware_id, keys = client.identify()
                assert (state, has_rng, keys) == (commissioning.BLANK, True, None)
                with pytest.raises(BoardRefused, match="not commissioned"):
                    client.gbcs(b"\xdd\x00")
                if n == 3:
                    with pytest.raises(QuotaExhausted, match="quota of 3 devices"):
                        commission(client, smki, device_ca, lab["parties"], register, role, progress=lambda *_: None)
                    assert client.identify()[0] == commissioning.KEYED  # keys made, never certified
                    assert register.device(hardware_id) is None
                    continue
                record = commission(client, smki, device_ca, lab["parties"], register, role, progress=lambda *_: None)
                assert record["eui64"] == hardware_id and record["role"] == role
                state, _, _, keys = client.identify()
                assert state == commissioning.COMMISSIONED and keys[0] == hardware_id
                assert client.ping().role == role
                accepted, rejected = client.status()  # the pipeline runs now
                assert accepted == 0 and sum(rejected) == 0
                with pytest.raises(BoardRefused, match="already commissioned"):
                    client.keygen(hardware_id, 0)
                with pytest.raises(BoardRefused, match="already commissioned"):
                    client.commission_step(link.STEP_ROOT, smki.root_public_key())
            # checked on the board's own flash: its identity and the anchors of the DCC's parties
            virtual.stop()
            storage = security_storage(virtual.state_dir)
            assert store.IdentityStore(storage).identity[0] == hardware_id
            anchors = store.TrustAnchorStore(storage)
            for role_number, party in lab["parties"].items():
                assert anchors.anchor(role_number) == party.anchor()
            assert anchors.anchor(roles.ROOT)[1] == smki.root_public_key()
            assert anchors.anchor(roles.SUPPLIER) is None  # until a supplier takes ownership
        assert not device_ca.key_present
        assert f"device-ca-quota-test" not in smki.keys.labels()
        assert len(register.devices()) == 3
    finally:
        for virtual in boards:
            virtual.kill()
        register.close()


def test_board_refuses_anchors_that_fail_its_checks(lab, tmp_path):
    smki, parties, supplier = lab["smki"], lab["parties"], lab["supplier"]
    organisation = smki.certificate("organisation-ca")
    acb = parties[roles.ACCESS_CONTROL_BROKER]
    with board(tmp_path, "checks") as virtual:
        connection, client = client_for(virtual.url)
        with connection:
            with pytest.raises(BoardRefused, match="no keys yet"):
                client.commission_step(link.STEP_ROOT, smki.root_public_key())
            client.keygen(bytes.fromhex("00db1234567890f0"), 0)
            with pytest.raises(BoardRefused, match="root anchor first"):
                client.commission_step(link.STEP_ANCHOR, bytes((roles.ACCESS_CONTROL_BROKER,)) + link.lengths_prefixed(
                    organisation, acb.certificate("meter-ds"), acb.certificate("meter-ka")))
            client.commission_step(link.STEP_ROOT, smki.root_public_key())
            cases = (
                ((roles.ACCESS_CONTROL_BROKER, supplier.certificate("meter-ds"), supplier.certificate("meter-ka")),
                 "wrong role in the DS certificate"),
                ((roles.ACCESS_CONTROL_BROKER, acb.certificate("meter-ka"), acb.certificate("meter-ds")),
                 "wrong key usage"),
                ((roles.ACCESS_CONTROL_BROKER, acb.certificate("dcc-ds"), acb.certificate("meter-ka")),
                 "not a meter-facing organisation certificate"),
                ((roles.SUPPLIER, supplier.certificate("meter-ds"), supplier.certificate("meter-ka")),
                 "installs only"),
            )
            for (role_number, ds, ka), reason in cases:
                with pytest.raises(BoardRefused, match=reason):
                    client.commission_step(link.STEP_ANCHOR, bytes((role_number,)) + link.lengths_prefixed(
                        organisation, ds, ka))
            # a certificate chain that does not reach the root: another SMKI's organisation CA
            other, _ = Smki.create(tmp_path / "other-smki", "x", threshold=1, custodian_count=1)
            foreign = Party.create(other, "ACB elsewhere", roles.ACCESS_CONTROL_BROKER,
                                   bytes.fromhex("90b3d51f30000002"), "x")
            with pytest.raises(BoardRefused, match="certificate chain"):
                client.commission_step(link.STEP_ANCHOR, bytes((roles.ACCESS_CONTROL_BROKER,)) + link.lengths_prefixed(
                    other.certificate("organisation-ca"), foreign.certificate("meter-ds"),
                    foreign.certificate("meter-ka")))
            with pytest.raises(BoardRefused, match="anchors missing: recovery, access control broker"):
                client.commission_step(link.STEP_FINISH, b"\x00")
            assert client.identify()[0] == commissioning.KEYED
        virtual.stop()
        assert store.TrustAnchorStore(security_storage(virtual.state_dir)).roles() == (roles.ROOT,)


def test_board_without_rng_gets_injected_keys(lab, tmp_path):
    smki = lab["smki"]
    device_ca = smki.create_device_ca("inject-test", 2, lab["shares"][1:])
    register = DeviceRegister(tmp_path / "dcc")
    try:
        with board(tmp_path, "no-rng", rng=False) as virtual:
            connection, client = client_for(virtual.url)
            with connection:
                assert client.identify()[1] is False
                with pytest.raises(BoardRefused, match="no usable random source"):
                    client.keygen(bytes.fromhex("00db1234567890f1"), 0)
                lines = []
                commission(client, smki, device_ca, lab["parties"], register, "esme", progress=lines.append)
                assert any("injected" in line for line in lines)
                assert client.identify()[0] == commissioning.COMMISSIONED
        with board(tmp_path, "rng") as virtual:
            connection, client = client_for(virtual.url)
            with connection:
                with pytest.raises(BoardRefused, match="makes its own keys"):
                    client.inject(bytes.fromhex("00db1234567890f2"), 0, bytes(31) + b"\x05", bytes(31) + b"\x06")
                with pytest.raises(CommissioningFailed, match="unknown role"):
                    commission(client, smki, device_ca, lab["parties"], register, "toaster")
    finally:
        register.close()


def test_cli_smki_and_commission(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "METERLAB_SMKI_PASSPHRASE": "cli operator", "METERLAB_RUNTIME_DIR": str(tmp_path / "rt")}

    def meterlab(*args):
        return subprocess.run([sys.executable, "-m", "meterlab", *args], capture_output=True, text=True,
                              timeout=120, env=env, cwd=tmp_path)

    result = meterlab("smki", "init", "smki", "--custodians", "3", "--threshold", "2")
    assert result.returncode == 0, result.stderr
    assert "2 of 3 custodian shares" in result.stdout and "90b3d51f30000002" in result.stdout
    shares = sorted((tmp_path / "custodian-shares").glob("custodian-*.share"))
    assert len(shares) == 3
    result = meterlab("smki", "device-ca", "smki", "batch", "--quota", "1", "--share", str(shares[0]))
    assert result.returncode == 1 and "needs 2 of the 3" in result.stderr and "Traceback" not in result.stderr
    result = meterlab("smki", "device-ca", "smki", "batch", "--quota", "1", "--share", str(shares[0]),
                      "--share", str(shares[2]))
    assert result.returncode == 0, result.stderr
    result = meterlab("smki", "party", "smki", "--name", "SUPPLIER A", "--role", "supplier",
                      "--eui64", "90b3d51f30010000")
    assert result.returncode == 0, result.stderr
    with board(tmp_path, "cli-board", "rp2040", home=True) as virtual:
        result = meterlab("commission", virtual.url, "--role", "gsme", "--smki", "smki", "--device-ca", "batch",
                          "--dcc", "dcc")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "anchors: access control broker (90b3d51f30000002)" in result.stdout
        assert result.stdout.strip().endswith("commissioned, device %s (gsme)" % virtual_uid(virtual))
        result = meterlab("commission", virtual.url, "--role", "gsme", "--smki", "smki", "--device-ca", "batch",
                          "--dcc", "dcc")
        assert result.returncode == 1 and "commissioned already" in result.stderr
        result = meterlab("supplier", "take-ownership", virtual.url, "--supplier", "90b3d51f30010000",
                          "--smki", "smki", "--dcc", "dcc")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "now owned by SUPPLIER A (90b3d51f30010000)" in result.stdout and "verified" in result.stdout
        result = meterlab("supplier", "take-ownership", virtual.url, "--supplier", "90b3d51f30000002",
                          "--smki", "smki", "--dcc", "dcc")
        assert result.returncode == 1 and "not a supplier" in result.stderr
        # the consumer, at the meter's in-home port
        assert meterlab("smki", "party", "smki", "--name", "ENERGY APP", "--role", "other",
                        "--eui64", "90b3d51f30070000").returncode == 0
        result = meterlab("consent", "grant", virtual.home_url, "--party", "90b3d51f30070000", "--months", "3",
                          "--days", "30", "--smki", "smki")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ENERGY APP (90b3d51f30070000) may read 3 months of readings for 30 days" in result.stdout
        result = meterlab("consent", "list", virtual.home_url)
        assert "1 consents" in result.stdout and "90b3d51f30070000  3 months" in result.stdout
        result = meterlab("consent", "grant", virtual.url, "--party", "90b3d51f30070000", "--smki", "smki")
        assert result.returncode == 1 and "unknown request kind" in result.stderr  # not over the WAN side
        assert meterlab("consent", "revoke", virtual.home_url, "--party", "90b3d51f30070000").returncode == 0
        assert "0 consents" in meterlab("consent", "list", virtual.home_url).stdout
    with board(tmp_path, "cli-board-2") as virtual:
        result = meterlab("commission", virtual.url, "--role", "esme", "--smki", "smki", "--device-ca", "batch",
                          "--dcc", "dcc")
        assert result.returncode == 1 and "quota of 1 devices" in result.stderr, result.stderr
    env.pop("METERLAB_SMKI_PASSPHRASE")
    result = subprocess.run([sys.executable, "-m", "meterlab", "smki", "init", "smki2"], capture_output=True,
                            text=True, timeout=60, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "METERLAB_SMKI_PASSPHRASE" in result.stderr


def virtual_uid(virtual):
    import json

    return json.loads((virtual.state_dir / "hardware.json").read_text())["uid"]
