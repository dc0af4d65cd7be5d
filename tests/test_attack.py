"""`meterlab attack`: every scenario runs end to end and its expected outcome is asserted, on virtual
boards and in fleet mode; a claim that fails makes the run fail."""
import json

import pytest

from meterlab.attack import scenarios
from meterlab.cli import main


@pytest.mark.virtual
def test_every_scenario_holds_on_virtual_boards(tmp_path, capsys):
    out = tmp_path / "outcomes.json"
    assert main(["attack", "run", "all", "--meters", "3", "--threshold", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    outcomes = {o["name"]: o for o in report["outcomes"]}
    assert set(outcomes) == {s.name for s in scenarios.SCENARIOS}
    assert all(o["held"] and o["claims"] for o in outcomes.values()), capsys.readouterr().out
    flood = outcomes["compromised-supplier"]["numbers"]
    assert (flood["meters_affected"], flood["blocked_at_dcc"], flood["alarms"]) == (2, 1, 1)
    assert outcomes["dcc-bypass"]["numbers"]["meters_affected"] == 0
    assert outcomes["dcc-bypass"]["numbers"]["blocked_at_meters"] == 3
    assert outcomes["replay"]["numbers"]["replays_accepted"] == 0
    assert any("bad MAC +1" in line for line in outcomes["dcc-bypass"]["evidence"])
    assert outcomes["everything-compromised"]["numbers"]["meters_affected"] == 3  # no threshold helps then
    assert outcomes["everything-compromised"]["numbers"]["meters_an_hour_per_hub_online"] > 100_000
    assert outcomes["key-recovered"]["numbers"]["stolen_key_accepted_after"] == 0
    drain = outcomes["battery-drain"]["numbers"]
    assert drain["reads_refused_for_energy"] > 0 and drain["closes_run_by_the_meter"] >= 1
    assert drain["life_years_flood_every_day"] < drain["life_years_normal"]


def test_fleet_mode_runs_the_same_scenarios_in_this_process(tmp_path, capsys):
    out = tmp_path / "fleet.json"
    assert main(["attack", "run", "all", "--backend", "fleet", "--meters", "12", "--threshold", "4",
                 "--json", str(out)]) == 0
    outcomes = {o["name"]: o for o in json.loads(out.read_text())["outcomes"]}
    flood = outcomes["compromised-supplier"]["numbers"]
    assert (flood["meters"], flood["meters_affected"], flood["blocked_at_dcc"]) == (12, 4, 8)
    assert outcomes["consent"]["not_run"] == "runs on virtual boards only" and not outcomes["consent"]["held"]
    assert all(o["held"] for name, o in outcomes.items() if name != "consent")
    assert "9 held, 0 failed, 1 not run (backend: fleet)" in capsys.readouterr().out


def test_below_the_threshold_every_meter_is_hit_and_no_alarm_is_raised(tmp_path):
    outcome = scenarios.run("compromised-supplier", tmp_path, meters=3, backend="fleet", threshold=5)
    assert outcome.held and outcome.numbers["meters_affected"] == 3 and outcome.numbers["alarms"] == 0


def test_a_claim_that_fails_fails_the_run(tmp_path, monkeypatch, capsys):
    def wrong(site, options, outcome):
        outcome.claim("a meter disconnected by nobody", site.supply_off(site.meters[0]))

    broken = scenarios.Scenario("broken", "a claim that does not hold", "none", wrong)
    monkeypatch.setattr(scenarios, "SCENARIOS", scenarios.SCENARIOS + (broken,))
    assert main(["attack", "run", "broken", "--backend", "fleet", "--meters", "1"]) == 1
    assert "\u2717 a meter disconnected by nobody" in capsys.readouterr().out


def test_the_list_names_each_scenario_and_its_property(capsys):
    assert main(["attack", "list"]) == 0
    listing = capsys.readouterr().out
    for scenario in scenarios.SCENARIOS:
        assert scenario.name in listing and scenario.property in listing


def test_the_html_report_lists_each_scenario_its_property_outcome_and_evidence(tmp_path):
    page = tmp_path / "attacks.html"
    assert main(["attack", "run", "all", "--backend", "fleet", "--meters", "4", "--html", str(page)]) == 0
    text = page.read_text()
    for scenario in scenarios.SCENARIOS:
        assert scenario.name in text and scenario.property.split(":")[0] in text
    assert "9 held, 0 failed, 1 not run." in text and "DCC alarm" in text and "not run: runs on virtual" in text


def test_the_sweep_shows_affected_meters_growing_with_the_threshold(tmp_path, capsys):
    from PIL import Image

    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    assert main(["attack", "sweep", "--meters", "300", "--thresholds", "1,10,1000", "--json", str(out),
                 "--plot", str(png)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["threshold"], r["meters_affected"], r["blocked_at_dcc"], r["alarms"]) for r in rows] == [
        (1, 1, 299, 1), (10, 10, 290, 1), (1000, 300, 0, 0)]
    with Image.open(png) as image:
        image.load()
        assert image.size[0] > 300
    assert "threshold" in capsys.readouterr().out


def test_every_outcome_counts_the_meters_affected(tmp_path):
    for scenario in scenarios.SCENARIOS:
        if "fleet" in scenario.backends:
            outcome = scenarios.run(scenario.name, tmp_path / scenario.name, meters=3, backend="fleet")
            assert "meters_affected" in outcome.numbers and any(key.startswith("blocked") for key in outcome.numbers), \
                scenario.name
