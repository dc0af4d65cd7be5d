"""Virtual boards: the firmware in real MicroPython (WebAssembly) under Node.js, one process a board.

A virtual board's state folder is its hardware that outlives a power cycle:
  STATE/flash/          the board's filesystem (firmware, config.json, keys, counters), written through
  STATE/hardware.json   what a real board has burnt in: board model, radio MAC, 8-byte unique ID
  STATE/deployed.json   which flash files the last firmware deploy wrote (so a redeploy prunes old ones)
Killing the process and starting it again with the same state folder is a power cycle.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from meterfw.commissioning import BOARD_ROLES as ROLES
from meterlab.boards.descriptions import for_flash, load_board
from meterlab.boards.firmware import firmware_files
from meterlab.paths import FIRMWARE_DIR, VIRTUAL_HARNESS_DIR

READY_PREFIX = "meterlab-virtual-board ready"
READY_TIMEOUT_S = 60
_READY_RE = re.compile(r"serial=(socket://\S+)")
_HOME_READY_RE = re.compile(r"home=(socket://\S+)")
_RADIO_READY_RE = re.compile(r"virtual radio listening on (\S+?),")


class VirtualBoardError(RuntimeError):
    pass


def runtime_dir():
    """Where running virtual boards register themselves, for `meterlab boards`."""
    base = os.environ.get("METERLAB_RUNTIME_DIR")
    if base:
        return Path(base)
    return Path(tempfile.gettempdir()) / f"meterlab-{os.getuid()}" / "virtual-boards"


def running_boards():
    """Registered virtual boards whose process is still alive (stale entries are removed)."""
    boards = []
    folder = runtime_dir()
    if not folder.is_dir():
        return boards
    for entry in sorted(folder.glob("*.json")):
        try:
            record = json.loads(entry.read_text())
            os.kill(record["pid"], 0)
        except (ValueError, KeyError, ProcessLookupError):
            entry.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass  # alive, someone else's
        boards.append(record)
    return boards


def check_harness():
    node = shutil.which("node")
    if node is None:
        raise VirtualBoardError("Node.js is not installed (virtual boards need `node`, version 20 or later)")
    if not (VIRTUAL_HARNESS_DIR / "node_modules" / "@micropython").is_dir():
        raise VirtualBoardError(
            f"the virtual board's npm packages are missing: run `make setup` "
            f"(or `npm ci` in {VIRTUAL_HARNESS_DIR})"
        )
    return node


def random_mac():
    # A locally administered unicast address, as a lab would give a board without a burnt-in MAC.
    octets = [random.randrange(256) for _ in range(6)]
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{o:02x}" for o in octets)


def prepare_state(state_dir, board, mac=None):
    """Create or reopen a board's state folder; a folder belongs to one board model for good."""
    state_dir = Path(state_dir)
    (state_dir / "flash").mkdir(parents=True, exist_ok=True)
    hardware_file = state_dir / "hardware.json"
    if hardware_file.exists():
        hardware = json.loads(hardware_file.read_text())
        if hardware["board"] != board["board"]:
            raise VirtualBoardError(
                f"{state_dir} holds a {hardware['board']} board; it cannot become a {board['board']}"
            )
        if mac and mac != hardware["mac"]:
            raise VirtualBoardError(f"{state_dir} has MAC {hardware['mac']}; a board's MAC does not change")
    else:
        hardware = {"board": board["board"], "mac": mac or random_mac()}
    if "uid" not in hardware:  # the board's burnt-in 8-byte ID (older state folders get one now)
        hardware["uid"] = os.urandom(8).hex()
        _write_atomically(hardware_file, json.dumps(hardware, indent=1).encode())
    return hardware


def _write_atomically(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def cache_dir():
    base = os.environ.get("METERLAB_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return Path(base or Path.home() / ".cache") / "meterlab"


def compiled_firmware(march):
    """{flash path: bytes} of the firmware as deploy puts it on a real board: every module compiled
    with mpy-cross for march, main.py as source. Built once per version of the sources and cached."""
    import hashlib

    from meterlab.boards.firmware import build

    sources = firmware_files()
    digest = hashlib.sha256(march.encode())
    for path in sources:
        digest.update(path.relative_to(FIRMWARE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    folder = cache_dir() / "firmware" / f"{march}-{digest.hexdigest()[:24]}"
    if not (folder / "complete").is_file():
        scratch = Path(tempfile.mkdtemp(prefix="meterlab-build-", dir=_ensure(folder.parent)))
        built = build(march, scratch / "tree")
        (scratch / "tree" / "complete").write_text("\n".join(item.source for item in built))
        try:
            os.rename(scratch / "tree", folder)
        except OSError:  # another process built the same version first
            pass
        shutil.rmtree(scratch, ignore_errors=True)
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in ("complete", ".meterlab-firmware-build")}


def _ensure(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def deploy_to_state(state_dir, board, role=None):
    """Put the repository's firmware on the virtual board's flash, as a deploy does on a real one:
    precompiled .mpy for the board's arch (so the board's RAM holds what a real board's would), main.py
    as source.

    Only firmware files are written (changed ones only) and firmware files the last deploy wrote that
    no longer exist are removed; keys, counters and other data on the flash are left alone."""
    flash = Path(state_dir) / "flash"
    wanted = compiled_firmware(board["mpy_march"])
    wanted["board.json"] = for_flash(board)
    manifest_file = Path(state_dir) / "deployed.json"
    previous = json.loads(manifest_file.read_text()) if manifest_file.exists() else []
    for stale in set(previous) - set(wanted):
        (flash / stale).unlink(missing_ok=True)
    for relative, data in wanted.items():
        target = flash / relative
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, data)
    _write_atomically(manifest_file, json.dumps(sorted(wanted)).encode())
    if role is not None:
        if role not in ROLES:
            raise VirtualBoardError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
        config_file = flash / "config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        if config.get("role") != role:
            config["role"] = role
            _write_atomically(config_file, json.dumps(config).encode())


class VirtualBoard:
    """One virtual board process. `start()` returns once its serial port listens; `kill()` is a power cut.

    Used by the CLI (foreground) and by tests and the demo (background)."""

    def __init__(self, state_dir, *, role=None, board="esp32", listen="127.0.0.1:0", radio=None,
                 mac=None, deploy=True, log=None, power_cut_after_writes=None, rng=True, home=False,
                 load_watts=None, clock=None):
        self.state_dir = Path(state_dir)
        self.role = role
        self.board = load_board(board)
        self.listen = listen
        self.radio = radio
        self.requested_mac = mac
        self.deploy = deploy
        self.log = log  # a file for the harness's log lines; None: inherit stderr
        # Test hook: the power fails just before the board's Nth change to its flash (see board.mjs).
        self.power_cut_after_writes = power_cut_after_writes
        self.rng = rng  # False: a board without a usable random source (commissioning injects its keys)
        self.home = home  # True: open the meter's in-home port (consents); its URL is home_url
        self.home_url = None
        if load_watts is not None and not 0 <= load_watts <= 1_000_000:
            raise VirtualBoardError(f"a load of {load_watts} W: give 0 to 1,000,000 watts")
        self.load_watts = load_watts  # an ESME's simulated load: steady watts, or None for a household's day
        if clock is not None and not (len(clock) == 3 and clock[0] >= 0 and clock[1] >= 0
                                      and 1 <= clock[2] <= 100_000):
            raise VirtualBoardError(f"clock {clock}: give (real, start, scale), a scale from 1 to 100,000")
        # (real, start, scale): the board's clock read start at Unix time real and runs scale times as fast
        self.clock = clock
        self.process = None
        self.url = None
        self.mac = None
        self._registry_entry = None

    @property
    def address(self):
        """The board's radio (HAN) address as bytes: what a hub is paired with. None before start()."""
        return None if self.mac is None else bytes.fromhex(self.mac.replace(":", ""))

    def gpio(self):
        """{pin name: level} the firmware last drove (STATE/gpio.json): the relay, the valve."""
        return json.loads((self.state_dir / "gpio.json").read_text())

    def start(self):
        node = check_harness()
        hardware = prepare_state(self.state_dir, self.board, self.requested_mac)
        self.mac = hardware["mac"]
        if self.deploy:
            deploy_to_state(self.state_dir, self.board, self.role)
        command = [
            node, str(VIRTUAL_HARNESS_DIR / "board.mjs"),
            "--state", str(self.state_dir.resolve()),
            "--heap", str(self.board["heap_bytes"]),
            "--listen", self.listen,
            "--board", self.board["board"],
            "--family", self.board["family"],
            "--uid", hardware["uid"],
        ]
        if self.radio:
            command += ["--radio", self.radio, "--mac", self.mac]
        if not self.rng:
            command += ["--no-rng", "yes"]
        if self.home:
            command += ["--home-listen", "127.0.0.1:0"]
        if self.load_watts is not None:
            command += ["--load-watts", str(int(self.load_watts))]
        if self.clock is not None:
            command += ["--clock", "%.3f:%d:%g" % (self.clock[0], self.clock[1], self.clock[2])]
        if self.power_cut_after_writes is not None:
            command += ["--power-cut-after-writes", str(self.power_cut_after_writes)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self.log, text=True, stdin=subprocess.DEVNULL,
        )
        self.url, self.home_url = self._wait_ready()
        self._register()
        return self.url

    def _wait_ready(self):
        lines = []
        found = []

        def read():
            for line in self.process.stdout:
                lines.append(line)
                if line.startswith(READY_PREFIX):
                    found.append(line)
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if not found:
            self.kill()
            detail = "".join(lines).strip() or f"exit code {self.process.returncode}"
            raise VirtualBoardError(f"virtual board in {self.state_dir} did not start: {detail}")
        home = _HOME_READY_RE.search(found[0])
        return _READY_RE.search(found[0]).group(1), home.group(1) if home else None

    def _register(self):
        folder = runtime_dir()
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": self.process.pid, "url": self.url, "role": self.role or self._role_on_flash(),
            "board": self.board["board"],
            "state": str(self.state_dir.resolve()), "mac": self.mac if self.radio else None,
            "started": time.time(),
        }
        self._registry_entry = folder / f"{self.process.pid}.json"
        _write_atomically(self._registry_entry, json.dumps(record).encode())

    def _role_on_flash(self):
        try:
            return json.loads((self.state_dir / "flash" / "config.json").read_text()).get("role")
        except (OSError, ValueError, AttributeError):
            return None

    def _unregister(self):
        if self._registry_entry is not None:
            self._registry_entry.unlink(missing_ok=True)
            self._registry_entry = None

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """Power cut: no warning, no clean shutdown."""
        if self.alive:
            self.process.kill()
            self.process.wait()
        self._unregister()

    def stop(self, timeout=5):
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._unregister()

    def wait(self):
        return self.process.wait()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def start_boards(boards):
    """Start several VirtualBoards at once (each takes a second or so, mostly waiting); VirtualBoardError
    naming every board that did not start."""
    errors = []

    def start(board):
        try:
            board.start()
        except Exception as error:  # reported below, with the board
            errors.append(f"{board.state_dir}: {error}")

    threads = [threading.Thread(target=start, args=(board,)) for board in boards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise VirtualBoardError("virtual boards did not start: " + "; ".join(errors))


class VirtualRadio:
    """`meterlab virtual radio` in the background, for tests and the demo; `.address` is HOST:PORT.

    capture: a file for the GBCS frames delivered on the air (meterlab.capture.air). The broker runs in
    its own process and writes it itself, so it must not be a file another capture is writing."""

    def __init__(self, log=None, capture=None, **impairments):
        command = [sys.executable, "-m", "meterlab"]
        if capture is not None:
            command += ["--capture", str(capture)]
        command += ["virtual", "radio", "--listen", "127.0.0.1:0"]
        for name, value in impairments.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.process.stdout.readline()
        match = _RADIO_READY_RE.search(line)
        if not match:
            self.process.kill()
            self.process.wait()
            raise VirtualBoardError(f"virtual radio did not start: {line.strip() or 'no output'}")
        self.address = match.group(1)
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_foreground(board):
    """`meterlab virtual start`: start, say where, and stay until Ctrl-C or SIGTERM."""
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    url = board.start()
    role = board.role or "(role from its flash)"
    radio = f", radio {board.radio} as {board.mac}" if board.radio else ""
    home = f", in-home port {board.home_url}" if board.home_url else ""
    print(f"virtual {role} board ({board.board['board']}) on {url}{radio}{home}; flash in "
          f"{board.state_dir / 'flash'}", flush=True)
    print(f"  mpremote connect {url} repl      # Ctrl-C there drops the firmware to the REPL", flush=True)
    try:
        code = board.wait()
        if code:
            print(f"virtual board exited with code {code}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()
