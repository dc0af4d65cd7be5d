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


def test_meterlab_deploy_builds_copies_verifies_and_leaves_a_board_that_answers_ping(tmp_path, capsys):
    from meterfw import __version__
    from meterlab.cli import main

    # a board with MicroPython and nothing else on it, as `meterlab flash` leaves one
    with VirtualBoard(tmp_path / "board", board="esp32-devkitc", deploy=False,
                      log=open(tmp_path / "log", "w")) as board:
        assert main(["deploy", board.url, "--role", "gsme", "--board", "esp32-devkitc"]) == 0
        out = capsys.readouterr()
        assert "verified" in out.out and "role=gsme" in out.out and f"firmware={__version__}" in out.out

        flash = tmp_path / "board" / "flash"
        assert (flash / "meterfw" / "pipeline.mpy").is_file() and (flash / "main.py").is_file()
        assert (flash / "board.json").is_file()
        with BoardConnection(board.url, timeout=5) as connection:
            pong = BoardClient(connection).ping()
        assert (pong.role, pong.board) == ("gsme", "esp32-devkitc")

        # a later deploy without --board finds the board's name where this one left it
        from meterlab.boards.deploy import board_on

        assert board_on(board.url) == "esp32-devkitc"


def test_meterlab_deploy_refuses_a_board_it_cannot_name(tmp_path, capsys):
    from meterlab.cli import main

    with VirtualBoard(tmp_path / "board", board="esp32-devkitc", deploy=False,
                      log=open(tmp_path / "log", "w")) as board:
        assert main(["deploy", board.url, "--role", "esme"]) == 1
        assert "name the board with --board" in capsys.readouterr().err
        assert not (tmp_path / "board" / "flash" / "main.py").exists()
