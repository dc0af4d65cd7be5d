"""Installing MicroPython on a board: `meterlab flash PORT --board esp32|rp2040|NAME [--firmware FILE]`.

ESP32 family: esptool writes the firmware image over the serial port. Which chip an image is for, and
so where it goes, is read from the image itself (the bootloader's extended header names its chip): a
classic ESP32's image goes at 0x1000, every later chip's at 0x0, as MicroPython's own instructions say.
esptool then refuses a chip that is not the image's, before writing anything.

RP2040: a Pico in BOOTSEL mode is a USB drive (RPI-RP2, with an INFO_UF2.TXT); copying a UF2 file onto
it flashes it, and the drive then disappears as the board reboots. PORT is that drive's folder, or the
serial port of a Pico already running MicroPython: it is sent to its bootloader (machine.bootloader())
and the drive is waited for.

Both check the file before touching the board: an ESP32 image for a Pico, a UF2 for another chip family,
or a truncated file is refused with what it is. Without --firmware, mpflash (a separate install, on a
machine with internet) downloads the board's stable MicroPython first.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import struct
import subprocess
import sys
import time
from typing import Callable

from meterlab.boards.descriptions import available_boards, load_board

FAMILIES = ("esp32", "rp2040")

# ESP-IDF image header (esp_image_header_t): magic 0xE9, then after 12 bytes the chip ID (2 bytes, LE).
_ESP_IMAGE_MAGIC = 0xE9
_ESP_CHIP_ID_OFFSET = 12
ESP_CHIPS = {0x0000: "esp32", 0x0002: "esp32s2", 0x0005: "esp32c3", 0x0009: "esp32s3", 0x000C: "esp32c2",
             0x000D: "esp32c6", 0x0010: "esp32h2", 0x0012: "esp32p4"}
_CHIP_OF_BUILD = {"ESP32_GENERIC": "esp32", "ESP32_GENERIC_S3": "esp32s3"}  # MicroPython's board names
_CLASSIC_ESP32_OFFSET = 0x1000  # the classic ESP32's second-stage bootloader sits after 4 KB
ESPTOOL_BAUD = 460800

# UF2 (Microsoft's USB flashing format): 512-byte blocks, each with two start magics and an end magic.
_UF2_BLOCK = 512
_UF2_MAGIC_START = (0x0A324655, 0x9E5D5157)
_UF2_MAGIC_END = 0x0AB16F30
_UF2_FAMILY_PRESENT = 0x00002000
RP2040_FAMILY = 0xE48BFF56
_PICO_DRIVE_ID = "RPI-RP2"
DRIVE_WAIT_S = 30.0
_COPY_CHUNK = 64 * 1024


class FlashError(Exception):
    """The board could not be flashed, or the firmware file is not for it; nothing was written then."""


def resolve_board(name: str) -> tuple[str, dict | None]:
    """(family, board description or None) for --board: a family (esp32, rp2040) or a board's name."""
    if name in FAMILIES:
        return name, None
    if name in available_boards():
        description = load_board(name)
        return description["family"], description
    raise FlashError(f"unknown board {name!r}: give a family ({', '.join(FAMILIES)}) or a board "
                     f"({', '.join(available_boards())})")


def esp_image_chip(image: bytes, where: str = "the firmware") -> str:
    """The chip an ESP-IDF firmware image was built for, from its header; FlashError if it is none."""
    if len(image) < 24 or image[0] != _ESP_IMAGE_MAGIC:
        kind = " (it is a UF2 file, for a Pico)" if _is_uf2(image) else ""
        raise FlashError(f"{where} is not an ESP32 firmware image: no 0xE9 image header{kind}")
    chip_id = struct.unpack_from("<H", image, _ESP_CHIP_ID_OFFSET)[0]
    chip = ESP_CHIPS.get(chip_id)
    if chip is None:
        raise FlashError(f"{where} is an ESP firmware image for an unknown chip (ID {chip_id:#06x})")
    return chip


def esp_flash_offset(chip: str) -> int:
    return _CLASSIC_ESP32_OFFSET if chip == "esp32" else 0x0


def _is_uf2(data: bytes) -> bool:
    return len(data) >= 8 and struct.unpack_from("<II", data) == _UF2_MAGIC_START


def check_uf2(data: bytes, family: int = RP2040_FAMILY, where: str = "the firmware") -> int:
    """The number of UF2 blocks in data, all well formed and for `family`; FlashError otherwise."""
    if not _is_uf2(data):
        kind = " (it is an ESP32 image)" if data[:1] == bytes([_ESP_IMAGE_MAGIC]) else ""
        raise FlashError(f"{where} is not a UF2 file{kind}")
    if len(data) % _UF2_BLOCK:
        raise FlashError(f"{where} is truncated: {len(data)} bytes is not a whole number of 512-byte UF2 blocks")
    count = len(data) // _UF2_BLOCK
    for index in range(count):
        block = data[index * _UF2_BLOCK:(index + 1) * _UF2_BLOCK]
        magic0, magic1, flags = struct.unpack_from("<III", block)
        (number, total, block_family) = struct.unpack_from("<III", block, 20)
        if (magic0, magic1) != _UF2_MAGIC_START or struct.unpack_from("<I", block, 508)[0] != _UF2_MAGIC_END:
            raise FlashError(f"{where}: UF2 block {index} is damaged (bad magic)")
        if number != index or total != count:
            raise FlashError(f"{where}: UF2 block {index} says it is block {number} of {total}, of {count} in the file")
        if not flags & _UF2_FAMILY_PRESENT or block_family != family:
            raise FlashError(f"{where} is a UF2 file for another chip family ({block_family:#010x}), "
                             f"not the RP2040's ({family:#010x})")
    return count


# --------------------------------------------------------------------------------------------- ESP32


def esptool_command(port: str, chip: str, firmware: pathlib.Path, erase: bool, baud: int = ESPTOOL_BAUD):
    command = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port, "--baud", str(baud), "write-flash"]
    if erase:
        command.append("--erase-all")
    return command + [hex(esp_flash_offset(chip)), str(firmware)]


def flash_esp32(port: str, firmware: pathlib.Path, description: dict | None = None, erase: bool = False,
                run=subprocess.run) -> str:
    """Write firmware with esptool (its own progress bar shows); returns the chip written for."""
    chip = esp_image_chip(firmware.read_bytes(), str(firmware))
    wanted = _description_chip(description)
    if wanted is not None and chip != wanted:
        raise FlashError(f"{firmware} is for an {chip}, and {description['board']} is an {wanted}")
    result = run(esptool_command(port, chip, firmware, erase))
    if result.returncode != 0:
        raise FlashError(f"esptool could not flash {port} (exit status {result.returncode}; its message is "
                         f"above). Is it the board's port, and is nothing else using it?")
    return chip


def _description_chip(description):
    # the chip a board description's MicroPython build runs on; None (no check) for a build not listed
    if description is None:
        return None
    return _CHIP_OF_BUILD.get(description.get("micropython_build"))


# -------------------------------------------------------------------------------------------- RP2040


def find_pico_drive(extra_roots: tuple[pathlib.Path, ...] = ()) -> pathlib.Path | None:
    """A mounted RPI-RP2 drive (a Pico in BOOTSEL mode), or None."""
    candidates = list(extra_roots)
    try:
        with open("/proc/mounts") as mounts:
            candidates += [pathlib.Path(line.split()[1].replace("\\040", " ")) for line in mounts]
    except OSError:
        pass
    for root in (pathlib.Path("/Volumes"), pathlib.Path("/media"), pathlib.Path("/run/media")):
        if root.is_dir():
            candidates += [p for p in root.glob("*") if p.is_dir()] + [p for p in root.glob("*/*") if p.is_dir()]
    for candidate in candidates:
        if is_pico_drive(candidate):
            return candidate
    return None


def is_pico_drive(folder: pathlib.Path) -> bool:
    try:
        return _PICO_DRIVE_ID in (pathlib.Path(folder) / "INFO_UF2.TXT").read_text(errors="replace")
    except OSError:
        return False


def _enter_bootloader(port: str) -> None:
    # The board drops off USB as it enters the bootloader, so mpremote may fail after sending the call.
    subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", "import machine; machine.bootloader()"],
                   capture_output=True, timeout=30)


def flash_rp2040(port: str, firmware: pathlib.Path, progress_bar=None,
                 wait_s: float = DRIVE_WAIT_S, sleep=time.sleep) -> pathlib.Path:
    """Copy a UF2 file to a Pico's RPI-RP2 drive; returns the drive. PORT: the drive or a serial port."""
    data = firmware.read_bytes()
    check_uf2(data, where=str(firmware))
    drive = pathlib.Path(port)
    if not drive.is_dir():
        if not os.path.exists(port) and not port.startswith(("socket://", "rfc2217://")):
            raise FlashError(f"{port} is neither a Pico's RPI-RP2 drive nor a serial port")
        _enter_bootloader(port)
        deadline = time.monotonic() + wait_s
        found = None
        while found is None and time.monotonic() < deadline:
            sleep(0.5)
            found = find_pico_drive()
        if found is None:
            raise FlashError(f"no RPI-RP2 drive appeared within {wait_s:g} s after sending {port} to its "
                             f"bootloader: hold BOOTSEL while plugging the Pico in, then give its drive as PORT")
        drive = found
    elif not is_pico_drive(drive):
        raise FlashError(f"{drive} is not a Pico in BOOTSEL mode (no INFO_UF2.TXT naming {_PICO_DRIVE_ID})")
    target = drive / firmware.name
    with open(target, "wb") as out:
        for start in range(0, len(data), _COPY_CHUNK):
            out.write(data[start:start + _COPY_CHUNK])
            if progress_bar is not None:
                progress_bar.update(min(_COPY_CHUNK, len(data) - start))
        out.flush()
        os.fsync(out.fileno())
    return drive


# ------------------------------------------------------------------------------------------ download


def download_firmware(description: dict, folder: pathlib.Path, run=subprocess.run) -> pathlib.Path:
    """The board's stable MicroPython, downloaded by mpflash into folder (a machine with internet)."""
    mpflash = shutil.which("mpflash")
    build = description["micropython_build"]
    if mpflash is None:
        raise FlashError(f"no --firmware given, and mpflash is not installed to download one: give the "
                         f"{build} firmware file (.bin for ESP32, .uf2 for a Pico) with --firmware, or "
                         f"`pip install mpflash` on a machine with internet")
    folder.mkdir(parents=True, exist_ok=True)
    result = run([mpflash, "--dir", str(folder), "-x", "download", "--version", "stable", "--board", build])
    if result.returncode != 0:
        raise FlashError(f"mpflash could not download {build} (exit status {result.returncode}; its message is above)")
    suffix = ".uf2" if description["family"] == "rp2040" else ".bin"
    found = sorted((p for p in folder.rglob(f"{build}*{suffix}") if p.is_file()), key=lambda p: p.stat().st_mtime)
    # ESP32_GENERIC's pattern also matches ESP32_GENERIC_S3's files: take an exact board match
    found = [p for p in found if p.name[len(build):len(build) + 1] in ("-", ".")]
    if not found:
        raise FlashError(f"mpflash reported success but no {build}*{suffix} is in {folder}")
    return found[-1]


def flash(port: str, board: str, firmware: pathlib.Path | None, erase: bool = False,
          progress: Callable[[str], None] = print, cache: pathlib.Path | None = None) -> str:
    """Install MicroPython on the board at port; returns a one-line summary of what was written."""
    family, description = resolve_board(board)
    if firmware is None:
        if description is None:
            raise FlashError(f"--board {board} names a family; to download its firmware name the board "
                             f"({', '.join(available_boards())}) or give --firmware FILE")
        firmware = download_firmware(description, cache or pathlib.Path.home() / ".cache" / "meterlab" / "micropython")
        progress(f"downloaded {firmware}")
    firmware = pathlib.Path(firmware)
    if not firmware.is_file():
        raise FlashError(f"firmware file {firmware} does not exist")
    if family == "esp32":
        if erase is False:
            progress("writing over the board's flash; add --erase to erase it all first (MicroPython's "
                     "advice for a board's first MicroPython)")
        chip = flash_esp32(port, firmware, description, erase)
        return f"flashed {firmware.name} to the {chip} on {port} at {esp_flash_offset(chip):#x}"
    from tqdm import tqdm

    with tqdm(total=firmware.stat().st_size, unit="B", unit_scale=True, desc=f"copying {firmware.name}") as bar:
        drive = flash_rp2040(port, firmware, bar)
    return f"copied {firmware.name} to {drive}: the Pico reboots into MicroPython"
