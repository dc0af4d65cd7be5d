import pathlib
import sys

# The firmware tests' helpers (tests/firmware: mpcheck, pipeline_fakes) serve the CPython-only tests
# too; pytest puts tests/firmware on sys.path only once it has collected a module from there.
FIRMWARE_TESTS = str(pathlib.Path(__file__).parent / "firmware")
if FIRMWARE_TESTS not in sys.path:
    sys.path.insert(0, FIRMWARE_TESTS)
