"""The boards' power profiles (every number with its source), what the ledger charges on each board, and
the battery projection's arithmetic."""
import json

import pytest

from meterfw import ledger
from meterlab.boards import descriptions
from meterlab.boards.descriptions import BoardDescriptionError, available_boards, for_flash, load_board
from meterlab.power.battery import LI_SOCL2_D_19AH, Battery, daily_mah, life_years
from meterlab.power.profile import CURRENTS, DURATIONS, PowerProfile


@pytest.mark.parametrize("name", available_boards())
def test_every_board_has_a_whole_power_profile_with_sources(name):
    profile = PowerProfile.of(name)
    assert set(profile.currents_ma) >= set(CURRENTS) and set(profile.durations_ms) >= set(DURATIONS)
    assert profile.sleep_ma(dev_board=True) > 4 * profile.sleep_ma()  # a dev board sleeps hungrier, by far
    estimates = [key for key, source in profile.sources.items() if source.startswith("estimate")]
    assert "durations_ms.signature_verify" in estimates  # what is not measured says so
    costs = profile.costs_uj()
    book = ledger.EnergyLedger(costs, 10_000_000, 2_000_000, lambda: 0)  # the board's ledger takes them
    assert book.cost(ledger.VALVE) == 720_000


def test_what_the_ledger_charges_on_a_devkitc():
    # 27 mA x 3.3 V x 400 ms = 35,640 uJ to wake; a byte on ESP-NOW 240 mA x 3.3 V x 11.6 us, rounded up
    assert PowerProfile.of("esp32-devkitc").costs_uj() == {
        ledger.WAKE: 35_640, ledger.RADIO_TX_BYTE: 10, ledger.RADIO_RX_BYTE: 4, ledger.MAC_CHECK: 1_337,
        ledger.SIGNATURE_VERIFY: 22_275, ledger.VALVE: 720_000}


def test_a_profile_without_its_sources_is_refused(tmp_path, monkeypatch):
    description = load_board("esp32-devkitc")
    del description["power"]["sources"]["currents_ma.deep_sleep"]
    description["power"]["durations_ms"]["wake"] = -1
    (tmp_path / "esp32-devkitc.json").write_text(json.dumps(description))
    monkeypatch.setattr(descriptions, "BOARDS_DIR", tmp_path)
    with pytest.raises(BoardDescriptionError) as error:
        PowerProfile.of("esp32-devkitc")
    assert "currents_ma.deep_sleep has no source" in str(error.value)
    assert "durations_ms.wake is not a positive number" in str(error.value)


def test_a_board_keeps_the_numbers_not_the_prose():
    on_flash = json.loads(for_flash(load_board("esp32-devkitc")))
    assert "sources" not in on_flash["power"] and "name" not in on_flash and "heap_source" not in on_flash
    assert on_flash["power"]["currents_ma"]["deep_sleep"] == 0.01 and on_flash["pins"]["supply_relay"] == 2


def test_battery_life_arithmetic():
    # asleep at 10 uA all day: 0.24 mAh a day, 87.7 mAh a year, and 190 mAh a year of self-discharge
    assert daily_mah(0, 3.3, 0.010) == pytest.approx(0.24)
    assert life_years(LI_SOCL2_D_19AH, 0, 3.3, 0.010) == pytest.approx(17_100 / (87.66 + 190), rel=1e-4)
    # 48 wakes of 35,640 uJ at 3.3 V: 0.144 mAh a day more
    assert daily_mah(48 * 35_640, 3.3, 0.0) == pytest.approx(0.144, rel=1e-3)
    module = life_years(LI_SOCL2_D_19AH, 48 * 35_640, 3.3, 0.010)
    dev_board = life_years(LI_SOCL2_D_19AH, 48 * 35_640, 3.3, 3.8)
    assert module == pytest.approx(51.8, abs=0.1) and dev_board == pytest.approx(0.51, abs=0.01)
    perfect = Battery("ideal", 1000, 3.6, 0.0, 1.0, "a test cell")
    assert life_years(perfect, 0, 3.3, 1000 / 24 / 365.25) == pytest.approx(1.0)
