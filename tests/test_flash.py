"""`meterlab flash`: the firmware file is checked against the board before anything is written, a UF2
reaches a Pico's RPI-RP2 drive whole, and esptool is asked for the chip and offset the image names.
No board here: the Pico's drive is a folder with its INFO_UF2.TXT, esptool's own run is replaced where
a board would answer, and a real esptool run on a missing port must fail clearly."""
import struct
import subprocess

import pytest

from meterlab.boards import flash as flashing
from meterlab.boards.flash import FlashError, RP2040_FAMILY, check_uf2, esp_image_chip, esptool_command
from meterlab.cli import main


def uf2(blocks, family=RP2040_FAMILY, damage=None):
    data = bytearray()
    for number in range(blocks):
        block = bytearray(512)
        struct.pack_into("<IIIIIIII", block, 0, 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * number, 256,
                         number, blocks, family)
        block[32:288] = bytes([number % 256]) * 256
        struct.pack_into("<I", block, 508, 0x0AB16F30)
        data += block
    if damage is not None:
        data[damage] ^= 0xFF
    return bytes(data)


def esp_image(chip_id):
    header = bytearray(64)
    header[0] = 0xE9
    struct.pack_into("<H", header, 12, chip_id)
    return bytes(header) + b"\xff" * 4096


def pico_drive(tmp_path):
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    return drive


def test_an_esp_image_names_its_chip_and_so_its_offset():
    assert esp_image_chip(esp_image(0x0000)) == "esp32"
    assert esp_image_chip(esp_image(0x0009)) == "esp32s3"
    assert flashing.esp_flash_offset("esp32") == 0x1000 and flashing.esp_flash_offset("esp32s3") == 0
    with pytest.raises(FlashError, match="unknown chip"):
        esp_image_chip(esp_image(0x7777))
    with pytest.raises(FlashError, match="UF2 file, for a Pico"):
        esp_image_chip(uf2(2))


def test_a_uf2_must_be_whole_and_for_the_rp2040():
    assert check_uf2(uf2(3)) == 3
    with pytest.raises(FlashError, match="another chip family"):
        check_uf2(uf2(3, family=0x1C5F21B0))
    with pytest.raises(FlashError, match="truncated"):
        check_uf2(uf2(3)[:-100])
    with pytest.raises(FlashError, match="damaged"):
        check_uf2(uf2(3, damage=512 + 509))
    with pytest.raises(FlashError, match="it is an ESP32 image"):
        check_uf2(esp_image(0))


def test_flash_copies_a_uf2_to_the_picos_drive(tmp_path, capsys):
    drive = pico_drive(tmp_path)
    firmware = tmp_path / "RPI_PICO-v1.27.0.uf2"
    firmware.write_bytes(uf2(300))  # 150 KB: more than one chunk
    assert main(["flash", str(drive), "--board", "rpi-pico", "--firmware", str(firmware)]) == 0
    assert (drive / firmware.name).read_bytes() == firmware.read_bytes()
    assert f"copied {firmware.name} to {drive}" in capsys.readouterr().out


def test_flash_refuses_the_wrong_file_and_writes_nothing(tmp_path, capsys):
    drive = pico_drive(tmp_path)
    firmware = tmp_path / "ESP32_GENERIC.bin"
    firmware.write_bytes(esp_image(0))
    assert main(["flash", str(drive), "--board", "rp2040", "--firmware", str(firmware)]) == 1
    assert "not a UF2 file (it is an ESP32 image)" in capsys.readouterr().err
    assert sorted(p.name for p in drive.iterdir()) == ["INFO_UF2.TXT"]

    s3 = tmp_path / "ESP32_GENERIC_S3.bin"
    s3.write_bytes(esp_image(0x0009))
    assert main(["flash", "/dev/ttyUSB9", "--board", "esp32-devkitc", "--firmware", str(s3)]) == 1
    assert "is for an esp32s3, and esp32-devkitc is an esp32" in capsys.readouterr().err


def test_a_folder_that_is_not_a_pico_is_refused(tmp_path, capsys):
    firmware = tmp_path / "f.uf2"
    firmware.write_bytes(uf2(1))
    assert main(["flash", str(tmp_path), "--board", "rp2040", "--firmware", str(firmware)]) == 1
    assert "not a Pico in BOOTSEL mode" in capsys.readouterr().err


def test_esptool_is_asked_for_the_images_chip_at_its_offset(tmp_path):
    firmware = tmp_path / "ESP32_GENERIC.bin"
    firmware.write_bytes(esp_image(0))
    calls = []
    chip = flashing.flash_esp32("/dev/ttyUSB0", firmware, run=lambda argv: calls.append(argv)
                                or subprocess.CompletedProcess(argv, 0))
    assert chip == "esp32"
    assert calls == [esptool_command("/dev/ttyUSB0", "esp32", firmware, erase=False)]
    assert calls[0][-2:] == ["0x1000", str(firmware)] and "--chip" in calls[0]


def test_esptool_on_a_missing_port_fails_clearly(tmp_path, capsys):
    firmware = tmp_path / "ESP32_GENERIC_S3.bin"
    firmware.write_bytes(esp_image(0x0009))
    assert main(["flash", str(tmp_path / "ttyUSB-none"), "--board", "esp32", "--firmware", str(firmware)]) == 1
    assert "esptool could not flash" in capsys.readouterr().err


def test_without_a_firmware_file_it_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(flashing.shutil, "which", lambda name: None)
    assert main(["flash", str(pico_drive(tmp_path)), "--board", "rpi-pico"]) == 1
    err = capsys.readouterr().err
    assert "RPI_PICO firmware file" in err and "pip install mpflash" in err
