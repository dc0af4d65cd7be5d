"""A battery gas meter's days in energy (meterlab.power.gas_day) and the bound a critical flood meets: the
DCC's thresholds let a handful of valve closes through, the ledger pays at most its reserve for them, and
the worst day the design allows still leaves an ESP32 module's battery 15 years. The meter here is the
firmware core in this process (tests/fleet.py) behind the real DCC; test_gas_virtual does the same on
virtual boards."""
import json
import subprocess
import sys

import pytest

from meterlab.attack.fleet import Fleet, InProcessMeter
from meterfw import authorisation, authorisation_names, der, gsme, ledger, pipeline, roles
from meterlab.dcc.anomaly import Thresholds
from meterlab.dcc.service import QUARANTINED, ROUTED, Dcc, command_request
from meterlab.power.battery import LI_SOCL2_D_19AH
from meterlab.power.gas_day import WAKES_A_DAY, frames_a_day_at_most, normal_day, project, worst_day
from meterlab.power.profile import PowerProfile
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties

PASSPHRASE = "gas budget"
NOW = 1_795_600_000


def test_the_days_of_a_gas_meter_and_the_life_they_give():
    costs = PowerProfile.of("esp32-devkitc").costs_uj()
    allowance, reserve = gsme.default_budget(costs)
    normal = normal_day(costs)
    assert WAKES_A_DAY == 48
    assert normal > WAKES_A_DAY * costs[ledger.WAKE]  # the wakes, and their radio bytes on top
    worst, frames = worst_day(costs, allowance, Thresholds())
    assert frames == WAKES_A_DAY * gsme.QUEUED_PER_WAKE  # by default the schedule binds before the thresholds
    assert worst > allowance + normal  # the allowance spent, and the largest frames heard
    tight = Thresholds({"window_seconds": 86400, "per_user": {"default": 5},
                        "total": {"0x0081": 5, "default": 10}})
    credential_codes = [code for code, *_ in authorisation_names.rows() if authorisation.runs("esme", code)
                        and authorisation.runs("gsme", code)]
    assert len(credential_codes) == 6
    # the valve closes, the reads, and each of the six CS02b codes every device runs
    assert frames_a_day_at_most(tight) == 5 + 10 + 6 * 10
    assert worst_day(costs, allowance, tight)[0] < worst

    report = project(PowerProfile.of("esp32-devkitc"), LI_SOCL2_D_19AH, Thresholds())
    days = report["days"]
    assert days["gpf_flood"]["uj_a_day"] == days["normal"]["uj_a_day"]  # the GPF answers; the meter sleeps
    assert days["normal"]["production_years"] >= 15 and days["worst_thresholds_allow"]["production_years"] >= 15
    assert days["normal"]["dev_board_years"] < 1  # a DevKitC's regulator and USB bridge asleep: 3.8 mA
    assert "Table 8" in report["sleep_sources"]["production"]
    # an RP2040 asleep draws 0.18 mA: no battery meter on it lasts 15 years, and the report says so
    pico = project(PowerProfile.of("rpi-pico"), LI_SOCL2_D_19AH, Thresholds())["days"]["normal"]
    assert 5 < pico["production_years"] < 15


def test_the_battery_report_on_the_command_line(tmp_path):
    out = tmp_path / "battery.json"
    run = subprocess.run([sys.executable, "-m", "meterlab", "battery", "--board", "esp32-devkitc", "--json", str(out)],
                         capture_output=True, text=True, check=True)
    assert "worst_thresholds_allow" in run.stdout and "times less" in run.stdout
    report = json.loads(out.read_text())
    assert set(report["days"]) == {"normal", "gpf_flood", "worst_thresholds_allow"}
    refused = subprocess.run([sys.executable, "-m", "meterlab", "battery"], capture_output=True, text=True)
    assert refused.returncode != 0 and "--board NAME" in refused.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    home = tmp_path_factory.mktemp("gas-budget")
    smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
    parties = create_dcc_parties(smki, PASSPHRASE)
    supplier = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
    fleet = Fleet()
    clock = [NOW]
    dcc = Dcc(home / "dcc", smki, PASSPHRASE, fleet, Thresholds(), clock=lambda: clock[0])
    meter = fleet.add(InProcessMeter(bytes.fromhex("00db1234567890a1"), smki,
                                     smki.create_device_ca("gas", 1, shares), parties, dcc.register, role="gsme",
                                     clock=lambda: clock[0]))
    assert dcc.change_supplier(meter.device_id, supplier).status == ROUTED
    yield dcc, meter, supplier, clock
    dcc.close()


def test_a_critical_flood_stops_at_the_thresholds_and_the_reserve(site):
    dcc, meter, supplier, clock = site
    energy = meter.meter.ledger
    clock[0] += 86_400  # a new day: the change of supplier's verify was yesterday's
    closes = [dcc.submit(command_request(supplier, meter.device_id, authorisation.VALVE_CLOSE, der.EMPTY))
              for _ in range(50)]
    routed = [r for r in closes if r.status == ROUTED]
    assert len(routed) == 5 and sum(r.status == QUARANTINED for r in closes) == 45  # the DCC's threshold
    # the five the thresholds let through are paid (each a MAC check, a verify and the valve): critical work
    # may spend the whole allowance, the reserve included, and nothing beyond it
    close = sum(energy.costs[op] for op in (ledger.MAC_CHECK, ledger.SIGNATURE_VERIFY, ledger.VALVE))
    assert [r.reason for r in routed] == [pipeline.ACCEPT] * 5 and meter.relay[-1] is False
    assert energy.spent_critical == 5 * close <= energy.allowance
    # what the thresholds let through leaves the reserve whole, for a close that must still happen today
    assert energy.left(critical=True) - energy.left() == energy.reserve
    # reads spend what is left above it, and then are refused before their MAC check; the reserve stands
    reasons = [dcc.submit(command_request(supplier, meter.device_id, authorisation.READ_GAS_REGISTER, der.EMPTY)).reason
               for _ in range(int(energy.left() / energy.costs[ledger.MAC_CHECK]) + 3)]
    assert reasons[-1] == pipeline.REJECT_ENERGY and pipeline.ACCEPT in reasons
    assert energy.left(critical=True) >= energy.reserve - energy.costs[ledger.MAC_CHECK]
    # the worst day the thresholds allow, from the report: still 15 years on an ESP32 module
    report = project(PowerProfile.of("esp32-devkitc"), LI_SOCL2_D_19AH, dcc.detector.thresholds)
    assert report["days"]["worst_thresholds_allow"]["uj_a_day"] >= energy.spent
    assert report["days"]["worst_thresholds_allow"]["production_years"] >= 15


def test_a_wakes_share_of_the_air_fits_its_frames():
    from meterfw import gsme_poll, han

    # the hub's first answer, paid whatever the day has left, fits the largest QUEUED message; a full
    # wake's frames fit its share: QUEUED_PER_WAKE + 1 of the largest, each in full fragments
    largest = len(han.fragments(1, bytes(1 + 4 + 2047))) * han.LINK_MAX_FRAME
    assert largest <= gsme_poll.FIRST_ANSWER_BYTES
    assert (gsme.QUEUED_PER_WAKE + 1) * largest <= gsme_poll.MAX_HEARD_A_WAKE
