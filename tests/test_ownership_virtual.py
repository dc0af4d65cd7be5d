"""Change of supplier on commissioned virtual boards (design.md, "Ownership"; properties 2, 6, 10): supplier
A takes ownership through the DCC's transitional CoS and sets a tariff, supplier B takes over, A is
locked out; every CS02b that fails a check is rejected with its own reason and changes nothing on the
board's flash; a power cut at each write of the swap leaves A or B the owner; and keys read out of one
board's flash forge commands for that board only."""
import shutil

import pytest

from meterfw import authorisation, der, esme_host, gbcs, pipeline, roles, store
from meterfw.crypto import p256
from meterlab.boards.provision import security_storage, stored_counters
from meterlab.boards.virtual import VirtualBoard
from meterlab.client import BoardClient
from meterlab.commission import commission
from meterlab.dcc.register import DeviceRegister
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection, BoardLost, BoardTimeout

pytestmark = pytest.mark.virtual
PASSPHRASE = "lab"
TARIFF = authorisation.TARIFF
TARIFF_PAYLOAD = esme_host.tariff([(0, 21_000), (32, 34_000)])
READ = authorisation.READ_IMPORT_REGISTERS
PAYLOADS = {TARIFF: TARIFF_PAYLOAD, READ: esme_host.read(1)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("ownership")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    dcc = create_dcc_parties(smki, PASSPHRASE)
    party = lambda name, role, eui: Party.create(smki, name, role, bytes.fromhex(eui), PASSPHRASE)  # noqa: E731
    lab = {
        "home": home, "smki": smki, "dcc": dcc, "register": DeviceRegister(home / "dcc"),
        "device_ca": smki.create_device_ca("boards", 10, shares),
        "A": party("SUPPLIER A", roles.SUPPLIER, "90b3d51f30010000"),
        "B": party("SUPPLIER B", roles.SUPPLIER, "90b3d51f30030000"),
        "C": party("SUPPLIER C", roles.SUPPLIER, "90b3d51f30050000"),
        "NO": party("NETWORK OPERATOR", roles.NETWORK_OPERATOR, "90b3d51f30020000"),
    }
    other, _ = Smki.create(home / "other-smki", "x", threshold=1, custodian_count=1)
    lab["foreign"] = Party.create(other, "SUPPLIER ELSEWHERE", roles.SUPPLIER, bytes.fromhex("90b3d51f300f0000"), "x")
    lab["other_smki"] = other
    yield lab
    lab["register"].close()


def send(url, frame):
    with BoardConnection(url, timeout=30.0) as connection:
        return BoardClient(connection).gbcs(frame)


def commissioned_board(lab, state, role="esme"):
    """A commissioned board's state folder, its registered device record."""
    with VirtualBoard(state, board="esp32", log=open(str(state) + ".log", "a")) as virtual:
        with BoardConnection(virtual.url, timeout=30.0) as connection:
            return commission(BoardClient(connection), lab["smki"], lab["device_ca"], lab["dcc"], lab["register"],
                              role, progress=lambda *_: None)


def start(state, **options):
    # No load on the meter: its flash then changes only for security state, which the power cuts count.
    return VirtualBoard(state, board="esp32", deploy=False, log=open(str(state) + ".log", "a"), load_watts=0,
                        **options)


def flash_state(state):
    folder = state / "flash" / store.FOLDER
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def supplier_anchor(state):
    return store.TrustAnchorStore(security_storage(state)).anchor(roles.SUPPLIER)


def take(lab, device, supplier, **options):
    return commands.take_ownership(lab["smki"], device, supplier, lab["dcc"][roles.TRANSITIONAL_COS],
                                   lab["dcc"][roles.ACCESS_CONTROL_BROKER], **options)


def command(lab, originator, device, code, payload=None, **options):
    payload = PAYLOADS.get(code, der.EMPTY) if payload is None else payload
    return commands.build_command(originator, device, code, payload, lab["dcc"][roles.ACCESS_CONTROL_BROKER],
                                  **options)


def test_change_of_supplier_end_to_end(lab, tmp_path):
    state = tmp_path / "meter"
    device = commissioned_board(lab, state)
    A, B = lab["A"], lab["B"]
    with start(state) as virtual:
        # A takes ownership through the transitional CoS; the board answers with its signature
        frame = take(lab, device, A)
        reason, response = send(virtual.url, frame)
        assert reason == pipeline.ACCEPT
        commands.check_response(device, frame, response)
        assert supplier_anchor(state) == A.anchor()  # on the board's own flash
        # A sets a tariff
        assert send(virtual.url, command(lab, A, device, TARIFF))[0] == pipeline.ACCEPT
        # B takes over
        frame = take(lab, device, B)
        reason, response = send(virtual.url, frame)
        assert reason == pipeline.ACCEPT and commands.check_response(device, frame, response)
        assert supplier_anchor(state) == B.anchor()
        # A is locked out: under its own ID it is nobody; claiming B's ID its signature is not the anchor's
        assert send(virtual.url, command(lab, A, device, TARIFF)) == (pipeline.REJECT_UNKNOWN_ORIGINATOR, None)
        impostor = command(lab, A, device, TARIFF, sign=False)
        message = gbcs.parse(impostor)
        forged = gbcs.build(gbcs.CRA_COMMAND, commands.next_counter(B), B.eui64, device["eui64"], TARIFF, TARIFF_PAYLOAD)
        forged = gbcs.build(gbcs.CRA_COMMAND, gbcs.parse(forged).counter, B.eui64, device["eui64"], TARIFF,
                            TARIFF_PAYLOAD, signature=A.keys.sign("meter-ds", gbcs.parse(forged).signed_part))
        forged = gbcs.wrap(forged, commands.acb_mac(lab["dcc"][roles.ACCESS_CONTROL_BROKER], device, forged))
        assert message.originator == A.eui64
        assert send(virtual.url, forged) == (pipeline.REJECT_BAD_SIGNATURE, None)
        # B's tariff works
        assert send(virtual.url, command(lab, B, device, TARIFF))[0] == pipeline.ACCEPT
        # B hands over to C directly (supplierBySupplier); then Recovery puts B back
        frame = commands.hand_over(lab["smki"], device, B, lab["C"], lab["dcc"][roles.ACCESS_CONTROL_BROKER])
        assert send(virtual.url, frame)[0] == pipeline.ACCEPT and supplier_anchor(state) == lab["C"].anchor()
        frame = commands.recover(lab["smki"], device, lab["dcc"][roles.RECOVERY], B, roles.SUPPLIER,
                                 lab["dcc"][roles.ACCESS_CONTROL_BROKER])
        assert send(virtual.url, frame)[0] == pipeline.ACCEPT and supplier_anchor(state) == B.anchor()
        assert send(virtual.url, command(lab, lab["C"], device, TARIFF))[0] == pipeline.REJECT_UNKNOWN_ORIGINATOR
        assert send(virtual.url, command(lab, B, device, TARIFF))[0] == pipeline.ACCEPT
        virtual.kill()
    with start(state) as virtual:  # after a power cycle, the owner is still B
        assert send(virtual.url, command(lab, B, device, TARIFF))[0] == pipeline.ACCEPT
        assert send(virtual.url, command(lab, A, device, TARIFF))[0] == pipeline.REJECT_UNKNOWN_ORIGINATOR


def test_bad_credential_replacements_change_nothing(lab, tmp_path):
    state = tmp_path / "meter"
    device = commissioned_board(lab, state)
    smki, A, B, acb = lab["smki"], lab["A"], lab["B"], lab["dcc"][roles.ACCESS_CONTROL_BROKER]
    transcos, recovery = lab["dcc"][roles.TRANSITIONAL_COS], lab["dcc"][roles.RECOVERY]
    organisation = smki.certificate("organisation-ca")

    def cs02b(originator, code, target, ca, ds, ka, **options):
        from meterfw import ownership

        payload = ownership.encode_payload(target, 0, ca, ds, ka)
        return commands.build_command(originator, device, code, payload, acb, **options)

    by_transcos = authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS
    with start(state) as virtual:
        owned = take(lab, device, A)
        assert send(virtual.url, owned)[0] == pipeline.ACCEPT
        foreign = lab["foreign"]
        cases = [
            # a supplier that is not the owner hands the meter over
            (command(lab, B, device, authorisation.CREDENTIALS_SUPPLIER_BY_SUPPLIER,
                     commands.credentials_payload(smki, B, roles.SUPPLIER)), pipeline.REJECT_UNKNOWN_ORIGINATOR),
            # certificates that do not chain to this SMKI's root
            (cs02b(transcos, by_transcos, roles.SUPPLIER, lab["other_smki"].certificate("organisation-ca"),
                   foreign.certificate("meter-ds"), foreign.certificate("meter-ka")),
             pipeline.REJECT_CERTIFICATE_CHAIN),
            # DS and KA certificates swapped: wrong key usage
            (cs02b(transcos, by_transcos, roles.SUPPLIER, organisation, B.certificate("meter-ka"),
                   B.certificate("meter-ds")), pipeline.REJECT_KEY_USAGE),
            # a network operator's certificates offered as a supplier's
            (cs02b(transcos, by_transcos, roles.SUPPLIER, organisation, lab["NO"].certificate("meter-ds"),
                   lab["NO"].certificate("meter-ka")), pipeline.REJECT_CERTIFICATE_ROLE),
            # a DCC-facing certificate: not meter-facing
            (cs02b(transcos, by_transcos, roles.SUPPLIER, organisation, B.certificate("dcc-ds"),
                   B.certificate("meter-ka")), pipeline.REJECT_CERTIFICATE),
            # the transitional CoS may replace only the supplier; Recovery anything but the root
            (cs02b(transcos, by_transcos, roles.ACCESS_CONTROL_BROKER, organisation, B.certificate("meter-ds"),
                   B.certificate("meter-ka")), pipeline.REJECT_BAD_PAYLOAD),
            (cs02b(recovery, authorisation.CREDENTIALS_ANY_BY_RECOVERY, roles.ROOT, organisation,
                   B.certificate("meter-ds"), B.certificate("meter-ka")), pipeline.REJECT_BAD_PAYLOAD),
            # the transitional CoS's command without its signature
            (cs02b(transcos, by_transcos, roles.SUPPLIER, organisation, B.certificate("meter-ds"),
                   B.certificate("meter-ka"), sign=False), pipeline.REJECT_BAD_SIGNATURE),
            # replayed
            (owned, pipeline.REJECT_REPLAY),
        ]
        # without the ACB's MAC: the bare signed APDU, and one MAC'd by another key
        good = take(lab, device, B)
        message = gbcs.parse(good)
        cases.append((message.apdu, pipeline.REJECT_NO_MAC))
        cases.append((gbcs.wrap(message.apdu, bytes(12)), pipeline.REJECT_BAD_MAC))
        before = flash_state(state)
        for frame, reason in cases:
            assert send(virtual.url, frame) == (reason, None), pipeline.REASON_NAMES[reason]
            assert flash_state(state) == before, pipeline.REASON_NAMES[reason]
        assert supplier_anchor(state) == A.anchor()
        with BoardConnection(virtual.url, timeout=10.0) as connection:
            _, rejected = BoardClient(connection).status()
        assert sum(rejected) == len(cases)
        assert send(virtual.url, good)[0] == pipeline.ACCEPT  # the same command, MAC'd by the ACB


def test_power_cut_at_each_write_of_the_swap(lab, tmp_path):
    base = tmp_path / "base"
    device = commissioned_board(lab, base)
    A, B = lab["A"], lab["B"]
    with start(base) as virtual:
        assert send(virtual.url, take(lab, device, A))[0] == pipeline.ACCEPT
    swap = take(lab, device, B)
    owners = []
    for n in range(1, 10):
        state = tmp_path / f"cut-{n}"
        shutil.copytree(base, state)
        virtual = start(state, power_cut_after_writes=n)
        virtual.start()
        try:
            reason, _ = send(virtual.url, swap)
            cut = False
        except (BoardLost, BoardTimeout, ConnectionError, OSError):
            virtual.process.wait(10)
            assert virtual.process.returncode == -9
            cut = True
        finally:
            virtual.kill()
        anchor = supplier_anchor(state)
        assert anchor in (A.anchor(), B.anchor()), "owned by neither"
        owner = "A" if anchor == A.anchor() else "B"
        owners.append(owner)
        spent = stored_counters(state).get(roles.TRANSITIONAL_COS) == gbcs.parse(swap).counter
        assert spent or owner == "A"  # the swap never happens without its counter committed first
        with start(state) as again:  # the owner's tariff works, the other's does not
            owner_party, other = (A, B) if owner == "A" else (B, A)
            assert send(again.url, command(lab, owner_party, device, TARIFF))[0] == pipeline.ACCEPT
            assert send(again.url, command(lab, other, device, TARIFF))[0] == pipeline.REJECT_UNKNOWN_ORIGINATOR
            if spent:  # the CS02b ran (or was cut after its counter): it is a replay now
                assert send(again.url, swap)[0] == pipeline.REJECT_REPLAY
            else:  # cut before its counter: it never ran, so it runs now, once
                assert send(again.url, swap)[0] == pipeline.ACCEPT
                assert supplier_anchor(state) == B.anchor()
                assert send(again.url, swap)[0] == pipeline.REJECT_REPLAY
        if not cut:
            break
    # four flash changes: the transitional CoS's counter (write, rename), the anchor (write, rename)
    assert owners == ["A", "A", "A", "A", "B"], owners


def test_keys_read_from_one_board_forge_for_that_board_only(lab, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    devices = [commissioned_board(lab, state) for state in (one, two)]
    A, acb = lab["A"], lab["dcc"][roles.ACCESS_CONTROL_BROKER]
    boards = [start(state) for state in (one, two)]
    try:
        for virtual, device in zip(boards, devices):
            virtual.start()
            assert send(virtual.url, take(lab, device, A))[0] == pipeline.ACCEPT
        # the attacker reads board one's flash: its KA key gives the ACB's MAC key for board one
        stolen_id, stolen_ds, stolen_ka, _ = store.IdentityStore(security_storage(one)).identity
        acb_ka = store.TrustAnchorStore(security_storage(one)).anchor(roles.ACCESS_CONTROL_BROKER)[2]
        z = p256.ecdh(stolen_ka, acb_ka)

        def forge(recipient, code, signature=None):
            counter = commands.next_counter(A)
            apdu = gbcs.build(gbcs.CRA_COMMAND, counter, A.eui64, recipient, code, PAYLOADS[code])
            if signature is not None:
                apdu = gbcs.build(gbcs.CRA_COMMAND, counter, A.eui64, recipient, code, PAYLOADS[code],
                                  signature=signature(gbcs.parse(apdu).signed_part))
            return gbcs.wrap(apdu, gbcs.mac_for(gbcs.parse(apdu), z))

        assert send(boards[0].url, forge(stolen_id, READ))[0] == pipeline.ACCEPT  # that board: yes
        assert send(boards[1].url, forge(devices[1]["eui64"], READ))[0] == pipeline.REJECT_BAD_MAC
        assert send(boards[1].url, forge(stolen_id, READ))[0] == pipeline.REJECT_WRONG_RECIPIENT
        # and no critical command even on that board: the supplier's signature is not on the meter
        signed = forge(stolen_id, TARIFF, lambda data: p256.sign(stolen_ds, data))
        assert send(boards[0].url, signed)[0] == pipeline.REJECT_BAD_SIGNATURE
    finally:
        for virtual in boards:
            virtual.kill()
