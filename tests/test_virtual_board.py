"""Virtual boards behave like boards: mpremote works on them, their flash survives a power cut, their RAM
does not, their heap is the board's, and the board protocol shares the serial port with the REPL."""
import re
import socket
import subprocess
import sys
import time

import pytest

import meterfw
from meterlab.boards.descriptions import load_board
from meterlab.boards.virtual import VirtualBoard, VirtualBoardError, running_boards
from meterlab.client import BoardClient
from meterlab.transport import BoardConnection, BoardLost, BoardTimeout

pytestmark = pytest.mark.virtual


def mpremote(url, *args, timeout=60, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", url, *args],
        capture_output=True, text=True, timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"mpremote {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("METERLAB_RUNTIME_DIR", str(tmp_path / "runtime"))
    return tmp_path


@pytest.fixture
def board(runtime):
    with VirtualBoard(runtime / "esme", role="esme", board="esp32",
                      log=open(runtime / "esme.log", "w")) as virtual_board:
        yield virtual_board


def ping(url, timeout=5.0):
    with BoardConnection(url, timeout=timeout) as connection:
        return BoardClient(connection).ping(timeout=timeout)


def test_ping_reports_role_version_board_and_heap(board):
    pong = ping(board.url)
    heap = load_board("esp32")["heap_bytes"]
    assert (pong.role, pong.version, pong.board, pong.family) == ("esme", meterfw.__version__,
                                                                  "esp32-devkitc", "esp32")
    assert 0 < pong.free_heap < heap


def test_mpremote_exec_and_file_round_trip(board, tmp_path):
    result = mpremote(board.url, "exec", "import meterfw; print(meterfw.__version__)")
    assert result.stdout.strip() == meterfw.__version__

    original = tmp_path / "blob.bin"
    original.write_bytes(bytes(range(256)) * 37 + b"\x03\x04\x05tail")
    mpremote(board.url, "fs", "cp", str(original), ":blob.bin")
    copy = tmp_path / "copy.bin"
    mpremote(board.url, "fs", "cp", ":blob.bin", str(copy))
    assert copy.read_bytes() == original.read_bytes()
    listing = mpremote(board.url, "fs", "ls").stdout.split()
    assert listing[listing.index("blob.bin") - 1] == str(len(original.read_bytes()))  # sizes, as on a board


def test_errno_is_micropythons_for_mpremote_and_firmware(board):
    missing = mpremote(board.url, "fs", "cat", ":no-such-file", check=False)
    assert missing.returncode != 0
    assert "No such file or directory" in missing.stderr
    code = "import os, errno\ntry:\n os.stat('nope')\nexcept OSError as e:\n print(e.errno, errno.ENOENT)"
    assert mpremote(board.url, "exec", code).stdout.split() == ["2", "2"]


def test_live_heap_beyond_the_boards_is_out_of_memory(runtime):
    # The port collects garbage only between calls from JavaScript, so the harness checks the live
    # heap after its collections (board.mjs, HeapMonitor): more live data than the board has is fatal.
    heap = load_board("esp32")["heap_bytes"]
    log_path = runtime / "oom.log"
    with VirtualBoard(runtime / "oom", role="esme", board="esp32", log=open(log_path, "w")) as board:
        mpremote(board.url, "exec", "fits = bytearray(%d)" % (heap // 2))
        time.sleep(0.5)
        assert "out of memory" not in log_path.read_text()
        mpremote(board.url, "exec", "hog = bytearray(%d)" % (heap + 1024))
        deadline = time.monotonic() + 5
        while "out of memory" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"exceeds this board's {heap}" in log_path.read_text()


def test_power_cut_keeps_flash_and_loses_ram(runtime):
    state = runtime / "board"
    log = open(runtime / "board.log", "w")
    first = VirtualBoard(state, role="gsme", board="rp2040", log=log)
    first.start()
    mpremote(first.url, "exec", "f = open('counter.txt', 'w'); f.write('41'); f.close()")
    first.stop()  # mpremote left it at the REPL; start it afresh so main.py runs
    first = VirtualBoard(state, board="rp2040", log=log, deploy=False)
    first.start()
    time.sleep(1.5)
    first_uptime = ping(first.url).uptime_ms
    first.kill()
    assert not first.alive

    second = VirtualBoard(state, board="rp2040", log=log, deploy=False)
    second.start()
    try:
        pong = ping(second.url)
        assert pong.role == "gsme"  # config.json survived, and main.py ran from flash
        assert pong.board == "rpi-pico"
        assert pong.uptime_ms < first_uptime  # RAM is gone: the firmware started from scratch
        assert mpremote(second.url, "exec", "print(open('counter.txt').read())").stdout.strip() == "41"
    finally:
        second.stop()


def test_state_folder_belongs_to_one_board_model(runtime):
    state = runtime / "pico"
    with VirtualBoard(state, role="esme", board="rp2040", log=subprocess.DEVNULL):
        pass
    with pytest.raises(VirtualBoardError, match="rpi-pico"):
        VirtualBoard(state, role="esme", board="esp32").start()


def test_frames_full_of_ctrl_c_never_interrupt_the_firmware(board):
    with BoardConnection(board.url, timeout=5) as connection:
        client = BoardClient(connection)
        for nonce_byte in (0x03, 0xC0, 0xDB, 0x04):
            connection.send(bytes((0x01, nonce_byte, 0x03, 0x03, nonce_byte)))
            answer = connection.receive(timeout=5)
            assert answer[0] == 0x81 and answer[1:5] == bytes((nonce_byte, 3, 3, nonce_byte))
        assert client.ping().role == "esme"


def test_ctrl_c_drops_to_repl_and_ctrl_d_restarts_the_firmware(board):
    with socket.create_connection(("127.0.0.1", int(board.url.rsplit(":", 1)[1])), timeout=10) as raw:
        raw.sendall(b"\x03")
        assert b">>> " in _read_until(raw, b">>> ")
        raw.sendall(b"print(6 * 7)\r")
        assert b"42" in _read_until(raw, b"42")
        raw.sendall(b"\x04")
        assert b"soft reboot" in _read_until(raw, b"soft reboot")
    assert ping(board.url).role == "esme"


def test_raw_paste_is_declined_so_mpremote_falls_back(board):
    with socket.create_connection(("127.0.0.1", int(board.url.rsplit(":", 1)[1])), timeout=10) as raw:
        raw.sendall(b"\r\x03\r\x01")
        _read_until(raw, b"raw REPL; CTRL-B to exit\r\n>")
        raw.sendall(b"\x05A\x01")
        assert _read_until(raw, b"R\x00").endswith(b"R\x00")
        raw.sendall(b"print('plain raw mode')\x04")
        assert b"plain raw mode" in _read_until(raw, b"\x04>")


def test_ping_times_out_cleanly_when_the_firmware_is_stopped(board):
    mpremote(board.url, "exec", "pass")  # leaves the board at its REPL, as on a real board
    started = time.monotonic()
    with pytest.raises(BoardTimeout):
        ping(board.url, timeout=1.0)
    assert time.monotonic() - started < 5


def test_running_boards_are_listed(board, runtime):
    listed = running_boards()
    assert [b["url"] for b in listed] == [board.url]
    assert listed[0]["role"] == "esme"
    board.stop()
    assert running_boards() == []


def _read_until(sock, marker, timeout=10):
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} in {data!r}")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}; got {data!r}")
        data += chunk
    return data


@pytest.mark.parametrize("cut_after_s", [0.3, 0.7, 1.1])
def test_power_cut_during_atomic_writes_leaves_old_or_new_never_corrupt(runtime, cut_after_s):
    # The firmware's atomic write (write a temporary file, then rename it over the old one) must
    # survive a power cut at any instant on a virtual board as on flash: the flash is written through
    # to the host at close and rename, each step itself atomic on the host.
    state = runtime / "cut"
    log = open(runtime / "cut.log", "w")
    board = VirtualBoard(state, role="esme", board="esp32", log=log)
    board.start()
    writer = subprocess.Popen(
        [sys.executable, "-m", "mpremote", "connect", board.url, "exec",
         "import os\nfor i in range(100000):\n"
         " f = open('counter.tmp', 'w'); f.write(('%08d' % i) * 64); f.close()\n"
         " os.rename('counter.tmp', 'counter')"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    flash = state / "flash"
    deadline = time.monotonic() + 20
    while not (flash / "counter").exists():  # the writes have begun
        assert time.monotonic() < deadline and writer.poll() is None, "the writer never wrote"
        time.sleep(0.02)
    time.sleep(cut_after_s)
    board.kill()
    writer.kill()
    writer.wait()
    before_restart = (flash / "counter").read_text()

    again = VirtualBoard(state, board="esp32", log=log, deploy=False)
    again.start()
    try:
        assert not list(flash.glob("*.vboard-tmp"))  # half-written host temporaries are gone at boot
        for content in (before_restart, mpremote(again.url, "exec", "print(open('counter').read())").stdout.strip()):
            assert len(content) == 8 * 64 and content == content[:8] * 64, f"torn counter file: {content[:40]}"
        assert int(before_restart[:8]) > 0
    finally:
        again.stop()


def test_a_board_that_dies_is_reported_lost(runtime):
    board = VirtualBoard(runtime / "lost", role="chf", board="esp32", log=open(runtime / "lost.log", "w"))
    board.start()
    with BoardConnection(board.url, timeout=5) as connection:
        assert BoardClient(connection).ping().role == "chf"
        board.kill()
        with pytest.raises(BoardLost, match=re.escape(board.url)):
            connection.receive(timeout=5)
