"""The power report (meterlab.power.report) and `meterlab power` end to end through argparse, as the
`meterlab` command would call it (meterlab.power.cli)."""
import argparse
import json

import pytest
from matplotlib import image

from meterlab.power.cli import add_power_commands
from meterlab.power.profile import PowerProfile

PNG = b"\x89PNG\r\n\x1a\n"


def run(*argv):
    parser = argparse.ArgumentParser(prog="meterlab")
    add_power_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


@pytest.fixture
def capture(tmp_path):
    trace, events = tmp_path / "capture.csv", tmp_path / "events.csv"
    assert run("power", "synthesize", "--board", "esp32-devkitc", "--format", "ppk2", "--out", str(trace),
               "--events", str(events), "--seed", "5", "--noise-ua", "30") == 0
    return trace, events


def test_import_calibrate_and_report_from_the_command_line(tmp_path, capture, capsys):
    trace, events = capture
    npz = tmp_path / "capture.npz"
    assert run("power", "import", str(trace), "--out", str(npz)) == 0
    summary = capsys.readouterr().out
    assert "ppk2" in summary and "samples/s" in summary and "mC" in summary and npz.is_file()

    assert run("power", "calibrate", str(npz), "--events", str(events), "--board", "esp32-devkitc",
               "--json", str(tmp_path / "cal.json")) == 0
    table = capsys.readouterr().out
    assert "offset (instrument - board) +3.21" in table and "RMS residual" in table and "signature_verify" in table
    saved = json.loads((tmp_path / "cal.json").read_text())
    costs = PowerProfile.of("esp32-devkitc").costs_uj()
    for op, row in saved["operations"].items():  # synthesized at the profile's own costs
        assert row["fitted_uj"] == pytest.approx(costs[op], rel=0.05) and row["ratio"] == pytest.approx(1, rel=0.05)

    out = tmp_path / "report"
    assert run("power", "report", str(npz), "--events", str(events), "--board", "esp32-devkitc",
               "--out", str(out)) == 0
    page = (out / "report.html").read_text()
    for name in ("current.png", "energy.png", "battery.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG), name
        pixels = image.imread(out / name)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600 and pixels.std() > 0.01, name  # drawn, not blank
        assert f'src="{name}"' in page
    for said in ("esp32-devkitc", "capture.csv", "events.csv", "Clock offset", "RMS residual", "Table 8",
                 "worst the thresholds allow", "production meter"):
        assert said in page, said


def test_errors_are_one_line_and_exit_code_2(tmp_path, capture, capsys):
    trace, events = capture
    bad = tmp_path / "bad.csv"
    bad.write_text("volts,amps\n1,2\n")
    assert run("power", "import", str(bad)) == 1
    error = capsys.readouterr().err
    assert error.startswith("meterlab power: ") and "bad.csv, line 1" in error and error.count("\n") == 1
    assert run("power", "calibrate", str(trace), "--events", str(events), "--board", "no-such-board") == 1
    assert "unknown board" in capsys.readouterr().err
    assert run("power", "report", str(trace), "--events", str(bad), "--board", "esp32-devkitc",
               "--out", str(tmp_path / "r")) == 1
    assert "the header must be time_s,operation,count" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
