"""Hardware in the loop: a pytest plugin that runs a test suite on real boards when it is given them, and
on virtual boards otherwise.

    pytest tests/hil --board esme=/dev/ttyUSB0 --board gsme=/dev/ttyACM0 --junitxml=hil.xml

A test asks for the `lab_boards` fixture and gets, for each role it names, a board's serial URL. A role
given with --board is that board (it must already run meterlab's firmware: `meterlab flash` then
`meterlab deploy PORT --role ROLE`); every other role is a virtual board started for the test module. So the
same tests run in `make test` on virtual boards and on a bench of real ones, and a lab can mix the two.

A real board given here is wiped at the start of each test module: every file on its flash that is not the
firmware, its board.json or its config.json (its keys, counters, anchors, meter records) is removed, and
the board restarted, so a run starts from a board as deploy left it. Never point it at a board in use.

JUnit XML is pytest's own `--junitxml FILE`; each test's report carries the boards it ran on (a property
per role: "virtual" or the port).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from meterfw.commissioning import BOARD_ROLES

# Run on a real board: remove everything but the firmware and the board's own description and config.
_WIPE_CODE = """\
import os
keep = {keep!r}
def walk(folder):
    for entry in os.ilistdir(folder or "."):
        path = (folder + "/" if folder else "") + entry[0]
        if entry[1] == 0x4000:
            walk(path)
            if not os.listdir(path) and path.split("/")[0] not in keep:
                os.rmdir(path)
        elif path not in keep:
            os.remove(path)
            print("wiped", path)
walk("")
"""


def pytest_addoption(parser):
    group = parser.getgroup("meterlab", "meterlab lab boards (hardware in the loop)")
    group.addoption("--board", action="append", default=[], metavar="ROLE=PORT",
                    help="run ROLE's tests on the real board at PORT (its serial port, or any pyserial URL); "
                         f"roles: {', '.join(BOARD_ROLES)}. Roles not given run on virtual boards. A board "
                         "given is wiped (keys, counters, records) at the start.")


def given_boards(config):
    """{role: port} from --board ROLE=PORT options; pytest.UsageError on a bad one."""
    boards = {}
    for option in config.getoption("board"):
        role, equals, port = option.partition("=")
        if not equals or not port:
            raise pytest.UsageError(f"--board {option}: give ROLE=PORT, e.g. --board esme=/dev/ttyUSB0")
        if role not in BOARD_ROLES:
            raise pytest.UsageError(f"--board {option}: unknown role {role!r} (roles: {', '.join(BOARD_ROLES)})")
        if role in boards:
            raise pytest.UsageError(f"--board {role}= is given twice")
        boards[role] = port
    return boards


def pytest_configure(config):
    if hasattr(config, "getoption") and config.getoption("board", None):
        given_boards(config)  # a bad option fails the run at once, before any test


class LabBoard:
    def __init__(self, role, url, virtual, home_url=None):
        self.role = role
        self.url = url
        self.virtual = virtual
        self.home_url = home_url  # a virtual ESME's in-home port; a real board's is a UART of its own

    def __repr__(self):
        return f"LabBoard({self.role}, {self.url}, {'virtual' if self.virtual else 'real'})"


class LabBoards:
    """A test module's boards, started (virtual) or wiped (real) on first use of a role."""

    def __init__(self, given, scratch, log):
        self._given = given
        self._scratch = Path(scratch)
        self._log = log
        self._boards = {}
        self._virtual = []

    def __getitem__(self, role):
        if role not in BOARD_ROLES:
            raise KeyError(role)
        if role not in self._boards:
            self._boards[role] = self._start(role)
        return self._boards[role]

    def _start(self, role):
        from meterlab.client import BoardClient
        from meterlab.transport import BoardConnection

        if role in self._given:
            url = self._given[role]
            wipe(url)
            with BoardConnection(url, timeout=10.0) as connection:
                pong = BoardClient(connection).restart(timeout=30.0)
            if pong.role != role:
                raise pytest.UsageError(f"--board {role}={url}: that board runs as {pong.role}; deploy it as "
                                        f"{role} first (meterlab deploy {url} --role {role})")
            return LabBoard(role, url, virtual=False)
        from meterlab.boards.virtual import VirtualBoard

        board = VirtualBoard(self._scratch / role, role=role, board="esp32-s3-devkitc", log=self._log,
                             home=(role == "esme"))
        self._virtual.append(board)
        board.start()
        return LabBoard(role, board.url, virtual=True, home_url=board.home_url)

    def started(self):
        """{role: LabBoard} of the roles used so far."""
        return dict(self._boards)

    def close(self):
        for board in self._virtual:
            board.kill()


def wipe(url, timeout_s=120.0):
    """Remove every non-firmware file from a real board's flash (see the module's doc)."""
    from meterlab.boards.deploy import run_mpremote
    from meterlab.boards.firmware import board_paths

    keep = {"board.json", "config.json", "boot.py", *board_paths()}
    keep |= {name.split("/")[0] for name in keep}  # the firmware's own folders stay
    run_mpremote(url, ["exec", _WIPE_CODE.format(keep=sorted(keep))], timeout_s, None)


@pytest.fixture(scope="module")
def lab_boards(request):
    # One set a test module: its virtual boards stop with it, and a real board starts each module wiped.
    given = given_boards(request.config)
    with tempfile.TemporaryDirectory(prefix="meterlab-hil-") as scratch:
        log = open(Path(scratch) / "boards.log", "w")
        boards = LabBoards(given, scratch, log)
        try:
            yield boards
        finally:
            boards.close()
            log.close()


@pytest.fixture(autouse=True)
def _report_the_boards(request):
    # Each test's JUnit record says which boards it ran on, for a CI run with a mix of real and virtual.
    yield
    if "lab_boards" in request.fixturenames:
        boards = request.getfixturevalue("lab_boards")
        for role, board in boards.started().items():
            request.node.user_properties.append((f"board.{role}", "virtual" if board.virtual else board.url))
