"""Benchmarks (`meterlab bench ...`): figures written as JSON, targets judged as ratios of figures
measured in the same run. Never timed unit tests: the machines are shared and noisy."""
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meterlab.boards.descriptions import load_board
from meterlab.boards.virtual import check_harness
from meterlab.paths import FIRMWARE_DIR, VIRTUAL_HARNESS_DIR

RESULT_PREFIX = "BENCH-RESULT "


def run_on_virtual_board(script, files, board="esp32", timeout=3600):
    """Run script (MicroPython source, top-level await allowed) on a virtual board whose flash holds
    the firmware's meterfw and files ({name: bytes or str}); return the JSON it prints after
    RESULT_PREFIX, with the board and its heap added."""
    check_harness()
    heap = load_board(board)["heap_bytes"]
    with tempfile.TemporaryDirectory(prefix="meterlab-bench-") as scratch:
        flash = Path(scratch) / "flash"
        shutil.copytree(FIRMWARE_DIR / "meterfw", flash / "meterfw", ignore=shutil.ignore_patterns("__pycache__"))
        for name, content in files.items():
            (flash / name).write_bytes(content.encode() if isinstance(content, str) else content)
        (flash / "bench_script.py").write_text(script)
        result = subprocess.run(
            ["node", str(VIRTUAL_HARNESS_DIR / "board.mjs"), "--state", scratch, "--heap", str(heap),
             "--script", "bench_script.py"],
            capture_output=True, text=True, timeout=timeout,
        )
    for line in result.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return {**json.loads(line[len(RESULT_PREFIX):]), "board": board, "heap_bytes": heap}
    raise RuntimeError(f"the benchmark failed on the virtual board:\n{result.stdout}{result.stderr}")


def environment():
    """Where and when the figures were measured, for the JSON."""
    return {
        "python": sys.version.split()[0],
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
