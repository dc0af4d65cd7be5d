"""`make demo` as a new user runs it: it completes, every step's checks pass, and what it says it wrote
is there: the power report's plots render, the battery projection and the session's capture exist."""
import json
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.virtual

STEPS = ("three virtual boards", "the SMKI", "commissioning", "supplier A takes ownership",
         "A reads the electricity meter and sets a time-of-use tariff", "a third party reads consumption only",
         "supplier B takes the electricity meter over; A is locked out", "B is compromised",
         "A closes the gas valve", "the gas meter's battery", "every GBCS frame of the session")


def test_demo_tells_every_step_and_passes_each_check(tmp_path):
    workdir = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "meterlab", "demo", "--workdir", str(workdir)],
                            capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    headers = re.findall(r"^== (\d+)\. (.*?)  \[", out, re.M)
    assert [int(n) for n, _ in headers] == list(range(1, len(STEPS) + 1))
    for (_, header), expected in zip(headers, STEPS):
        assert header.startswith(expected), (header, expected)
    passes = out.count("\u2713")
    done = re.search(r"demo complete: (\d+) checks passed", out)
    assert done and int(done.group(1)) == passes >= 30 and "\u2717" not in out
    for claim in ("without consent the meter refuses it", "the meter no longer knows A",
                  "an alarm was raised", "the gas meter verified A's signature and closed its valve",
                  "calibration recovers every operation's cost within"):
        assert claim in out, claim

    from PIL import Image

    pngs = sorted((workdir / "power-report").glob("*.png"))
    assert len(pngs) == 3 and (workdir / "power-report" / "report.html").is_file()
    for png in pngs:
        with Image.open(png) as image:
            image.load()  # decodes every pixel: a file that does not render fails here
            assert image.size[0] > 100 and image.size[1] > 100
    battery = json.loads((workdir / "battery.json").read_text())
    assert battery["days"]["normal"]["production_years"] > 0
    assert (workdir / "events.csv").read_text().startswith("time_s,operation,count\n")
    assert (workdir / "serial.pcapng").stat().st_size > 1000
