"""Put a built firmware tree (meterlab.boards.firmware.build) on a board with mpremote, then prove it.

Only the firmware's own files are written; the board's config (config.json), keys, counters and any
other data stay as they are. After copying, every file is hashed on the board and compared with the
build, so a short write, a full filesystem or a flaky link cannot pass as a successful deploy.

Run as a script (PlatformIO's `deploy` target does this after `compile`):
    python -m meterlab.boards.deploy --port /dev/ttyUSB0 --build-dir .pio/build/esp32/firmware
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import threading
from typing import Callable

from meterfw.commissioning import BOARD_ROLES as ROLES
from meterlab.boards.firmware import BUILD_MARKER

MPREMOTE_TIMEOUT_S = 300.0

# Marks the board's digest lines in mpremote's output, which also carries mpremote's own messages.
_DIGEST_TAG = "@meterlab-sha256"

# Run on the board before copying. Directories: create each, tolerating EEXIST (17 on every
# MicroPython port), since `fs mkdir` fails on a directory that is already there. Shadows: the board
# imports x.py in preference to x.mpy, so a source left by an earlier deploy would silently keep
# running the old code; only the .py twin of a module being deployed is removed.
_PREPARE_CODE = """\
import os
for d in {directories!r}:
    try:
        os.mkdir(d)
    except OSError as e:
        if e.args[0] != 17:
            raise
for p in {shadows!r}:
    try:
        os.remove(p)
        print('removed shadowing source', p)
    except OSError as e:
        if e.args[0] != 2:
            raise
"""

# Hashes in small chunks into one preallocated buffer: the board may have little free RAM.
_VERIFY_CODE = """\
import hashlib, binascii
buf = memoryview(bytearray(256))
for p in {paths!r}:
    try:
        f = open(p, 'rb')
    except OSError:
        print({tag!r}, p, '-')
        continue
    h = hashlib.sha256()
    with f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n])
    print({tag!r}, p, binascii.hexlify(h.digest()).decode())
"""


class DeployError(Exception):
    """The firmware could not be written to the board, or the board's copy differs from the build."""


def deploy(
    url: str,
    build_dir: pathlib.Path,
    progress: Callable[[str], None] | None = None,
    timeout_s: float = MPREMOTE_TIMEOUT_S,
) -> list[str]:
    """Copy every file of `build_dir` to the board at `url` and verify each by SHA-256.

    `url` is what pyserial opens: a port (/dev/ttyUSB0, COM3) or a URL (socket://127.0.0.1:PORT).
    Returns the board paths written, relative to the board's working directory, which is where
    MicroPython finds main.py and imports modules from.
    """
    build_dir = pathlib.Path(build_dir)
    if not (build_dir / BUILD_MARKER).is_file():
        raise DeployError(f"{build_dir} is not a firmware build directory (run the firmware build first)")
    local_files = {
        path.relative_to(build_dir).as_posix(): path
        for path in sorted(build_dir.rglob("*"))
        if path.is_file() and path.name != BUILD_MARKER
    }
    if not local_files:
        raise DeployError(f"{build_dir} holds no firmware files")
    board_paths = list(local_files)

    prepare = _PREPARE_CODE.format(
        directories=_directories(board_paths),
        shadows=[path[: -len(".mpy")] + ".py" for path in board_paths if path.endswith(".mpy")],
    )
    command = ["exec", prepare]
    for board_path, local_path in local_files.items():
        command += ["+", "fs", "cp", str(local_path.resolve()), ":" + board_path]
    command += ["+", "exec", _VERIFY_CODE.format(paths=board_paths, tag=_DIGEST_TAG)]

    if progress is not None:
        progress(f"deploying {len(board_paths)} files from {build_dir} to {url}")
    output = run_mpremote(url, command, timeout_s, progress)

    board_digests = _parse_digests(output)
    mismatches = []
    for board_path, local_path in local_files.items():
        built = hashlib.sha256(local_path.read_bytes()).hexdigest()
        on_board = board_digests.get(board_path)
        if on_board is None:
            mismatches.append(f"{board_path}: not hashed by the board")
        elif on_board == "-":
            mismatches.append(f"{board_path}: missing on the board")
        elif on_board != built:
            mismatches.append(f"{board_path}: board has sha256 {on_board}, build has {built}")
    if mismatches:
        raise DeployError(f"firmware on {url} does not match {build_dir}:\n  " + "\n  ".join(mismatches))
    if progress is not None:
        progress(f"verified {len(board_paths)} files on {url} by SHA-256")
    return board_paths


def _directories(board_paths: list[str]) -> list[str]:
    """Every directory the files need, parents before children."""
    directories = set()
    for path in board_paths:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))
    return sorted(directories, key=lambda directory: (directory.count("/"), directory))


def _parse_digests(output: list[str]) -> dict[str, str]:
    digests = {}
    for line in output:
        if line.startswith(_DIGEST_TAG + " "):
            board_path, digest = line[len(_DIGEST_TAG) + 1 :].rsplit(" ", 1)
            digests[board_path] = digest
    return digests


def run_mpremote(
    url: str, command: list[str], timeout_s: float, progress: Callable[[str], None] | None
) -> list[str]:
    """Run one mpremote session on `url` and return its output lines; stream them to `progress`.

    One session for the whole deploy: the board's running program is interrupted once, not per file.
    """
    argv = [sys.executable, "-m", "mpremote", "connect", url, *command]
    # mpremote reports failures on stderr and board tracebacks on stdout: merged, both reach the error.
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout_s, kill_on_timeout)
    timer.start()
    output = []
    try:
        for line in process.stdout:
            line = line.rstrip("\r\n")
            output.append(line)
            if progress is not None and not line.startswith(_DIGEST_TAG):
                progress(line)
        returncode = process.wait()
    finally:
        timer.cancel()
        process.stdout.close()
    if timed_out.is_set():
        raise DeployError(f"mpremote on {url} did not finish within {timeout_s:g} s (is the board responding?)")
    if returncode != 0:
        tail = "\n".join(output[-20:]).strip() or "(no output)"
        raise DeployError(f"mpremote failed on {url} (exit status {returncode}):\n{tail}")
    return output


# Run on the board after the copy: its role into config.json, every other setting kept, written as
# boardconfig.write_config does (a new file renamed over the old), so a power cut leaves one or the other.
_ROLE_CODE = """\
import json, os
try:
    c = json.load(open("config.json"))
except (OSError, ValueError):
    c = {{}}
c["role"] = {role!r}
with open("config.json.new", "w") as f:
    json.dump(c, f)
os.rename("config.json.new", "config.json")
"""

_BOARD_NAME_CODE = """\
import json
try:
    print({tag!r}, json.load(open("board.json"))["board"])
except (OSError, ValueError, KeyError):
    print({tag!r}, "-")
"""


def board_on(url: str, timeout_s: float = 60.0) -> str | None:
    """The board description's name in the board's board.json (written by an earlier deploy), or None."""
    tag = "@meterlab-board"
    output = run_mpremote(url, ["exec", _BOARD_NAME_CODE.format(tag=tag)], timeout_s, None)
    names = [line.split(" ", 1)[1] for line in output if line.startswith(tag + " ")]
    return names[0] if names and names[0] != "-" else None


def deploy_firmware(url: str, role: str, board: str | None = None, progress: Callable[[str], None] = print,
                    timeout_s: float = MPREMOTE_TIMEOUT_S):
    """`meterlab deploy`: build the firmware for the board, copy and verify it, set the board's role,
    restart it and check its firmware answers. Returns the board's PONG."""
    import tempfile

    from tqdm import tqdm

    from meterfw import __version__
    from meterlab.boards.descriptions import available_boards, for_flash, load_board
    from meterlab.boards.firmware import build, firmware_files
    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    if role not in ROLES:
        raise DeployError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if board is None:
        board = board_on(url)
        if board is None:
            raise DeployError(f"{url} has no board.json from an earlier deploy: name the board with --board "
                              f"({', '.join(available_boards())})")
        progress(f"{url} is an {board} (its board.json)")
    description = load_board(board)
    with tempfile.TemporaryDirectory(prefix="meterlab-deploy-") as scratch:
        build_dir = pathlib.Path(scratch) / "firmware"
        with tqdm(total=len(firmware_files()) + 1, unit="file", desc=f"mpy-cross {description['mpy_march']}") as bar:
            build(description["mpy_march"], build_dir, progress=lambda _: bar.update(1))
        (build_dir / "board.json").write_bytes(for_flash(description))
        files = sum(1 for path in build_dir.rglob("*") if path.is_file() and path.name != BUILD_MARKER)
        with tqdm(total=files, unit="file", desc=f"copying to {url}") as bar:
            def copied(line):
                if line.startswith("cp "):
                    bar.update(1)
                elif line.strip():
                    bar.write(line)
            deploy(url, build_dir, progress=copied, timeout_s=timeout_s)
        progress(f"verified {files} files on the board by SHA-256")
    run_mpremote(url, ["exec", _ROLE_CODE.format(role=role)], timeout_s, None)
    with BoardConnection(url, timeout=10.0) as connection:
        pong = BoardClient(connection).restart(timeout=30.0)
    if pong.role != role or pong.version != __version__:
        raise DeployError(f"{url} restarted as role {pong.role}, firmware {pong.version}; expected {role}, "
                          f"{__version__}")
    return pong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meterlab.boards.deploy", description="Deploy a built firmware tree to a board."
    )
    parser.add_argument("--port", required=True, help="serial port or pyserial URL, e.g. socket://127.0.0.1:PORT")
    parser.add_argument("--build-dir", required=True, type=pathlib.Path, help="output of the firmware build")
    parser.add_argument("--timeout", type=float, default=MPREMOTE_TIMEOUT_S, help="seconds (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        deploy(args.port, args.build_dir, progress=print, timeout_s=args.timeout)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
