"""`make demo` as a new user runs it: it completes and shows each step it claims."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.virtual


def test_demo_runs_every_step(tmp_path):
    result = subprocess.run([sys.executable, "-m", "meterlab", "demo", "--workdir", str(tmp_path / "demo")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in ("registered with the DCC: device", "device CA key destroyed after its quota: True",
                     "esme: owned by SUPPLIER A; the meter's signed answer verified",
                     "gsme: owned by SUPPLIER A", "esme heard 'hello esme'", "gsme heard nothing: asleep",
                     "demo complete in"):
        assert expected in out, expected
    assert out.count("registered with the DCC") == 3
