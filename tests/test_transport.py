"""meterlab.transport over pyserial's loop:// and over sockets to a stand-in virtual board on 127.0.0.1."""

import contextlib
import os
import random
import socket
import threading
import time

import pytest

from meterfw import framing
from meterlab.transport import BoardConnection, BoardLost, BoardTimeout, PortUnavailable, TransportError

pytestmark = pytest.mark.timeout(60)

# Upper bound on anything the stand-in board waits for, so that its thread always ends.
BOARD_SECONDS = 10.0


@contextlib.contextmanager
def fake_board(behaviour):
    """A stand-in for a virtual board: serves one TCP connection on 127.0.0.1 with behaviour(connection)
    in a thread, and yields its socket:// URL. The connection is closed when behaviour returns."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(BOARD_SECONDS)

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(BOARD_SECONDS)
            behaviour(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "socket://127.0.0.1:%d" % listener.getsockname()[1]
    finally:
        thread.join(BOARD_SECONDS)
        listener.close()


def frames_from(connection):
    """Payloads the host sends, until it closes the connection."""
    decoder = framing.FrameDecoder()
    while True:
        data = connection.recv(4096)
        if not data:
            return
        yield from decoder.feed(data)


def wait_for_host(connection):
    # pyserial's socket open() discards whatever has already arrived, so a board that spoke first
    # could lose its words: the stand-in speaks only once the host has sent a frame.
    next(frames_from(connection))


def unused_local_port():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_ten_thousand_frames_through_noise_arrive_in_order_and_alone():
    rng = random.Random(1055)
    sent = [rng.randbytes(rng.randint(1, 48)) for _ in range(10_000)]
    stream = bytearray()
    for payload in sent:
        stream += rng.randbytes(rng.randint(0, 64))  # noise: any bytes, END, ESC and Ctrl-C among them
        stream += framing.encode(payload)
    stream += rng.randbytes(64)

    def board(connection):
        wait_for_host(connection)
        connection.sendall(stream)

    with fake_board(board) as url, BoardConnection(url, timeout=5.0) as board_connection:
        board_connection.send(b"start")
        received = [board_connection.receive() for _ in sent]
        # The board closed after the last byte: nothing may be left but the end of the connection.
        with pytest.raises(BoardLost):
            board_connection.receive()
        stats = board_connection.stats
    assert received == sent
    assert stats["frames"] == len(sent)
    assert stats["crc_errors"] + stats["escape_errors"] + stats["runts"] > 0


def silent_socket_board(connection):
    for _ in frames_from(connection):
        pass


@pytest.mark.parametrize("board", ["loop", "socket"])
def test_board_timeout_comes_on_time_and_leaves_the_connection_usable(board):
    with contextlib.ExitStack() as stack:
        url = "loop://" if board == "loop" else stack.enter_context(fake_board(silent_socket_board))
        board_connection = stack.enter_context(BoardConnection(url, timeout=5.0))
        started = time.monotonic()
        with pytest.raises(BoardTimeout, match="no frame from %s within 0.3 s" % url):
            board_connection.receive(timeout=0.3)
        elapsed = time.monotonic() - started
        assert 0.3 <= elapsed < 1.3
        board_connection.send(b"still here")
        if board == "loop":
            assert board_connection.receive() == b"still here"


def test_board_lost_when_the_virtual_board_goes_away():
    def board(connection):
        wait_for_host(connection)
        connection.sendall(framing.encode(b"bye"))

    with fake_board(board) as url, BoardConnection(url) as board_connection:
        assert board_connection.request(b"hello") == b"bye"
        with pytest.raises(BoardLost, match="lost connection to %s: .*virtual board stopped" % url):
            board_connection.receive(timeout=BOARD_SECONDS)


def test_port_unavailable_when_nothing_listens():
    url = "socket://127.0.0.1:%d" % unused_local_port()
    with pytest.raises(PortUnavailable) as caught:
        BoardConnection(url)
    message = str(caught.value)
    assert message.startswith("cannot open %s: " % url)
    assert "refused" in message
    assert "is the virtual board running?" in message


@pytest.mark.parametrize(
    "url, reason",
    [("/dev/meterlab-no-such-board", "No such file or directory"), ("nosuchscheme://x", "protocol 'nosuchscheme'")],
)
def test_port_unavailable_names_the_port_and_the_reason(url, reason):
    with pytest.raises(PortUnavailable, match="cannot open %s: .*%s" % (url, reason)):
        BoardConnection(url)


def test_request_skips_frames_it_does_not_accept():
    def board(connection):
        for payload in frames_from(connection):
            connection.sendall(
                framing.encode(b"alert: tamper")
                + b"\x03noise\xc0"
                + framing.encode(b"alert: low battery")
                + framing.encode(b"re:" + payload)
            )

    def is_response(payload):
        return payload.startswith(b"re:")

    with fake_board(board) as url, BoardConnection(url) as board_connection:
        assert board_connection.request(b"read", accept=is_response) == b"re:read"
        assert board_connection.request(b"tariff", accept=is_response) == b"re:tariff"
        assert board_connection.stats["discarded"] == 4
        assert board_connection.stats["frames"] == 6


def test_request_deadline_holds_while_unaccepted_frames_keep_coming():
    def chatty_board(connection):
        wait_for_host(connection)
        with contextlib.suppress(OSError):  # the host hangs up first
            for _ in range(int(BOARD_SECONDS / 0.01)):
                connection.sendall(framing.encode(b"alert"))
                time.sleep(0.01)

    with fake_board(chatty_board) as url, BoardConnection(url) as board_connection:
        started = time.monotonic()
        with pytest.raises(BoardTimeout, match="within 0.5 s"):
            board_connection.request(b"read", timeout=0.5, accept=lambda payload: payload != b"alert")
        assert time.monotonic() - started < 1.5
        assert board_connection.stats["discarded"] > 0


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_pseudo_terminal_takes_the_real_serial_port_path():
    # A pty is a real serial port to pyserial: locked for exclusive use, waited on with select().
    board_side, host_side = os.openpty()
    path = os.ttyname(host_side)
    try:
        with BoardConnection(path) as board_connection:
            with pytest.raises(PortUnavailable, match="cannot open %s: .*another program" % path):
                BoardConnection(path)
            os.write(board_side, b"boot noise\x03\xc0" + framing.encode(b"hello"))
            assert board_connection.receive() == b"hello"
            board_connection.send(b"read")
            assert framing.FrameDecoder().feed(os.read(board_side, 64)) == [b"read"]
            os.close(board_side)
            board_side = None
            with pytest.raises(BoardLost, match="lost connection to %s: .*unplugged" % path):
                board_connection.receive()
    finally:
        os.close(host_side)
        if board_side is not None:
            os.close(board_side)


def test_loopback_port_without_a_descriptor():
    # loop:// has no file descriptor, so this takes the in_waiting path; its buffer holds 4096 bytes.
    sent = [bytes([i]) * (i % 40 + 1) + b"\xc0\xdb\x03" for i in range(60)]
    with BoardConnection("loop://") as board_connection:
        for payload in sent:
            board_connection.send(payload)
        assert [board_connection.receive() for _ in sent] == sent
        board_connection.send(b"stale")
        assert board_connection.request(b"ping", accept=lambda payload: payload == b"ping") == b"ping"
        assert board_connection.stats["discarded"] == 1


def test_reset_input_forgets_what_was_received():
    with BoardConnection("loop://") as board_connection:
        board_connection.send(b"old")
        board_connection.send(b"older")
        board_connection.receive()  # leaves "older" waiting in the connection
        board_connection.send(b"oldest")
        board_connection.reset_input()
        with pytest.raises(BoardTimeout):
            board_connection.receive(timeout=0.1)


def test_send_refuses_payloads_the_codec_refuses():
    with BoardConnection("loop://", max_payload=8) as board_connection:
        with pytest.raises(ValueError):
            board_connection.send(b"123456789")
        with pytest.raises(ValueError):
            board_connection.send(b"")


def test_closed_connection_refuses_use_and_closes_twice():
    board_connection = BoardConnection("loop://")
    board_connection.close()
    board_connection.close()
    with pytest.raises(TransportError, match="closed"):
        board_connection.receive(timeout=0.1)
    with pytest.raises(TransportError, match="closed"):
        board_connection.send(b"x")
