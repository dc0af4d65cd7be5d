"""The host's one way to speak the board protocol: framed payloads over any pyserial URL.

A board is reached as /dev/ttyUSB0 (a real board), socket://127.0.0.1:PORT (a virtual board), loop://
(tests) or rfc2217://HOST:PORT (a board on another machine). Frames are meterfw.framing's, the codec the
firmware itself runs. Every failure is a TransportError subclass whose message names the port, for the
CLI to show as one line; nothing here prints.
"""

import collections
import contextlib
import errno
import select
import time

import serial
import serial.rfc2217

from meterfw import framing
from meterlab.capture import recorder
from meterlab.capture.serial_link import SerialLinkRecorder

READ_CHUNK = 4096
# How long one read blocks on ports that cannot be waited on with select() (loop://, rfc2217://,
# Windows COM ports): receive() may overrun its deadline by this much there.
POLL_SECONDS = 0.05
# receive() reads only when no frame is waiting, and every frame a chunk completes needs at least six of
# its bytes (a payload byte, the CRC, an END), except the first, which may have begun in an earlier chunk:
# so this many frames never wait at once, and the bound never drops one.
_MAX_WAITING_FRAMES = READ_CHUNK // 6 + 1
_IN_USE_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY)


class TransportError(Exception):
    """Base of every error raised here."""


class PortUnavailable(TransportError):
    """The port could not be opened."""


class BoardTimeout(TransportError):
    """No complete frame arrived, or a write did not finish, in time. The connection remains usable."""


class BoardLost(TransportError):
    """The port went away while in use: board unplugged, virtual board stopped, socket closed."""


class BoardConnection:
    """Framed payloads to and from one board.

    timeout (seconds) is the default for receive() and request(), and bounds each write (except on
    rfc2217://, where pyserial has no write timeout). capture (a meterlab.capture.Capture; default: the
    process-wide one when the connection is made, None: none) records the GBCS frames sent, and those
    received as they are decoded, whether or not a caller takes them.
    """

    def __init__(self, url, *, baudrate=115200, timeout=2.0, max_payload=framing.MAX_PAYLOAD,
                 capture=recorder.CURRENT):
        self.url = url
        self.timeout = timeout
        self.max_payload = max_payload
        self._decoder = framing.FrameDecoder(max_payload)
        self._waiting = collections.deque(maxlen=_MAX_WAITING_FRAMES)
        self._discarded = 0
        self._port = self._open(baudrate)
        capture = recorder.chosen(capture)
        self._capture = SerialLinkRecorder(capture, url) if capture is not None else None
        self._fileno = _fileno_or_none(self._port)
        if self._fileno is not None:
            # Waiting happens in select(); reads then take what is there without blocking.
            self._port.timeout = 0

    def _open(self, baudrate):
        try:
            port = serial.serial_for_url(self.url, do_not_open=True)
            port.baudrate = baudrate
            port.timeout = POLL_SECONDS
            # pyserial's RFC 2217 client refuses any write timeout.
            if not isinstance(port, serial.rfc2217.Serial):
                port.write_timeout = self.timeout
            # Only real serial ports can be locked; two programs on one board corrupt each other's frames.
            if isinstance(port, serial.Serial):
                port.exclusive = True
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortUnavailable(_open_failure_message(self.url, exc)) from exc
        return port

    def send(self, payload):
        """Send one payload (1 to max_payload bytes; ValueError otherwise) as a frame."""
        frame = framing.encode(payload, self.max_payload)
        with self._port_errors():
            self._port.write(frame)
            self._port.flush()
        if self._capture is not None:
            self._capture.sent(payload)

    def send_unframed(self, data):
        """Write bytes outside the framing: keystrokes for the MicroPython REPL that shares the port."""
        with self._port_errors():
            self._port.write(data)
            self._port.flush()

    def receive(self, timeout=None):
        """The next valid payload. BoardTimeout if none completes within timeout seconds (default: the
        connection's); a partial frame is kept for the next call."""
        if timeout is None:
            timeout = self.timeout
        return self._receive_by(time.monotonic() + timeout, timeout)

    def request(self, payload, timeout=None, accept=None):
        """Send payload, then return the first payload received for which accept(payload) is true (the
        first of any without accept). Payloads not accepted are discarded and counted in stats. timeout
        (default: the connection's) bounds the whole wait, however many payloads are skipped."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        self.send(payload)
        while True:
            response = self._receive_by(deadline, timeout)
            if accept is None or accept(response):
                return response
            self._discarded += 1

    def reset_input(self):
        """Forget everything received and not yet returned: the port's buffer, waiting frames, a partial frame."""
        with self._port_errors():
            self._port.reset_input_buffer()
        self._waiting.clear()
        self._decoder.reset()

    @property
    def stats(self):
        """Counters since opening: valid frames, rejected candidates by reason, payloads request() skipped."""
        decoder = self._decoder
        return {
            "frames": decoder.frames,
            "crc_errors": decoder.crc_errors,
            "escape_errors": decoder.escape_errors,
            "oversize": decoder.oversize,
            "runts": decoder.runts,
            "discarded": self._discarded,
        }

    def close(self):
        """Close the port. Safe to repeat, and after BoardLost; never raises, as it runs in finally blocks
        where a second error would hide the first."""
        port = self._port
        if not port.is_open:
            return
        if isinstance(port, serial.Serial):
            # RTS before DTR, as mpremote does: the other order resets an ESP32 through its auto-reset
            # circuit. A pty has no such lines, and a vanished port has nothing left to set.
            with contextlib.suppress(serial.SerialException, OSError):
                port.rts = False
                port.dtr = False
        with contextlib.suppress(serial.SerialException, OSError):
            port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _receive_by(self, deadline, timeout):
        # At least one read even when the deadline has passed, so timeout=0 polls; and the deadline is
        # checked after every read, so a stream of noise without frames cannot hold us here.
        while not self._waiting:
            data = self._read_some(max(0.0, deadline - time.monotonic()))
            payloads = self._decoder.feed(data)
            if self._capture is not None:
                for payload in payloads:
                    self._capture.received(payload)
            self._waiting.extend(payloads)
            if not self._waiting and time.monotonic() >= deadline:
                raise BoardTimeout("no frame from %s within %g s" % (self.url, timeout))
        return self._waiting.popleft()

    def _read_some(self, wait_seconds):
        """What arrives within about wait_seconds (b'' if nothing does), without waiting for more."""
        with self._port_errors():
            if self._fileno is not None:
                readable, _, _ = select.select([self._fileno], [], [], wait_seconds)
                return self._port.read(READ_CHUNK) if readable else b""
            # These ports block in read(1) for at most POLL_SECONDS, and report exactly what they hold.
            first = self._port.read(1)
            if not first:
                return first
            return first + self._port.read(min(self._port.in_waiting, READ_CHUNK - 1))

    @contextlib.contextmanager
    def _port_errors(self):
        # Checked first because a closed port's descriptor number may already belong to another file.
        if not self._port.is_open:
            raise TransportError("connection to %s is closed" % self.url)
        try:
            yield
        except serial.SerialTimeoutException as exc:
            raise BoardTimeout("write to %s did not finish within %g s" % (self.url, self.timeout)) from exc
        except (serial.SerialException, OSError) as exc:
            raise BoardLost("lost connection to %s: %s%s" % (self.url, exc, _lost_hint(self.url))) from exc


def _fileno_or_none(port):
    """The descriptor to select() on for ports that have one (real serial ports on POSIX, sockets)."""
    try:
        return port.fileno()
    except OSError:  # io.UnsupportedOperation, from ports that have no descriptor
        return None


def _os_error_under(exc):
    """The operating system's own error under pyserial's wrapper, if there is one."""
    while exc is not None:
        if isinstance(exc, OSError) and not isinstance(exc, serial.SerialException) and exc.strerror:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _open_failure_message(url, exc):
    os_error = _os_error_under(exc)
    message = "cannot open %s: %s" % (url, os_error.strerror if os_error else exc)
    if url.startswith("socket://"):
        message += " (is the virtual board running?)"
    elif os_error is not None and os_error.errno in _IN_USE_ERRNOS:
        message += " (is another program, a serial monitor or mpremote, using it?)"
    return message


def _lost_hint(url):
    if url.startswith("socket://"):
        return " (virtual board stopped?)"
    if "://" not in url:
        return " (board unplugged or reset?)"
    return ""
