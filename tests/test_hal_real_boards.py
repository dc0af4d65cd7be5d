"""The HAL of real boards (firmware/hal/esp32.py, rp2.py, realboard.py, usbrepl.py and the dispatch in
hal/__init__.py), run under CPython on fakes of the MicroPython modules they use.

No ESP32 or RP2040 is attached in CI, so this is the only place where this code runs before it reaches a
board. Each test imports the HAL afresh, exactly as main.py does (`import hal`, with sys.platform set to
the board's platform only while it is imported), from firmware/ on sys.path, with board.json in a
temporary working directory.

What is faked, and why (all installed with monkeypatch and undone after each test; `hal` and `hal.*`
are also dropped from sys.modules before and after each test so no module state leaks between tests):

* sys.modules["micropython"]: const() returns its argument; kbd_intr() records its argument.
* sys.modules["machine"]: UART (records its arguments; read() returns what has arrived or None, like a
  board's UART with nothing received; write() takes at most 32 bytes per call, like a full TX FIFO, so
  the asyncio writer's drain loop is exercised), Pin (records its id), unique_id() (8 bytes, as on an
  RP2040).
* sys.modules["network"]: WLAN(STA_IF) with active() and config("mac").
* sys.modules["aioespnow"]: AIOESPNow, a singleton like the real one, recording active, add_peer,
  del_peer, asend and arecv, and enforcing what ESP-NOW enforces: add_peer of a known peer, del_peer
  or asend of an unknown one and a 21st peer raise OSError, frames are 1 to 250 bytes. asend returns
  True when sync is false, else whether the peer acknowledged. arecv hands out the same two bytearrays
  every time (as airecv() does) so the test can see whether the HAL copies them.
* sys.modules["vboard"]: only info(), for importing hal.virtual through the dispatch.
* sys.stdin / sys.stdout: what a bare-metal port has (shared/runtime/sys_stdio_mphal.c): sys.stdin is a
  *text* stream, read(n) returns str (n UTF-8 characters, with CR turned into LF), and sys.stdin.buffer
  reads the same bytes raw; sys.stdout.write() cooks LF into CR LF, sys.stdout.buffer.write() does not.
  Both sides share one byte queue / one wire. Reading more than has arrived would block a board; here
  it fails the test, since the HAL must only read what poll/asyncio said is there.
* select.poll (attribute of CPython's select module): register(obj, mask) and poll(0) returning
  [(obj, POLLIN)] for registered fake streams holding data. CPython's poll needs file descriptors, and
  CPython's asyncio on Linux uses epoll, so this does not reach the test's own event loop. A poll with a
  timeout other than 0 fails the test: it would stall every asyncio task on the board.
* asyncio.StreamReader / asyncio.StreamWriter (attributes of CPython's asyncio module): MicroPython's
  asyncio.Stream (extmod/asyncio/stream.py), which both names alias: Stream(s, e={}) wraps any object
  with read/write (CPython's StreamReader takes no stream at all). read(n) suspends until the stream is
  readable (MicroPython: `yield core._io_queue.queue_read(s)`; here: poll the fake every millisecond),
  then returns s.read(n) as it is, str or bytes; write() buffers, drain() loops on s.write(). Everything
  else in asyncio (run, wait_for, tasks) is CPython's own.
* time.ticks_ms, gc.mem_free, gc.mem_alloc: MicroPython-only functions, added to CPython's modules.
* sys.dont_write_bytecode: so importing the HAL leaves no __pycache__ in firmware/.
"""
import ast
import asyncio
import gc
import importlib
import json
import pathlib
import runpy
import select
import sys
import time
import types

import pytest

# Imported before any fake `micropython` module exists, so they keep their CPython const() for good.
import meterfw
import meterfw.device  # noqa: F401  (main.py imports it; keep it out of reach of the fakes)
from meterfw import framing
from meterfw import link_host as link

REPO = pathlib.Path(__file__).resolve().parents[1]
FIRMWARE_DIR = REPO / "firmware"
BOARDS_DIR = REPO / "boards"

STATION_MAC = bytes.fromhex("246f28a1b2c3")
UNIQUE_ID = bytes.fromhex("e66058388332a1b2")  # an RP2040's 8-byte flash id; the link uses the last 6
PICO_MAC = UNIQUE_ID[-6:]
BROADCAST = b"\xff" * 6
HEAP_ALLOC, HEAP_FREE = 20_000, 90_592
NOW_MS = 123_456

# --- MicroPython's stdio ---------------------------------------------------------------------------------


class FakeStdin:
    """sys.stdin of a bare-metal MicroPython port: text read(); .buffer reads the same bytes raw."""

    def __init__(self):
        self.pending = bytearray()  # arrived on the USB serial port, not yet read
        self.buffer = _StdinBuffer(self)

    def feed(self, data):
        self.pending += data

    def ready(self):
        return bool(self.pending)

    def take(self, n):
        if n > len(self.pending):
            raise AssertionError("read of %d bytes would block: %d have arrived" % (n, len(self.pending)))
        taken = bytes(self.pending[:n])
        del self.pending[:n]
        return taken

    def read(self, n):
        # stdio_read() turns CR into LF; py/stream.c then reads n UTF-8 characters and returns str.
        raw = bytearray()
        for _ in range(n):
            lead = self.take(1)
            b = lead[0]
            size = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
            raw += lead + self.take(size - 1)
        return bytes(raw).replace(b"\r", b"\n").decode("utf-8")


class _StdinBuffer:
    def __init__(self, stdin):
        self._stdin = stdin

    def ready(self):
        return self._stdin.ready()

    def read(self, n):
        return self._stdin.take(n)


class FakeStdout:
    """sys.stdout of a bare-metal port: write() cooks LF into CR LF, .buffer.write() is raw."""

    def __init__(self):
        self.wire = bytearray()  # what the host receives on the USB serial port
        self.buffer = _StdoutBuffer(self)

    def write(self, data):
        raw = data.encode() if isinstance(data, str) else bytes(data)
        self.wire += raw.replace(b"\n", b"\r\n")
        return len(data)

    def flush(self):
        pass


class _StdoutBuffer:
    def __init__(self, stdout):
        self._stdout = stdout

    def write(self, data):
        self._stdout.wire += data
        return len(data)


class FakePoll:
    """select.poll() of MicroPython, for the fake streams here."""

    def __init__(self):
        self._registered = []

    def register(self, obj, mask=select.POLLIN | select.POLLOUT):
        self._registered.append((obj, mask))

    def poll(self, timeout=-1):
        assert timeout == 0, "poll(%r) would block the board's whole asyncio loop" % (timeout,)
        return [(obj, select.POLLIN) for obj, mask in self._registered if mask & select.POLLIN and obj.ready()]


class MicroPythonStream:
    """MicroPython's asyncio.Stream (= asyncio.StreamReader = asyncio.StreamWriter), on the fakes here."""

    def __init__(self, s, e={}):  # noqa: B006  (MicroPython's own signature)
        self.s = s
        self.e = e
        self.out_buf = b""

    async def read(self, n=-1):
        r = b""
        while True:
            await _until_readable(self.s)
            r2 = self.s.read(n)
            if r2 is not None:
                if n >= 0:
                    return r2
                if not len(r2):
                    return r
                r += r2

    def write(self, buf):
        self.out_buf += buf

    async def drain(self):
        if not self.out_buf:
            await asyncio.sleep(0)
            return
        mv = memoryview(self.out_buf)
        off = 0
        while off < len(mv):
            await asyncio.sleep(0)  # MicroPython: yield core._io_queue.queue_write(self.s)
            ret = self.s.write(mv[off:])
            if ret is not None:
                off += ret
        self.out_buf = b""


async def _until_readable(stream):
    await asyncio.sleep(0)  # queue_read always goes through the scheduler, even when data is waiting
    while not stream.ready():
        await asyncio.sleep(0.001)


# --- machine, network, aioespnow -------------------------------------------------------------------------


class FakeUart:
    TX_FIFO = 32

    def __init__(self, board, id, baudrate=115200, tx=None, rx=None, **other):
        self.id = id
        self.baudrate = baudrate
        self.tx_pin = tx
        self.rx_pin = rx
        self.other = other
        self.rx = bytearray()  # arrived from the other board, not yet read
        self.tx = bytearray()  # sent to the other board
        self.writes = 0
        board.uarts.append(self)

    def ready(self):
        return bool(self.rx)

    def read(self, n=-1):
        if not self.rx:
            return None  # a board's UART returns None when nothing arrived before its timeout
        n = len(self.rx) if n < 0 else n
        data = bytes(self.rx[:n])
        del self.rx[:n]
        return data

    def write(self, buf):
        chunk = bytes(buf[: self.TX_FIFO])
        self.tx += chunk
        self.writes += 1
        return len(chunk)


class FakePin:
    OUT = 1
    made = {}  # id -> the last FakePin made for it

    def __init__(self, id, *args, **kwargs):
        self.id = id
        self.mode = args[0] if args else kwargs.get("mode")
        self.levels = []
        FakePin.made[id] = self

    def value(self, level):
        self.levels.append(level)


class FakeWlan:
    def __init__(self, interface):
        self.interface = interface
        self.is_active = False

    def active(self, flag=None):
        if flag is not None:
            self.is_active = bool(flag)
        return self.is_active

    def config(self, name):
        assert name == "mac"
        return STATION_MAC


class FakeEspNow:
    MAX_PEERS = 20  # ESP_NOW_MAX_TOTAL_PEER_NUM
    MAX_DATA = 250  # ESP_NOW_MAX_DATA_LEN

    def __init__(self):
        self.calls = []
        self.is_active = False
        self.peers = []
        self.unacknowledging = set()  # peers that never acknowledge a unicast frame
        self.inbox = []
        self._peer_buffer = bytearray(6)  # airecv() reuses two buffers; the HAL must copy out of them
        self._data_buffer = bytearray(self.MAX_DATA)

    def active(self, flag=None):
        if flag is not None:
            self.calls.append(("active", bool(flag)))
            self.is_active = bool(flag)
        return self.is_active

    def add_peer(self, mac, *args, **kwargs):
        self.calls.append(("add_peer", bytes(mac)))
        assert self.is_active, "ESP-NOW used before active(True)"
        if mac in self.peers:
            raise OSError(-12395, "ESP_ERR_ESPNOW_EXIST")
        if len(self.peers) >= self.MAX_PEERS:
            raise OSError(-12391, "ESP_ERR_ESPNOW_FULL")
        self.peers.append(bytes(mac))

    def del_peer(self, mac):
        self.calls.append(("del_peer", bytes(mac)))
        if mac not in self.peers:
            raise OSError(-12393, "ESP_ERR_ESPNOW_NOT_FOUND")
        self.peers.remove(mac)

    async def asend(self, mac, msg=None, sync=None):
        self.calls.append(("asend", bytes(mac), bytes(msg), sync))
        await asyncio.sleep(0)
        if mac not in self.peers:
            raise OSError(-12393, "ESP_ERR_ESPNOW_NOT_FOUND")
        if not 0 < len(msg) <= self.MAX_DATA:
            raise ValueError("ESP-NOW frames are 1 to 250 bytes")
        return True if not sync else bytes(mac) not in self.unacknowledging

    async def arecv(self):
        await asyncio.sleep(0)
        while not self.inbox:
            await asyncio.sleep(0.001)
        peer, data = self.inbox.pop(0)
        self.calls.append(("arecv",))
        self._peer_buffer[:] = peer
        view = memoryview(self._data_buffer)[: len(data)]
        view[:] = data
        return [self._peer_buffer, view]


# --- the board -------------------------------------------------------------------------------------------


class FakeBoard:
    """A board's MicroPython environment under CPython; see the module docstring for what is faked."""

    def __init__(self, monkeypatch, tmp_path):
        self.monkeypatch = monkeypatch
        self.flash = tmp_path  # the working directory, where board.json and config.json live
        self.kbd_intr = []
        self.now_ms = NOW_MS
        self.stdin = FakeStdin()
        self.stdout = FakeStdout()
        self.uarts = []
        self.wlans = {}
        self.espnow = None

        micropython = types.ModuleType("micropython")
        micropython.const = lambda value: value
        micropython.kbd_intr = self.kbd_intr.append

        machine = types.ModuleType("machine")
        machine.UART = lambda *args, **kwargs: FakeUart(self, *args, **kwargs)
        machine.Pin = FakePin
        machine.unique_id = lambda: UNIQUE_ID

        network = types.ModuleType("network")
        network.STA_IF, network.AP_IF = 0, 1
        network.WLAN = self._wlan

        aioespnow = types.ModuleType("aioespnow")
        aioespnow.AIOESPNow = self._espnow

        vboard = types.ModuleType("vboard")
        vboard.info = lambda: json.dumps(
            {"board": "esp32-devkitc", "family": "esp32", "heap": 110592, "mac": "02:00:00:00:00:01"}
        )

        for module in (micropython, machine, network, aioespnow, vboard):
            monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(select, "poll", FakePoll)
        monkeypatch.setattr(asyncio, "StreamReader", MicroPythonStream)
        monkeypatch.setattr(asyncio, "StreamWriter", MicroPythonStream)
        monkeypatch.setattr(time, "ticks_ms", lambda: self.now_ms, raising=False)
        monkeypatch.setattr(gc, "mem_free", lambda: HEAP_FREE, raising=False)
        monkeypatch.setattr(gc, "mem_alloc", lambda: HEAP_ALLOC, raising=False)
        monkeypatch.setattr(sys, "dont_write_bytecode", True)
        monkeypatch.syspath_prepend(str(FIRMWARE_DIR))
        monkeypatch.chdir(tmp_path)

    def _wlan(self, interface):
        return self.wlans.setdefault(interface, FakeWlan(interface))

    def _espnow(self):
        if self.espnow is None:
            self.espnow = FakeEspNow()
        return self.espnow

    def board_json(self, description):
        text = description if isinstance(description, str) else json.dumps(description)
        (self.flash / "board.json").write_text(text)

    def boot(self, platform):
        """`import hal` as main.py does on a board whose sys.platform is platform; the package."""
        # In the test itself, not in the fixture: pytest's output capture puts its own sys.stdin and
        # sys.stdout back when the test's call phase starts.
        self.monkeypatch.setattr(sys, "stdin", self.stdin)
        self.monkeypatch.setattr(sys, "stdout", self.stdout)
        with self.monkeypatch.context() as during_import:
            during_import.setattr(sys, "platform", platform)
            return importlib.import_module("hal")


def _forget_hal():
    for name in [name for name in sys.modules if name == "hal" or name.startswith("hal.")]:
        del sys.modules[name]


@pytest.fixture
def board(monkeypatch, tmp_path):
    for name in [name for name in sys.modules if name == "hal" or name.startswith("hal.")]:
        monkeypatch.delitem(sys.modules, name)  # put back, should anything have imported them before
    yield FakeBoard(monkeypatch, tmp_path)
    _forget_hal()  # then monkeypatch, torn down after this fixture, undoes everything else


def run(coro, timeout=1.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def blocks(coro, timeout=0.05):
    """Whether coro is still waiting after timeout."""
    try:
        asyncio.run(asyncio.wait_for(coro, timeout))
    except asyncio.TimeoutError:
        return True
    return False


def pico_board_json(**link):
    description = json.loads((BOARDS_DIR / "rpi-pico.json").read_text())
    description["link"].update(link)
    return description


# --- hal.usbrepl: the USB serial port shared with the REPL ------------------------------------------------


def test_serial_disables_ctrl_c_once_and_is_a_singleton(board):
    hal = board.boot("esp32")
    assert board.kbd_intr == []  # nothing touches the REPL's Ctrl-C before the firmware takes the port

    serial = hal.serial()

    assert board.kbd_intr == [-1]
    assert hal.serial() is serial
    assert board.kbd_intr == [-1]


@pytest.mark.parametrize("arrived", [b"ping", framing.encode(link.ping(7))], ids=["ascii", "frame"])
def test_read_returns_the_bytes_as_they_arrived(board, arrived):
    serial = board.boot("esp32").serial()
    board.stdin.feed(arrived)

    assert run(serial.read()) == arrived


@pytest.mark.parametrize("platform", ["esp32", "rp2"])
def test_read_returns_what_has_arrived_in_chunks_of_at_most_64_bytes(board, platform):
    serial = board.boot(platform).serial()
    arrived = bytes(range(4, 104)) + b"\r\n\xc0\xdb"  # no 0x03; CR, LF and frame bytes pass as they are
    board.stdin.feed(arrived)

    first = run(serial.read())
    second = run(serial.read())

    assert type(first) is bytes and type(second) is bytes
    assert (first, second) == (arrived[:64], arrived[64:])
    assert board.stdin.pending == b""


def test_read_waits_for_the_first_byte(board):
    serial = board.boot("esp32").serial()
    assert blocks(serial.read())

    async def byte_arrives_later():
        reading = asyncio.ensure_future(serial.read())
        await asyncio.sleep(0.01)
        assert not reading.done()
        board.stdin.feed(b"\xc0")
        return await reading

    assert run(byte_arrives_later()) == b"\xc0"


@pytest.mark.parametrize(
    "before",
    [b"", framing.encode(link.ping(1)), b"x" * 63, b"x" * 64],
    ids=["ctrl-c-first", "after-a-frame", "ctrl-c-is-64th-byte", "ctrl-c-is-65th-byte"],
)
def test_read_never_reads_past_a_ctrl_c(board, before):
    serial = board.boot("esp32").serial()
    for_the_repl = b"\x03\x03import machine\r\nmachine.reset()\r\n"
    board.stdin.feed(before + b"\x03" + for_the_repl)

    data = run(serial.read())
    while not data.endswith(b"\x03"):
        assert b"\x03" not in data
        data += run(serial.read())

    assert data == before + b"\x03"
    assert board.stdin.pending == for_the_repl  # still in stdin for the REPL


def test_write_goes_to_the_raw_stdout_unchanged(board):
    serial = board.boot("rp2").serial()
    frame = framing.encode(b"line\none\r\ntwo\n\x00\xff")

    assert b"\n" in frame
    serial.write(frame)
    serial.write(b"\n")

    assert board.stdout.wire == frame + b"\n"  # no LF -> CR LF


def test_break_to_repl_reenables_ctrl_c_and_raises_keyboard_interrupt(board):
    hal = board.boot("esp32")
    hal.serial()

    with pytest.raises(KeyboardInterrupt):
        hal.break_to_repl()

    assert board.kbd_intr == [-1, 3]


# --- hal.esp32 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["esp32-devkitc", "esp32-s3-devkitc"])
def test_esp32_board_info_from_the_boards_board_json(board, name):
    board.board_json((BOARDS_DIR / f"{name}.json").read_text())
    hal = board.boot("esp32")

    assert hal.board_info() == {
        "board": name,
        "family": "esp32",
        "heap": HEAP_ALLOC + HEAP_FREE,
        "mac": STATION_MAC.hex(),
        "virtual": False,
    }
    assert hal.ticks_ms() == NOW_MS
    assert hal.free_heap() == HEAP_FREE


@pytest.mark.parametrize("board_json", [None, "{not json", '{"board": "esp32-devkitc", "link": {}}'],
                         ids=["absent", "corrupt", "link-without-type"])
def test_esp32_builds_the_espnow_radio_by_default(board, board_json):
    if board_json is not None:
        board.board_json(board_json)
    hal = board.boot("esp32")

    radio = hal.radio()

    assert radio is not None and hal.radio() is radio
    assert radio.mac == STATION_MAC
    assert board.wlans[0].is_active  # STA_IF up: ESP-NOW needs an active Wi-Fi interface
    assert board.espnow.calls == [("active", True)]
    info = hal.board_info()
    assert (info["board"], info["family"], info["mac"]) == ("esp32-devkitc", "esp32", STATION_MAC.hex())


def test_esp32_has_no_radio_when_the_link_is_not_espnow(board):
    board.board_json({"board": "esp32-devkitc", "family": "esp32", "link": {"type": "uart"}})
    hal = board.boot("esp32")

    assert hal.radio() is None
    assert hal.board_info()["mac"] is None
    assert board.wlans == {} and board.espnow is None


def test_esp32_send_waits_for_the_ack_of_unicast_but_not_of_broadcast(board):
    radio = board.boot("esp32").radio()
    meter, deaf = bytes.fromhex("0a0000000001"), bytes.fromhex("0a0000000002")
    board.espnow.unacknowledging.add(deaf)

    async def sends():
        return [
            await radio.send(meter, b"hello"),
            await radio.send(BROADCAST, b"anyone?"),
            await radio.send(deaf, b"hello?"),
        ]

    results = run(sends())

    assert results == [True, True, False]
    assert all(type(result) is bool for result in results)
    assert [call for call in board.espnow.calls if call[0] == "asend"] == [
        ("asend", meter, b"hello", True),
        ("asend", BROADCAST, b"anyone?", False),
        ("asend", deaf, b"hello?", True),
    ]


def test_esp32_send_driver_error_is_a_frame_not_delivered(board):
    radio = board.boot("esp32").radio()

    async def out_of_buffers(mac, msg=None, sync=None):
        raise OSError(-12391, "ESP_ERR_ESPNOW_NO_MEM")

    board.espnow.asend = out_of_buffers

    assert run(radio.send(bytes.fromhex("0a0000000001"), b"tariff")) is False


def test_esp32_keeps_at_most_16_peers_evicting_the_oldest(board):
    radio = board.boot("esp32").radio()
    peers = [bytes((0x0A, 0, 0, 0, 0, i)) for i in range(18)]

    async def sends(*to):
        for peer in to:
            assert await radio.send(peer, b"x")

    run(sends(*peers[:16], peers[3], peers[0]))  # known peers are not added again
    assert board.espnow.peers == peers[:16]
    assert not any(call[0] == "del_peer" for call in board.espnow.calls)

    run(sends(peers[16]))
    assert board.espnow.peers == peers[1:17]
    run(sends(peers[0], peers[17]))  # peer 0 comes back as the newest; peers 1 and 2 go

    assert board.espnow.peers == peers[3:17] + [peers[0], peers[17]]
    assert [call[1] for call in board.espnow.calls if call[0] == "del_peer"] == [peers[0], peers[1], peers[2]]
    assert [call[1] for call in board.espnow.calls if call[0] == "add_peer"] == peers[:17] + [peers[0], peers[17]]


def test_esp32_recv_returns_bytes_copies(board):
    radio = board.boot("esp32").radio()
    meter = bytes.fromhex("0a0000000001")
    board.espnow.inbox += [(meter, b"first frame"), (BROADCAST, b"second")]

    async def two():
        return [await radio.recv(), await radio.recv()]

    first, second = run(two())

    assert first == (meter, b"first frame") and second == (BROADCAST, b"second")
    assert all(type(part) is bytes for part in first + second)  # not the driver's reused buffers


def test_esp32_recv_waits_for_a_frame(board):
    radio = board.boot("esp32").radio()

    assert blocks(radio.recv())


# --- hal.rp2 ----------------------------------------------------------------------------------------------


def test_rp2_uart_link_from_the_picos_board_json(board):
    board.board_json((BOARDS_DIR / "rpi-pico.json").read_text())
    hal = board.boot("rp2")

    radio = hal.radio()

    assert radio is not None and hal.radio() is radio
    assert radio.mac == PICO_MAC
    [uart] = board.uarts
    assert (uart.id, uart.baudrate, uart.tx_pin.id, uart.rx_pin.id) == (0, 115200, 0, 1)
    assert hal.board_info() == {
        "board": "rpi-pico",
        "family": "rp2040",
        "heap": HEAP_ALLOC + HEAP_FREE,
        "mac": PICO_MAC.hex(),
        "virtual": False,
    }
    assert hal.ticks_ms() == NOW_MS
    assert hal.free_heap() == HEAP_FREE


def test_rp2_uart_link_takes_its_pins_and_speed_from_board_json(board):
    board.board_json(pico_board_json(uart=1, tx=4, rx=5, baud=9600))

    board.boot("rp2").radio()

    [uart] = board.uarts
    assert (uart.id, uart.baudrate, uart.tx_pin.id, uart.rx_pin.id) == (1, 9600, 4, 5)


@pytest.mark.parametrize(
    "board_json",
    [None, {"board": "rpi-pico"}, {"board": "rpi-pico", "link": {"type": "espnow"}},
     {"board": "rpi-pico", "link": "uart"}, "{not json"],
    ids=["absent", "no-link", "espnow-link", "link-not-an-object", "corrupt"],
)
def test_rp2_has_no_radio_without_a_uart_link(board, board_json):
    if board_json is not None:
        board.board_json(board_json)
    hal = board.boot("rp2")

    assert hal.radio() is None
    info = hal.board_info()
    assert (info["family"], info["mac"]) == ("rp2040", None)
    assert board.uarts == []


@pytest.mark.parametrize("size", [1, 40, link.RADIO_MAX_FRAME])
def test_rp2_send_frames_destination_source_and_data(board, size):
    board.board_json(pico_board_json())
    radio = board.boot("rp2").radio()
    meter = bytes.fromhex("0a00000000c0")
    data = (b"\x03\xc0\xdb\x00" * 63)[:size]

    assert run(radio.send(meter, data)) is True

    [uart] = board.uarts
    decoder = framing.FrameDecoder()
    assert decoder.feed(bytes(uart.tx)) == [meter + PICO_MAC + data]
    assert b"\x03" not in uart.tx  # never a Ctrl-C on the wire
    assert uart.writes == -(-len(uart.tx) // FakeUart.TX_FIFO)  # drained in full, one FIFO at a time


def test_rp2_recv_returns_frames_for_this_board_or_broadcast_and_skips_the_rest(board):
    board.board_json(pico_board_json())
    radio = board.boot("rp2").radio()
    hub, meter, other = bytes.fromhex("0a0000000001"), bytes.fromhex("0a0000000002"), bytes.fromhex("0a00000000ff")
    long_data = bytes(range(256))[:250]
    damaged = bytearray(framing.encode(PICO_MAC + hub + b"damaged"))
    damaged[-3] ^= 0x01
    [uart] = board.uarts
    uart.rx += (
        b"boot noise\r\n"
        + framing.encode(other + hub + b"not for us")
        + framing.encode(PICO_MAC + hub + b"for us")
        + framing.encode(PICO_MAC + hub)  # addresses but no data
        + bytes(damaged)
        + framing.encode(BROADCAST + meter + b"for all")
        + framing.encode(PICO_MAC[:5])  # shorter than an address
        + framing.encode(PICO_MAC + meter + long_data)  # spans several 64-byte reads
    )

    async def three():
        return [await radio.recv(), await radio.recv(), await radio.recv()]

    received = run(three())

    assert received == [(hub, b"for us"), (meter, b"for all"), (meter, long_data)]
    assert all(type(part) is bytes for frame in received for part in frame)
    assert uart.rx == b""
    assert blocks(radio.recv())  # nothing more for this board


def test_rp2_receives_the_reply_to_what_it_sent(board):
    board.board_json(pico_board_json())
    radio = board.boot("rp2").radio()
    [uart] = board.uarts
    other_pico = bytes.fromhex("0a0000000042")

    run(radio.send(other_pico, b"ping over the wire"))
    # The other Pico answers with the addresses of the frame it got swapped: recv must parse what send wrote.
    [payload] = framing.FrameDecoder().feed(bytes(uart.tx))
    dst, src, data = payload[:6], payload[6:12], payload[12:]
    assert (dst, src) == (other_pico, PICO_MAC)
    uart.rx += framing.encode(src + dst + data)

    assert run(radio.recv()) == (other_pico, b"ping over the wire")


# --- hal/__init__.py: one HAL per platform ---------------------------------------------------------------


def names_main_uses():
    # main.py and the modules it loads for a step or a role (startup, gas_io): the firmware's I/O side
    names = set()
    for module in ("main.py", "startup.py", "gas_io.py"):
        tree = ast.parse((FIRMWARE_DIR / module).read_text())
        names.update(node.attr for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "hal")
    return sorted(names)


def test_main_uses_the_documented_hal_names():
    assert names_main_uses() == ["board_info", "break_to_repl", "free_heap", "home", "metrology", "radio",
                                 "random_bytes", "run", "serial", "sleep_s", "supply_switch", "ticks_ms",
                                 "unique_id", "unix_time"]


# The ESME's hardware: the load relay on the description's supply_relay pin, the clock in Unix seconds
# whatever the port's epoch, and the simulated load a dev board meters.
@pytest.mark.parametrize("platform, pin", [("esp32", 2), ("rp2", 25)])
def test_supply_switch_drives_the_relay_pin_of_the_description(board, platform, pin):
    name = {"esp32": "esp32-devkitc.json", "rp2": "rpi-pico.json"}[platform]
    board.board_json((BOARDS_DIR / name).read_text())
    FakePin.made.clear()
    switch = board.boot(platform).supply_switch()
    switch(False)
    switch(True)
    relay = FakePin.made[pin]
    assert relay.mode == FakePin.OUT and relay.levels == [0, 1]


def test_a_board_without_a_relay_pin_switches_nothing(board):
    board.board_json({"board": "esp32-devkitc", "family": "esp32", "link": {"type": "espnow"}})
    FakePin.made.clear()
    board.boot("esp32").supply_switch()(False)
    assert FakePin.made == {}


def test_unix_time_whatever_the_ports_epoch(board, monkeypatch):
    monkeypatch.setattr(time, "gmtime", lambda seconds: (2000, 1, 1, 0, 0, 0, 5, 1))
    monkeypatch.setattr(time, "time", lambda: 847_000_000.75)  # seconds since 2000 on such a port
    assert board.boot("esp32").unix_time() == 847_000_000 + 946_684_800


def test_metrology_is_the_simulated_households_load(board, monkeypatch):
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    hal = board.boot("rp2")
    three_am, seven_pm = 1_795_000_000 // 86400 * 86400 + 3 * 3600, 1_795_000_000 // 86400 * 86400 + 19 * 3600
    monkeypatch.setattr(time, "time", lambda: three_am)
    load = hal.metrology()
    board.now_ms += 36_000
    assert load.take_mwh() == 3000  # 300 W for 36 s
    monkeypatch.setattr(time, "time", lambda: seven_pm)
    board.now_ms += 600_000  # a ten-minute stall counts as one minute, not as energy used
    assert load.take_mwh() == 30_000  # 1.8 kW for 60 s


# Hardware IDs and random sources. ESP32: the 6-byte base MAC as an EUI-64 (FF FE inserted); RP2040: the
# flash's 8-byte unique ID. Both draw random bytes from os.urandom (the ESP32's hardware RNG, the
# RP2040's ring oscillator).
def test_esp32_hardware_id_and_random_source(board):
    esp32 = board.boot("esp32")
    assert esp32.unique_id() == UNIQUE_ID[:3] + b"\xff\xfe" + UNIQUE_ID[3:6]
    first, second = esp32.random_bytes(32), esp32.random_bytes(32)
    assert len(first) == 32 and first != second


def test_rp2_hardware_id_and_random_source(board):
    rp2 = board.boot("rp2")
    assert rp2.unique_id() == UNIQUE_ID[:8]
    assert len(rp2.random_bytes(8)) == 8


@pytest.mark.parametrize("platform, module", [("esp32", "hal.esp32"), ("rp2", "hal.rp2"),
                                              ("webassembly", "hal.virtual")])
def test_hal_picks_the_module_of_the_platform(board, platform, module):
    hal = board.boot(platform)

    chosen = sys.modules[module]
    for name in names_main_uses():
        assert getattr(hal, name) is getattr(chosen, name), name
    others = {"hal.esp32", "hal.rp2", "hal.virtual"} - {module}
    assert not others & set(sys.modules)


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin", "esp8266"])
def test_hal_refuses_a_platform_it_has_no_module_for(board, platform):
    with pytest.raises(ImportError, match="no HAL for platform " + platform):
        board.boot(platform)
    assert "hal" not in sys.modules


# --- main.py on a real board's HAL ------------------------------------------------------------------------


def commission_for_test(flash):
    # The identity and initial anchors a commissioned board has, in the board's security folder.
    from meterfw import store
    from pipeline_fakes import DEVICE, DEVICE_DS, DEVICE_KA
    from virtual_lab import initial_anchors

    storage = store.FileStorage(str(flash / store.FOLDER))
    store.IdentityStore(storage).install(DEVICE, DEVICE_DS, DEVICE_KA, "gbcs")
    anchors = store.TrustAnchorStore(storage)
    for role, (party_id, ds, ka) in sorted(initial_anchors().items()):
        anchors.install(role, party_id, ds, ka)


@pytest.mark.parametrize("platform", ["esp32", "rp2"])
def test_main_answers_the_host_then_breaks_to_the_repl(board, platform):
    """Boot main.py on the board: it answers a ping and a radio send, shows a frame heard on the radio,
    and at the 0x03 leaves for the REPL with the REPL's bytes still unread."""
    peer, heard_from = bytes.fromhex("0a0000000001"), bytes.fromhex("0a0000000002")
    if platform == "esp32":
        board.board_json((BOARDS_DIR / "esp32-devkitc.json").read_text())
        hal = board.boot(platform)
        hal.radio()
        board.espnow.inbox.append((heard_from, b"reading"))
    else:
        board.board_json(pico_board_json())
        hal = board.boot(platform)
        hal.radio()
        board.uarts[0].rx += framing.encode(PICO_MAC + heard_from + b"reading")
    commission_for_test(board.flash)  # only a commissioned board uses the radio
    for_the_repl = b"\r\nimport os\r\n"
    board.stdin.feed(framing.encode(link.ping(0xC0FFEE03)) + framing.encode(link.radio_send(peer, b"tariff"))
                     + b"\x03" + for_the_repl)

    with pytest.raises(KeyboardInterrupt):
        runpy.run_path(str(FIRMWARE_DIR / "main.py"))

    decoder = framing.FrameDecoder()
    answers = decoder.feed(bytes(board.stdout.wire))
    assert (decoder.crc_errors, decoder.escape_errors, decoder.runts) == (0, 0, 0)
    pongs = [link.parse_pong(answer) for answer in answers if answer[0] == link.PONG]
    assert [(p.nonce, p.free_heap, p.uptime_ms, p.role, p.version, p.board, p.family) for p in pongs] == [
        (0xC0FFEE03, HEAP_FREE, NOW_MS, "unconfigured", meterfw.__version__,
         "esp32-devkitc" if platform == "esp32" else "rpi-pico", "esp32" if platform == "esp32" else "rp2040"),
    ]
    assert link.radio_sent(True) in answers
    assert link.radio_received(heard_from, b"reading") in answers
    assert len(answers) == 3
    if platform == "esp32":
        assert ("asend", peer, b"tariff", True) in board.espnow.calls
    else:
        assert framing.FrameDecoder().feed(bytes(board.uarts[0].tx)) == [peer + PICO_MAC + b"tariff"]
    assert board.kbd_intr == [-1, 3]
    assert board.stdin.pending == for_the_repl


# The in-home port: a UART of its own, from the description's "home", framed like the USB serial port.
@pytest.mark.parametrize("platform, name, wiring", [("esp32", "esp32-devkitc.json", (2, 17, 16)),
                                                    ("esp32", "esp32-s3-devkitc.json", (1, 17, 18)),
                                                    ("rp2", "rpi-pico.json", (1, 4, 5))])
def test_the_in_home_port_is_the_descriptions_uart(board, platform, name, wiring):
    board.board_json((BOARDS_DIR / name).read_text())
    hal = board.boot(platform)
    home = hal.home()
    assert home is not None and hal.home() is home
    [uart] = [u for u in board.uarts if u.id == wiring[0]]
    assert (uart.id, uart.tx_pin.id, uart.rx_pin.id, uart.baudrate) == (*wiring, 115200)
    frame = framing.encode(bytes((link.CONSENTS,)))
    uart.rx += frame
    assert run(home.read()) == frame

    async def answer():
        home.write(b"\xc0answer\xc0")
        for _ in range(5):
            await asyncio.sleep(0)

    run(answer())
    assert bytes(uart.tx) == b"\xc0answer\xc0"


def test_a_board_without_a_home_uart_has_no_in_home_port(board):
    description = json.loads((BOARDS_DIR / "esp32-devkitc.json").read_text())
    del description["home"]
    board.board_json(description)
    assert board.boot("esp32").home() is None and board.uarts == []


def test_a_gas_meter_burns_the_households_energy_as_gas(board, monkeypatch):
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    hal = board.boot("rp2")
    monkeypatch.setattr(time, "time", lambda: 1_795_000_000 // 86400 * 86400 + 3 * 3600)  # 300 W
    load = hal.metrology()
    litres = 0
    for _ in range(100):  # an hour: 0.3 kWh, 27.8 litres at 92.6 litres a kWh; the fraction is carried
        board.now_ms += 36_000
        litres += load.take_litres()
    assert litres == 27
    board.now_ms += 36_000 * 3  # 300 W for another 108 s: 0.009 kWh, enough with the carry for a litre more
    assert load.take_litres() == 1
