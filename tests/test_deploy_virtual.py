"""Deploying the firmware as a lab deploys it to a real board (mpy-cross, mpremote, SHA-256 check), here
to a virtual board: the .mpy files mpy-cross makes load and run on real MicroPython."""
import subprocess
import sys

import pytest

from meterlab.boards.deploy import deploy
from meterlab.boards.firmware import ARCHES, build
from meterlab.boards.virtual import VirtualBoard
from meterlab.client import BoardClient
from meterlab.transport import BoardConnection

pytestmark = pytest.mark.virtual


@pytest.mark.parametrize("family", ["esp32", "rp2040"])
def test_deployed_mpy_firmware_runs_and_keeps_the_boards_config(tmp_path, family):
    build_dir = tmp_path / "build"
    build(ARCHES[family], build_dir)
    with VirtualBoard(tmp_path / "board", role="chf", board=family, log=open(tmp_path / "log", "w")) as board:
        written = deploy(board.url, build_dir)
        assert "meterfw/framing.mpy" in written and "main.py" in written

        where = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", board.url, "exec",
             "import meterfw.framing, json\nprint(meterfw.framing.__file__, json.load(open('config.json')))"],
            capture_output=True, text=True, timeout=60,
        )
        assert where.stdout.split(" ", 1) == ["meterfw/framing.mpy", "{'role': 'chf'}\n"], where.stderr
        flash = tmp_path / "board" / "flash"
        assert not (flash / "meterfw" / "framing.py").exists()  # no source left to shadow the .mpy

        with BoardConnection(board.url, timeout=5) as connection:
            assert BoardClient(connection).restart().role == "chf"
