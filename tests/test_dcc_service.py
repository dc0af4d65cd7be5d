"""The DCC's service path with meters in this process (tests/fleet.py): every check in order, the
anomaly detector's quarantine through a restart, signed release and delete, and frames that bypass
the DCC dying at the meter."""
import itertools

import pytest

from meterfw import authorisation, der, esme_host, gbcs, pipeline, roles
from meterlab.dcc import requests
from meterlab.dcc.anomaly import Thresholds
from meterlab.dcc.service import DELETED, QUARANTINED, REFUSED, RELEASED, ROUTED, Dcc, command_request, user_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties

from meterlab.attack.fleet import Fleet, InProcessMeter

PASSPHRASE = "dcc test"
CA_NUMBERS = itertools.count(1)  # one device CA per test: each test commissions 40 meters
READ, TARIFF = authorisation.READ_IMPORT_REGISTERS, authorisation.TARIFF
CONNECT, DISCONNECT = authorisation.SUPPLY_CONNECT, authorisation.SUPPLY_DISCONNECT
THRESHOLDS = Thresholds({"window_seconds": 86400, "per_user": {"0x0050": 5, "default": 10000},
                         "total": {"0x0050": 100, "default": 100000}})


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        self.now += 0.001
        return self.now


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("dcc-world")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    make = lambda name, role, eui: Party.create(smki, name, role, bytes.fromhex(eui), PASSPHRASE)  # noqa: E731
    return {"home": home, "smki": smki, "parties": parties, "shares": shares,
            "A": make("SUPPLIER A", roles.SUPPLIER, "90b3d51f30010000"),
            "B": make("SUPPLIER B", roles.SUPPLIER, "90b3d51f30030000"),
            "NO": make("NETWORK OPERATOR", roles.NETWORK_OPERATOR, "90b3d51f30020000")}


@pytest.fixture
def dcc(world, tmp_path):
    fleet = Fleet()
    device_ca = world["smki"].create_device_ca(f"fleet-{next(CA_NUMBERS)}", 40, world["shares"])
    clock = Clock()
    service = Dcc(tmp_path / "dcc", world["smki"], PASSPHRASE, fleet, THRESHOLDS, clock)
    meters = {}
    for n in range(40):
        device_id = bytes.fromhex("00db1234%08x" % (tmp_path.stat().st_ino * 100 + n))
        meters[n] = fleet.add(InProcessMeter(device_id, world["smki"], device_ca, world["parties"],
                                             service.register))
    for n in range(40):  # A owns 0..19, B owns 20..39
        assert service.change_supplier(meters[n].device_id, world["A"] if n < 20 else world["B"]).status == ROUTED
    yield service, meters, fleet, clock
    service.close()


def test_supplier_reads_sets_tariff_disconnects_and_reconnects(world, dcc):
    service, meters, _, _ = dcc
    meter = meters[0]
    device = service.register.device(meter.device_id)
    tariff = esme_host.tariff([(0, 18_000), (34, 40_000)])
    for code, payload in ((READ, der.encode([1])), (TARIFF, tariff), (DISCONNECT, der.EMPTY), (CONNECT, der.EMPTY)):
        result = service.submit(command_request(world["A"], meter.device_id, code, payload))
        assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), code
        response = gbcs.parse(result.response)
        assert response.message_code == code and response.recipient == world["A"].eui64
        if authorisation.needs_signature(code):
            commands.check_response(device, gbcs.build(gbcs.CRA_COMMAND, response.counter, world["A"].eui64,
                                                       meter.device_id, code, payload), result.response)
    assert [entry[1] for entry in meter.recorder.recent[-4:]] == [READ, TARIFF, DISCONNECT, CONNECT]
    # the meter itself changed: its tariff, and its relay opened and closed again
    assert esme_host.tariff(meter.meter.tariff()) == tariff and meter.relay == [True, False, True] and meter.meter.supply
    assert service.audit.verify() == []


def test_the_dcc_refuses_each_bad_request_for_its_own_reason(world, dcc):
    service, meters, fleet, _ = dcc
    A, B, NO = world["A"], world["B"], world["NO"]
    mine, theirs = meters[0].device_id, meters[30].device_id
    good = command_request(A, mine, READ, der.EMPTY)
    assert service.submit(good).status == ROUTED
    cases = [
        (good, "replayed request"),
        (good[:-1] + bytes((good[-1] ^ 1,)), "bad signature"),
        (b"\x01" + bytes(19), "malformed request"),
        (requests.make(bytes.fromhex("90b3d51f30990000"), 1, requests.COMMAND, b"x", lambda d: bytes(64)),
         "not a DCC user"),
        (command_request(NO, mine, TARIFF, b"t"), "network operator may not send 0x0019"),
        (command_request(A, mine, TARIFF, b"t", sign=False), "without the user's valid signature"),
        (command_request(A, theirs, DISCONNECT, der.EMPTY), "owned by another supplier"),
        (command_request(A, mine, authorisation.VALVE_CLOSE, der.EMPTY), "an esme does not run 0x0081"),  # gas only
        (command_request(A, bytes.fromhex("00db0000000000ff"), READ, der.EMPTY), "not registered"),
        (user_request(A, requests.COMMAND, gbcs.parse(commands.build_command(
            A, service.register.device(mine), READ, der.EMPTY, service.acb)).apdu[:5]), "malformed command"),
    ]
    frames_before = fleet.frames
    for data, why in cases:
        result = service.submit(data)
        assert result.status == REFUSED and why in result.detail, (why, result)
    assert fleet.frames == frames_before  # nothing reached a meter


def test_a_disconnect_flood_is_stopped_and_stays_quarantined_across_a_restart(world, dcc, tmp_path):
    service, meters, fleet, clock = dcc
    A = world["A"]
    b_counts = [meters[n].recorder.count for n in range(20, 40)]
    results = [service.submit(command_request(A, meters[n % 20].device_id, DISCONNECT, der.EMPTY)) for n in range(1000)]
    routed = [r for r in results if r.status == ROUTED]
    assert len(routed) == 5 and all(r.reason == pipeline.ACCEPT for r in routed)
    assert [r.status for r in results[5:]] == [QUARANTINED] * 995
    assert "exceeded 5 requests of code 0x0050" in results[5].detail
    assert len(service.alarms()) == 1 and len(service.quarantined(A.eui64)) == 995
    executed = sum(1 for n in range(20) for entry in meters[n].recorder.recent if entry[1] == DISCONNECT)
    assert executed == 5 and sum(1 for n in range(20) if not meters[n].meter.supply) == 5  # 5 relays open
    assert [meters[n].recorder.count for n in range(20, 40)] == b_counts  # B's meters untouched
    assert all(meters[n].meter.supply and meters[n].relay == [True] for n in range(20, 40))
    # B is not held up by A's quarantine
    assert service.submit(command_request(world["B"], meters[20].device_id, DISCONNECT, der.EMPTY)).status == ROUTED
    # a restart loses nothing
    service.close()
    again = Dcc(tmp_path / "dcc", world["smki"], PASSPHRASE, fleet, THRESHOLDS, clock)
    try:
        assert len(again.quarantined(A.eui64)) == 995 and len(again.alarms()) == 1
        import subprocess
        import sys

        shown = subprocess.run([sys.executable, "-m", "meterlab", "dcc", "alarms", str(tmp_path / "dcc")],
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "1 alarms" in shown.stdout and "exceeded 5 requests" in shown.stdout
        assert f"user {A.eui64.hex()} code 0x0050: 995" in shown.stdout
        assert again.submit(command_request(A, meters[0].device_id, DISCONNECT, der.EMPTY)).status == QUARANTINED
        assert again.submit(command_request(A, meters[0].device_id, READ, der.EMPTY)).status == ROUTED
        # the windows came back from the audit log: a release routes nothing more today
        release = again.submit(user_request(A, requests.RELEASE, DISCONNECT.to_bytes(2, "big")))
        assert release.status == RELEASED and all(r.status == QUARANTINED for r in release.response)
        deleted = again.submit(user_request(A, requests.DELETE, DISCONNECT.to_bytes(2, "big")))
        assert deleted.status == DELETED and again.quarantined(A.eui64) == []
        assert again.audit.verify() == []
    finally:
        again.close()


def test_released_requests_route_once_the_window_allows(world, dcc):
    service, meters, _, clock = dcc
    A = world["A"]
    for _ in range(8):
        service.submit(command_request(A, meters[1].device_id, DISCONNECT, der.EMPTY))
    assert len(service.quarantined(A.eui64)) == 3
    clock.now += 2 * 86400  # two days later
    release = service.submit(user_request(A, requests.RELEASE, DISCONNECT.to_bytes(2, "big")))
    assert [r.status for r in release.response] == [ROUTED] * 3
    assert all(r.reason == pipeline.REJECT_REPLAY or r.reason == pipeline.ACCEPT for r in release.response)


def test_frames_injected_at_the_csp_die_at_the_meter(world, dcc):
    service, meters, _, _ = dcc
    A = world["A"]
    meter = meters[2]
    before = meter.recorder.count
    # the attacker has A's keys but not the ACB's: it signs, and MACs with whatever it has
    for mac_key_holder in (A, world["NO"]):
        apdu = gbcs.build(gbcs.CRA_COMMAND, commands.next_counter(A), A.eui64, meter.device_id, DISCONNECT, der.EMPTY)
        signed = gbcs.build(gbcs.CRA_COMMAND, gbcs.parse(apdu).counter, A.eui64, meter.device_id, DISCONNECT, der.EMPTY,
                            signature=A.keys.sign("meter-ds", gbcs.parse(apdu).signed_part))
        forged = gbcs.wrap(signed, commands.acb_mac(mac_key_holder, service.register.device(meter.device_id), signed))
        assert meter.handle(forged) == (pipeline.REJECT_BAD_MAC, None)
        assert meter.handle(signed) == (pipeline.REJECT_NO_MAC, None)
    assert meter.recorder.count == before


def test_the_dccs_own_commands_are_audited_before_they_leave(world, dcc):
    service, meters, fleet, _ = dcc
    in_log_when_sent = []

    def router(device, frame):
        in_log_when_sent.append(service.audit.entries()[-1][3:])
        return fleet(device, frame)

    service.router = router
    meter = meters[3].device_id
    assert service.change_supplier(meter, world["B"]).status == ROUTED
    *_, intent, answer = service.audit.entries()
    assert in_log_when_sent == [intent[3:]]  # the intent was durable before the frame left the DCC
    assert intent[2:4] == ("dcc transitional CoS", "change of supplier") and "meter_reason" not in intent[4]
    assert answer[3] == "answer" and answer[4]["meter_reason"] == pipeline.ACCEPT
    assert answer[4]["supplier"] == world["B"].eui64.hex() and service.audit.verify() == []
