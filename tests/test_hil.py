"""The HIL plugin (meterlab.hil) pointed at a board through a device path, as a lab points it at
/dev/ttyUSB0: here a virtual board's serial port behind a pseudo-terminal (meterlab.boards.pty_bridge).
The end-to-end suite (tests/hil) runs with that board as the ESME, wiped first, and the others virtual;
its JUnit XML says which board each test ran on."""
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from meterlab.boards.pty_bridge import PtyBridge
from meterlab.boards.virtual import VirtualBoard
from meterlab.client import BoardClient
from meterlab.paths import REPO_ROOT
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual


def test_the_end_to_end_suite_runs_on_a_board_at_a_device_path(tmp_path):
    with VirtualBoard(tmp_path / "esme", role="esme", board="esp32-devkitc", log=open(tmp_path / "log", "w")) as board:
        stale = tmp_path / "esme" / "flash" / "security"
        stale.mkdir(parents=True, exist_ok=True)
        (stale / "left-over").write_bytes(b"a previous run's state")  # the plugin's wipe removes it
        with PtyBridge(board.url) as bridge:
            assert bridge.path.startswith("/dev/")
            with BoardConnection(bridge.path, timeout=10) as connection:  # pyserial opens it as a port
                assert BoardClient(connection).ping().role == "esme"
            junit = tmp_path / "hil.xml"
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO_ROOT / "tests" / "hil"),
                 "--board", f"esme={bridge.path}", f"--junitxml={junit}"],
                capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
        assert run.returncode == 0, run.stdout + run.stderr
        assert not (stale / "left-over").exists()

    cases = ElementTree.parse(junit).getroot().iter("testcase")
    ran_on = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
    assert len(ran_on) == 8 and all(not case.find("failure") for case in ElementTree.parse(junit).iter("testcase"))
    assert ran_on["test_a_replayed_command_is_refused[esme]"]["board.esme"] == bridge.path
    assert ran_on["test_a_replayed_command_is_refused[gsme]"]["board.gsme"] == "virtual"


def test_a_bad_board_option_stops_the_run_at_once(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(REPO_ROOT / "tests" / "hil"), "--board", "meter=/dev/ttyUSB0"],
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert run.returncode == 4 and "unknown role 'meter'" in run.stderr
