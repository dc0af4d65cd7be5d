"""The firmware's unit tests (tests/firmware/test_*.py), run a second time on real MicroPython.

Under CPython pytest collects those modules directly. Here each module runs inside the virtual board's
MicroPython (WebAssembly) with the smallest supported board's GC heap, over a flash holding the firmware
exactly as deployed; a test that fails there, or a module that does not import there, fails here."""
import re
import shutil

import pytest

from meterlab.paths import FIRMWARE_DIR, REPO_ROOT
from micropython_vm import require_harness, run_module

FIRMWARE_TESTS = REPO_ROOT / "tests" / "firmware"
MODULES = sorted(p.stem for p in FIRMWARE_TESTS.glob("test_*.py"))


def test_there_are_firmware_tests():
    assert MODULES, "tests/firmware/ holds no test_*.py modules"


@pytest.fixture(scope="module")
def micropython_flash(tmp_path_factory):
    require_harness()
    state = tmp_path_factory.mktemp("mp-tests")
    flash = state / "flash"
    shutil.copytree(FIRMWARE_DIR, flash, ignore=shutil.ignore_patterns("__pycache__", "main.py"))
    for source in FIRMWARE_TESTS.glob("*.py"):
        shutil.copy(source, flash / source.name)
    # the P-256 tables as the flash file a deployed board reads (meterlab.boards.firmware), not 8.5 KB of heap
    from meterfw.crypto import p256

    (flash / "meterfw" / "crypto" / p256.TABLES_FILE).write_bytes(p256.tables_bytes())
    return state


@pytest.mark.virtual
@pytest.mark.parametrize("module", MODULES)
def test_module_passes_on_micropython(module, micropython_flash):
    output, returncode = run_module(micropython_flash, module, timeout=240)
    done = re.search(r"^DONE (\d+) tests, (\d+) failed", output, re.M)
    assert done, f"{module} did not finish on MicroPython:\n{output}"
    ran, failed = int(done.group(1)), int(done.group(2))
    assert ran > 0, f"{module} has no test_* functions"
    assert failed == 0 and returncode == 0, f"{module} on MicroPython:\n{output}"
    passed = re.findall(r"^PASS (\w+)", output, re.M)
    assert len(passed) == ran, output
