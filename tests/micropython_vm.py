"""Running test modules inside the virtual board's MicroPython (boards/virtual/board.mjs --test), for the
tests that hold the firmware to the same checks on real MicroPython as under CPython."""
import json
import shutil
import subprocess

import pytest

from meterlab.boards.descriptions import available_boards, load_board
from meterlab.boards.virtual import VirtualBoardError, check_harness
from meterlab.paths import FIRMWARE_DIR, REPO_ROOT, VIRTUAL_HARNESS_DIR

SMALLEST_HEAP = min(load_board(name)["heap_bytes"] for name in available_boards())
MPRUNNER = REPO_ROOT / "tests" / "firmware" / "mprunner.py"


def require_harness():
    try:
        check_harness()
    except VirtualBoardError as error:
        pytest.fail(str(error))  # the virtual board is part of the suite, not an optional extra


def case_flash(state, checker, cases_file, cases):
    """state/flash with the firmware's meterfw, the test runner, checker (a module in tests/micropython)
    and the cases, one JSON object a line, in cases_file."""
    flash = state / "flash"
    shutil.copytree(FIRMWARE_DIR / "meterfw", flash / "meterfw", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(MPRUNNER, flash / MPRUNNER.name)
    shutil.copy(REPO_ROOT / "tests" / "micropython" / f"{checker}.py", flash)
    (flash / cases_file).write_text("".join(json.dumps(case) + "\n" for case in cases))
    return state


def run_module(state, module, timeout=900):
    """Run a test module on a fresh VM over state/flash; (output, exit code)."""
    result = subprocess.run(
        ["node", str(VIRTUAL_HARNESS_DIR / "board.mjs"), "--state", str(state), "--heap", str(SMALLEST_HEAP),
         "--test", module],
        capture_output=True, text=True, timeout=timeout,
    )
    return result.stdout + result.stderr, result.returncode
