"""Board descriptions (boards/*.json): one per supported board, with its family, GC heap, link and pins."""
import json

from meterlab.paths import BOARDS_DIR

# `--board esp32` and `--board rp2040` name a family; each family has a reference board.
FAMILY_DEFAULTS = {"esp32": "esp32-devkitc", "rp2040": "rpi-pico"}
REQUIRED_FIELDS = ("board", "name", "family", "mpy_march", "heap_bytes", "link")


class BoardDescriptionError(ValueError):
    pass


def available_boards():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def load_board(name):
    """Load a board by its name (esp32-devkitc) or family (esp32, rp2040)."""
    name = FAMILY_DEFAULTS.get(name, name)
    path = BOARDS_DIR / f"{name}.json"
    if not path.is_file():
        choices = ", ".join(sorted(FAMILY_DEFAULTS) + available_boards())
        raise BoardDescriptionError(f"unknown board {name!r}; choose one of: {choices}")
    try:
        description = json.loads(path.read_text())
    except ValueError as error:
        raise BoardDescriptionError(f"{path}: not valid JSON: {error}") from None
    missing = [field for field in REQUIRED_FIELDS if field not in description]
    if missing:
        raise BoardDescriptionError(f"{path}: missing {', '.join(missing)}")
    if description["board"] != path.stem:
        raise BoardDescriptionError(f"{path}: 'board' is {description['board']!r}, expected {path.stem!r}")
    return description


def for_flash(description):
    """The description as a board keeps it (board.json on its flash): what the firmware reads, without the
    prose (names, sources), which would only take the board's RAM when hal loads it."""
    board = {key: value for key, value in description.items() if key not in ("name", "heap_source")}
    if "power" in board:
        board["power"] = {key: value for key, value in board["power"].items() if key != "sources"}
    return json.dumps(board, separators=(",", ":")).encode()
