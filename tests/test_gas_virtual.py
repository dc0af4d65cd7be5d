"""A comms hub, an electricity meter and a battery gas meter on one virtual radio that loses 10% of its
frames (design.md, "Gas: GSME, CHF and GPF"). The clocks run 360 times as fast, so the gas meter wakes
every 5 s: it sleeps with its radio off, polls the hub's GPF on its schedule, runs what was queued for
it, and syncs the mirror the GPF answers reads from. Every command completes end to end through the DCC
and the CSP, is retried as the HAN says (each fragment until the link acknowledges it; a lost answer
handed again gets the meter's kept answer), and none is applied twice."""
import time

import pytest

from meterfw import authorisation, der, esme_host, gas_host, gbcs, gbcs_host, gsme, pipeline, roles
from meterlab.boards.virtual import VirtualBoard, VirtualRadio
from meterlab.client import BoardClient
from meterlab.commission import commission_site
from meterlab.csp import Csp
from meterlab.dcc.anomaly import Thresholds
from meterlab.dcc.service import QUEUED, ROUTED, Dcc, command_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual
PASSPHRASE = "gas"
SCALE = 360  # a 30-minute sleep lasts 5 s
START = 1_795_564_800 + 600  # 2026-11-25 00:10 UTC, meter time: the test stays inside one meter day
WAKE_REAL_S = gsme.WAKE_INTERVAL_S / SCALE
CLOCK = [0.0, START, SCALE]  # (real, start, scale): every board's --clock, set when the boards start


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("gas")
    log = open(home / "boards.log", "w")
    radio = VirtualRadio(log=log, seed=23, loss=0.1, delay_ms="2:15")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    supplier = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    device_ca = smki.create_device_ca("site", 3, shares)
    CLOCK[0] = time.time()
    clock = tuple(CLOCK)
    boards = {
        "chf": VirtualBoard(home / "chf", board="esp32-s3-devkitc", radio=radio.address, log=log, clock=clock),
        "esme": VirtualBoard(home / "esme", board="esp32", radio=radio.address, log=log, clock=clock,
                             load_watts=3_600),
        "gsme": VirtualBoard(home / "gsme", board="rp2040", radio=radio.address, log=log, clock=clock),
    }
    csp = Csp({}, max_online=4, max_per_second=200, timeout=60.0)
    # the DCC lets a supplier read its GPFs 20,000 times a day (the default per code is 10,000)
    thresholds = Thresholds.defaults_with(per_user={"0x00A0": 20_000})
    dcc = Dcc(home / "dcc", smki, PASSPHRASE, csp, thresholds=thresholds)
    try:
        for board in boards.values():
            board.start()
        ids = commission_site(boards, smki, device_ca, parties, dcc.register)  # the gas meter paired with its hub
        # the hub (its GPF) is reached on its own port; the meters only through it
        csp.endpoints[ids["chf"]] = boards["chf"].url
        csp.endpoints[ids["esme"]] = (boards["chf"].url, boards["esme"].address)
        csp.endpoints[ids["gsme"]] = (boards["chf"].url, boards["gsme"].address)
        yield {"dcc": dcc, "csp": csp, "boards": boards, "ids": ids, "supplier": supplier, "radio": radio}
    finally:
        csp.close()
        dcc.close()
        for board in boards.values():
            board.kill()
        radio.stop()


def collect(dcc, meter, result, wakes=6):
    """The queued command's answer, once the gas meter has polled (within a few of its wakes)."""
    assert result.status == QUEUED, result
    deadline = time.monotonic() + wakes * WAKE_REAL_S + 10
    while time.monotonic() < deadline:
        answer = dcc.collect(meter, result.ticket)
        if answer.status != QUEUED:
            return answer
        time.sleep(0.5)
    pytest.fail(f"the gas meter did not answer ticket {result.ticket} within {wakes} wakes")


def meter_time():
    """Now on the boards' clock (hal.virtual's unix_time with the same --clock)."""
    return START + (time.time() - CLOCK[0]) * SCALE


def ledger(board):
    with BoardConnection(board.url, timeout=30.0) as connection:
        return BoardClient(connection).ledger()


def status(board):
    with BoardConnection(board.url, timeout=30.0) as connection:
        return BoardClient(connection).status()


def test_the_supplier_works_all_three_through_the_hub(site):
    dcc, supplier, ids, boards = site["dcc"], site["supplier"], site["ids"], site["boards"]
    gas_id = ids["gsme"]
    # the hub and the electricity meter answer at once; the gas meter's change of supplier waits for a poll
    assert dcc.change_supplier(ids["chf"], supplier).status == ROUTED
    assert dcc.change_supplier(ids["esme"], supplier).status == ROUTED
    owned = collect(dcc, gas_id, dcc.change_supplier(gas_id, supplier))  # a 1.2 KB CS02b: five fragments
    assert (owned.status, owned.reason) == (ROUTED, pipeline.ACCEPT), owned
    assert dcc.owner(gas_id) == supplier.eui64

    def keys(meter):
        return supplier.keys.exchange("meter-ka", commands.device_keys(dcc.register.device(meter))[2])

    def submit(meter, code, payload=der.EMPTY):
        return dcc.submit(command_request(supplier, meter, code, payload))

    # the electricity meter: a read and a tariff through the hub, at once
    z = keys(ids["esme"])
    tariff = [(0, 12_000), (34, 30_000)]
    for code, payload in ((authorisation.READ_IMPORT_REGISTERS, esme_host.read()), (authorisation.TARIFF,
                                                                                    esme_host.tariff(tariff))):
        result = submit(ids["esme"], code, payload)
        assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), result
    answer = gbcs.parse(submit(ids["esme"], authorisation.READ_IMPORT_REGISTERS, esme_host.read()).response)
    assert gbcs.verify_mac(answer, z) and esme_host.parse_read(gbcs_host.decrypt_content(z, answer)).tariff == tariff

    # the gas meter: a read and a valve close, queued at the hub and run at its next poll
    z_gas = keys(gas_id)
    read = collect(dcc, gas_id, submit(gas_id, authorisation.READ_GAS_REGISTER))
    assert (read.status, read.reason) == (ROUTED, pipeline.ACCEPT)
    frame = gbcs.parse(read.response)
    assert gbcs.verify_mac(frame, z_gas)
    _, litres, valve_open = gas_host.parse_register_read(gbcs_host.decrypt_content(z_gas, frame))
    assert valve_open
    close = collect(dcc, gas_id, submit(gas_id, authorisation.VALVE_CLOSE))
    assert (close.status, close.reason) == (ROUTED, pipeline.ACCEPT)
    assert boards["gsme"].gpio() == {"valve": 0}

    # the GPF answers from its mirror, at once, and says how old it is; the gas meter is not woken
    gas_status_before = status(boards["gsme"])
    time.sleep(WAKE_REAL_S + 1)  # a poll after the close: the mirror shows the valve shut
    mirror_read = submit(ids["chf"], authorisation.READ_GPF)
    assert (mirror_read.status, mirror_read.reason) == (ROUTED, pipeline.ACCEPT)
    z_hub = keys(ids["chf"])
    content = gbcs_host.decrypt_content(z_hub, gbcs.parse(mirror_read.response))
    age, _, mirrored_litres, mirrored_open = gas_host.parse_gpf_read(content)
    assert 0 <= age <= 2 * gsme.WAKE_INTERVAL_S
    assert mirrored_litres >= litres and not mirrored_open
    assert status(boards["gsme"]) == gas_status_before

    # none applied twice: the gas meter accepted its three commands once each, whatever the radio lost
    accepted, _ = status(boards["gsme"])
    assert accepted == 3
    assert dcc.collect(gas_id, close.ticket).status == "refused"  # collected: the DCC holds nothing more


def test_a_flood_of_reads_is_answered_by_the_gpf_and_costs_the_gas_meter_nothing(site):
    # 10,000 reads of the gas meter through the DCC within a simulated day: the hub's GPF answers each from
    # its mirror; the meter keeps its schedule, and what a wake costs it is what it cost without the flood.
    from meterfw import ledger as ops
    from meterlab.power.battery import LI_SOCL2_D_19AH, life_years
    from meterlab.power.gas_day import WAKES_A_DAY
    from meterlab.power.profile import PowerProfile

    dcc, supplier, ids, boards = site["dcc"], site["supplier"], site["ids"], site["boards"]
    if dcc.owner(ids["chf"]) != supplier.eui64:
        assert dcc.change_supplier(ids["chf"], supplier).status == ROUTED
    gas = boards["gsme"]

    def snapshot():
        book = ledger(gas)
        # a ledger starts afresh each meter day: the windows must stay inside one (START is 00:10)
        assert book.day == START // 86_400, "the test ran past the gas meter's day; its windows are too long"
        return meter_time(), book.by_operation

    def a_wake(first, last):
        """{operation: count} a wake in the window between two snapshots, checking the schedule."""
        counts = {op: last[1][op][0] - first[1][op][0] for op in ops.OPERATIONS}
        wakes, window = counts[ops.WAKE], last[0] - first[0]
        assert window / gsme.WAKE_INTERVAL_S - 2 <= wakes <= window / gsme.WAKE_INTERVAL_S + 1  # its schedule
        return {op: count / wakes for op, count in counts.items()}, wakes

    quiet_start = snapshot()
    time.sleep(5 * WAKE_REAL_S)
    flood_start = snapshot()
    quiet, quiet_wakes = a_wake(quiet_start, flood_start)

    z_hub = supplier.keys.exchange("meter-ka", commands.device_keys(dcc.register.device(ids["chf"]))[2])
    answered = 0
    for _ in range(40):
        batch = [command_request(supplier, ids["chf"], authorisation.READ_GPF, der.EMPTY) for _ in range(250)]
        for result in dcc.submit_batch(batch):
            assert (result.status, result.reason) == (ROUTED, pipeline.ACCEPT), result
            frame = gbcs.parse(result.response)
            assert gbcs.verify_mac(frame, z_hub)
            content = gbcs_host.decrypt_content(z_hub, frame)
            age = gas_host.parse_gpf_read(content)[0]  # ValueError unless its status is 0
            assert age <= 2 * gsme.WAKE_INTERVAL_S  # the mirror is at most a poll old
            answered += 1
    flood_end = snapshot()
    assert answered == 10_000
    assert flood_end[0] - flood_start[0] < 86_400  # within one simulated day
    flood, flood_wakes = a_wake(flood_start, flood_end)
    assert flood[ops.MAC_CHECK] == flood[ops.SIGNATURE_VERIFY] == 0  # nothing of the flood reached the meter

    # The projection: a day is WAKES_A_DAY such wakes. Priced on the board it ran on (a Pico, its RP2040
    # asleep at 0.18 mA) and on an ESP32 module (asleep at 10 uA, the production-like profile), each as a
    # production meter and as the dev board.
    report = {}
    for board in (gas.board["board"], "esp32-devkitc"):
        profile = PowerProfile.of(board)
        costs = profile.costs_uj()
        for name, wake in (("quiet", quiet), ("flood", flood)):
            day_uj = WAKES_A_DAY * sum(costs[op] * count for op, count in wake.items())
            report[board, name] = [life_years(LI_SOCL2_D_19AH, day_uj, profile.supply_v, profile.sleep_ma(dev))
                                   for dev in (False, True)]
    print(f"a wake: {quiet} quiet ({quiet_wakes} wakes), {flood} in the flood ({flood_wakes} wakes, "
          f"{flood_end[0] - flood_start[0]:.0f} s of meter time); years (production, dev board): {report}")
    for board in (gas.board["board"], "esp32-devkitc"):
        for without, with_flood in zip(report[board, "quiet"], report[board, "flood"]):
            assert abs(with_flood - without) / without < 0.01
    production, dev_board = report["esp32-devkitc", "flood"]
    assert production >= 15 and dev_board < 1  # and the dev board's own sleep current says why it is no meter
