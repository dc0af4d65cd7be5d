"""Where the project's parts live. meterlab runs from its repository (a lab clones it), so the firmware,
board descriptions and the virtual board harness are found relative to this package."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"
BOARDS_DIR = REPO_ROOT / "boards"
VIRTUAL_HARNESS_DIR = BOARDS_DIR / "virtual"
