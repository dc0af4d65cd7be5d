"""The firmware's unit tests (tests/firmware/test_*.py), run a second time on real MicroPython.

Under CPython pytest collects those modules directly. Here each module runs inside the virtual board's
MicroPython (WebAssembly) with the smallest supported board's GC heap, over a flash holding the firmware
exactly as deployed; a test that fails there, or a module that does not import there, fails here."""
import re
import shutil
import subprocess

import pytest

from meterlab.boards.descriptions import available_boards, load_board
from meterlab.boards.virtual import VirtualBoardError, check_harness
from meterlab.paths import FIRMWARE_DIR, REPO_ROOT, VIRTUAL_HARNESS_DIR

FIRMWARE_TESTS = REPO_ROOT / "tests" / "firmware"
MODULES = sorted(p.stem for p in FIRMWARE_TESTS.glob("test_*.py"))
SMALLEST_HEAP = min(load_board(name)["heap_bytes"] for name in available_boards())


def test_there_are_firmware_tests():
    assert MODULES, "tests/firmware/ holds no test_*.py modules"


@pytest.fixture(scope="module")
def micropython_flash(tmp_path_factory):
    try:
        check_harness()
    except VirtualBoardError as error:
        pytest.fail(str(error))  # the virtual board is part of the suite, not an optional extra
    state = tmp_path_factory.mktemp("mp-tests")
    flash = state / "flash"
    shutil.copytree(FIRMWARE_DIR, flash, ignore=shutil.ignore_patterns("__pycache__", "main.py"))
    for source in FIRMWARE_TESTS.glob("*.py"):
        shutil.copy(source, flash / source.name)
    return state


@pytest.mark.virtual
@pytest.mark.parametrize("module", MODULES)
def test_module_passes_on_micropython(module, micropython_flash):
    result = subprocess.run(
        ["node", str(VIRTUAL_HARNESS_DIR / "board.mjs"), "--state", str(micropython_flash),
         "--heap", str(SMALLEST_HEAP), "--test", module],
        capture_output=True, text=True, timeout=240,
    )
    output = result.stdout + result.stderr
    done = re.search(r"^DONE (\d+) tests, (\d+) failed", output, re.M)
    assert done, f"{module} did not finish on MicroPython:\n{output}"
    ran, failed = int(done.group(1)), int(done.group(2))
    assert ran > 0, f"{module} has no test_* functions"
    assert failed == 0 and result.returncode == 0, f"{module} on MicroPython:\n{output}"
    passed = re.findall(r"^PASS (\w+)", output, re.M)
    assert len(passed) == ran, output
