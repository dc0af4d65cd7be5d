"""Virtual radio: an ESP-NOW-like air between virtual boards, brokered by the host.

Each virtual board (a hub or a meter) connects to the broker over TCP on loopback and registers its
station MAC; frames it sends are delivered to other stations through a configurable, impaired air:
loss, delay, duplication and corruption, with ESP-NOW's 250-byte frame limit.

Wire protocol (TCP, both directions)
====================================

Every message is a 2-byte big-endian length N followed by N bytes of body. N counts the body only;
body[0] is the message type and the rest is its payload. N must be at least 1; the broker accepts
N up to 1024 (`MAX_MESSAGE_BODY`) and may itself send up to 65535 (a STATS_REPLY naming many stations).
A MAC is always 6 raw bytes. Several messages may arrive in one TCP read and one message may span
several reads.

Board -> broker
---------------
0x01 HELLO   payload: MAC(6)                      payload exactly 6 bytes
             Registers this connection as the station MAC. Answered by WELCOME. A connection says
             HELLO at most once. FF:FF:FF:FF:FF:FF cannot be registered. If another connection already
             holds the MAC, that older connection is sent ERROR ("replaced ...") and closed; the newer
             one takes over (a board restarting reconnects with its MAC).
0x02 SEND    payload: seq(1) dst MAC(6) data(0..)  payload at least 7 bytes
             Only after HELLO. seq is the sender's choice (0..255), echoed in the STATUS.
             dst FF:FF:FF:FF:FF:FF broadcasts to every other registered station; the sender's own MAC
             is delivered back to it like any station. data must be 1..250 bytes (`MAX_FRAME`);
             otherwise the frame is refused: STATUS code 2 and nothing is delivered.
             Every SEND is answered by exactly one STATUS with the same seq, in the order of the SENDs.

Any client -> broker (no HELLO needed; used by tools and tests)
---------------------------------------------------------------
0x10 SET     payload: UTF-8 JSON object with any of
                 "loss", "duplicate", "corrupt": probability, a number in [0, 1]
                 "delay_ms": [min, max], numbers with 0 <= min <= max <= 60000
                 "seed": integer or null; reseeds the broker's random generator (also when repeated)
             Answered by OK; an empty object {} just reads the settings. Invalid UTF-8 or JSON, a
             non-object, an unknown key or a bad value is answered by ERROR and changes nothing
             (the connection stays open).
0x13 STATS   payload: empty. Answered by STATS_REPLY.

Broker -> board / client
------------------------
0x03 DELIVER payload: src MAC(6) data(1..250)      a frame from station src
0x04 STATUS  payload: seq(1) code(1)               the fate of SEND seq:
                 0 = delivered: unicast was acked (like ESP-NOW's MAC-layer ACK), or broadcast
                     handed to the air (broadcast is never acked, so it is always 0)
                 1 = not delivered: unicast lost on the air, or no station has that MAC
                 2 = refused: data empty or longer than 250 bytes
             For unicast the status is sent as soon as the broker decides the frame's fate, which may
             be before a delayed DELIVER actually happens (and, with no delay, just after it); so a
             status says nothing about when the receiver sees the frame.
0x05 WELCOME payload: MAC(6)                       the MAC from HELLO, echoed
0x11 OK      payload: UTF-8 JSON object of the full current settings, e.g.
                 {"loss": 0.1, "duplicate": 0.0, "corrupt": 0.0, "delay_ms": [5, 40], "seed": 1}
0x12 ERROR   payload: UTF-8 message. Either the answer to an invalid SET (connection stays open),
             or a protocol error, after which the broker closes the connection: length 0 or over
             1024, unknown or broker-only type, payload too short/long for its type, SEND before
             HELLO, a second HELLO, HELLO with the broadcast MAC, or the stream ending mid-message.
0x14 STATS_REPLY payload: UTF-8 JSON
                 {"stations": {"aa:bb:cc:dd:ee:ff": COUNTERS, ...}, "totals": COUNTERS}
             COUNTERS = {"sent", "delivered", "lost", "duplicated", "corrupted", "refused"}, integers,
             attributed to the station that sent the frames (every station that ever said HELLO):
                 sent       SENDs accepted (a broadcast counts once)
                 refused    SENDs refused for size
                 delivered  copies written to a receiver (duplicates included)
                 lost       deliveries dropped: lost on the air; unicast to an unknown MAC; when a copy
                            came due, its receiver gone or over 64 KiB behind in reading; or more than
                            10000 delayed copies already waiting
                 duplicated extra copies made by duplication
                 corrupted  copies with flipped bits

Impairments, per delivery (a broadcast makes one delivery per receiving station)
--------------------------------------------------------------------------------
loss drops the delivery. Otherwise one copy is delivered and, with probability duplicate, a second
copy too. Each copy independently: with probability corrupt, 1..3 distinct random bits of its data are
flipped (length unchanged; real ESP-NOW hardware drops a bad-CRC frame, but corruption here models a
hostile or buggy relay so that the security layers above must catch it); and it is delayed uniformly
in [min, max] ms, so reordering arises naturally. All draws come from one `random.Random`, so with a
seed and the same order of SENDs a run is reproducible.

Capture
-------
With a capture (RadioBroker(capture=...), or the process-wide one of `meterlab --capture FILE virtual
radio`), the broker records the GBCS frames inside the HAN messages it delivers, reassembled as each
receiver does (meterlab.capture.air): a copy lost on the air is not recorded, a corrupted one is recorded
as received, and a duplicated fragment completes nothing twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import re
import signal

from meterlab.capture import recorder
from meterlab.capture.air import AirRecorder

logger = logging.getLogger(__name__)

MAX_FRAME = 250
MAX_MESSAGE_BODY = 1024
MAX_DELAY_MS = 60_000
BROADCAST = b"\xff" * 6

HELLO = 0x01
SEND = 0x02
DELIVER = 0x03
STATUS = 0x04
WELCOME = 0x05
SET = 0x10
OK = 0x11
ERROR = 0x12
STATS = 0x13
STATS_REPLY = 0x14

STATUS_DELIVERED = 0
STATUS_NOT_DELIVERED = 1
STATUS_REFUSED = 2

COUNTER_NAMES = ("sent", "delivered", "lost", "duplicated", "corrupted", "refused")
IMPAIRMENT_NAMES = ("loss", "duplicate", "corrupt", "delay_ms", "seed")

# A receiver that stops reading must not make the broker buffer without limit: past this many unsent
# bytes its deliveries are dropped, as a real radio's receive queue would overflow.
MAX_RECEIVER_BACKLOG = 64 * 1024
# Delayed copies wait in the broker; this caps how many (and so their memory) under a flood.
MAX_PENDING_DELIVERIES = 10_000

_MAC_PATTERN = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


class ProtocolError(Exception):
    """A malformed message; the peer is told why and the connection is closed."""


class RadioError(Exception):
    """The broker answered ERROR, or the connection to it closed."""


def mac_from_str(text: str) -> bytes:
    """'aa:bb:cc:dd:ee:ff' (either case) -> 6 bytes."""
    if not isinstance(text, str) or not _MAC_PATTERN.fullmatch(text):
        raise ValueError(f"bad MAC address {text!r}: expected six hex bytes like 'aa:bb:cc:dd:ee:ff'")
    return bytes.fromhex(text.replace(":", ""))


def mac_to_str(mac: bytes) -> str:
    """6 bytes -> 'aa:bb:cc:dd:ee:ff'."""
    return _mac_bytes(mac).hex(":")


def _mac_bytes(mac: bytes) -> bytes:
    if not isinstance(mac, (bytes, bytearray, memoryview)) or len(mac) != 6:
        raise ValueError(f"bad MAC address {mac!r}: expected 6 bytes")
    return bytes(mac)


def _as_mac(mac: bytes | str) -> bytes:
    return mac_from_str(mac) if isinstance(mac, str) else _mac_bytes(mac)


def parse_delay(text: str) -> tuple[int, int]:
    """'5:40' -> (5, 40), '10' -> (10, 10): a delay range in whole milliseconds."""
    parts = text.split(":")
    if len(parts) > 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"bad delay {text!r}: expected MS or MIN:MAX in whole milliseconds, like 5:40")
    low, high = int(parts[0]), int(parts[-1])
    if low > high:
        raise ValueError(f"bad delay {text!r}: minimum {low} ms exceeds maximum {high} ms")
    if high > MAX_DELAY_MS:
        raise ValueError(f"bad delay {text!r}: at most {MAX_DELAY_MS} ms")
    return low, high


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8700' -> ('127.0.0.1', 8700); port 0 lets the system choose."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad listen address {text!r}: expected HOST:PORT, like 127.0.0.1:8700")
    return host, int(port)


def _frame(msg_type: int, payload: bytes = b"") -> bytes:
    body = bytes([msg_type]) + payload
    return len(body).to_bytes(2, "big") + body


async def _read_body(reader: asyncio.StreamReader, max_body: int) -> bytes | None:
    """The next message's body, or None when the stream ends cleanly between messages."""
    try:
        header = await reader.readexactly(2)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise ProtocolError("stream ended inside a length header") from None
    length = int.from_bytes(header, "big")
    if length == 0:
        raise ProtocolError("empty message (length 0)")
    if length > max_body:
        raise ProtocolError(f"message length {length} exceeds {max_body}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as error:
        raise ProtocolError(f"stream ended after {len(error.partial)} of {length} bytes") from None


def _is_probability(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= 1)


def _is_milliseconds(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= MAX_DELAY_MS)


def _validated(settings: dict) -> dict:
    """The settings checked and normalised; ValueError names the first bad one."""
    unknown = sorted(set(settings) - set(IMPAIRMENT_NAMES))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(IMPAIRMENT_NAMES)}")
    checked = {}
    for name in ("loss", "duplicate", "corrupt"):
        if name in settings:
            if not _is_probability(settings[name]):
                raise ValueError(f"{name} must be a probability from 0 to 1, not {settings[name]!r}")
            checked[name] = settings[name]
    if "delay_ms" in settings:
        delay = settings["delay_ms"]
        if (not isinstance(delay, (list, tuple)) or len(delay) != 2
                or not all(_is_milliseconds(bound) for bound in delay) or delay[0] > delay[1]):
            raise ValueError(f"delay_ms must be [min, max] with 0 <= min <= max <= {MAX_DELAY_MS}, "
                             f"not {delay!r}")
        checked["delay_ms"] = (delay[0], delay[1])
    if "seed" in settings:
        seed = settings["seed"]
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer or null, not {seed!r}")
        checked["seed"] = seed
    return checked


def _new_counters() -> dict[str, int]:
    return dict.fromkeys(COUNTER_NAMES, 0)


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.mac: bytes | None = None
        self.peer = writer.get_extra_info("peername")

    def reply(self, msg_type: int, payload: bytes = b"") -> None:
        self.writer.write(_frame(msg_type, payload))

    def fail(self, reason: str) -> None:
        """Tell the peer why, then close (buffered bytes are flushed before the socket closes)."""
        if not self.writer.is_closing():
            self.reply(ERROR, reason.encode())
            self.writer.close()


class RadioBroker:
    """The shared air. Use in-process (`await start()`, `await stop()`) or through `run_broker`."""

    def __init__(self, loss: float = 0.0, duplicate: float = 0.0, corrupt: float = 0.0,
                 delay_ms: tuple[float, float] = (0, 0), seed: int | None = None,
                 capture=recorder.CURRENT):
        """capture (a meterlab.capture.Capture; default: the process-wide one now, None: none) records the
        GBCS frames the stations receive (meterlab.capture.air), from start() on."""
        self._capture = recorder.chosen(capture)
        self._air: AirRecorder | None = None
        self._rng = random.Random()
        self._settings = {"loss": 0.0, "duplicate": 0.0, "corrupt": 0.0, "delay_ms": (0, 0), "seed": None}
        self.set_impairments(loss=loss, duplicate=duplicate, corrupt=corrupt, delay_ms=delay_ms, seed=seed)
        self._stations: dict[bytes, _Connection] = {}
        self._counters: dict[str, dict[str, int]] = {}
        self._connection_tasks: set[asyncio.Task] = set()
        self._connections: set[_Connection] = set()
        self._pending: dict[int, asyncio.TimerHandle] = {}
        self._pending_ids = itertools.count()
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve_connection, host, port)
        if self._capture is not None:
            self._air = AirRecorder(self._capture, f"han radio {host}:{self.port}")

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the radio broker is not started")
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop frames still in the air and disconnect every client."""
        if self._server is not None:
            self._server.close()
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        for connection in list(self._connections):
            connection.writer.transport.abort()  # a client that stopped reading cannot hold up the stop
        if self._connection_tasks:
            _, stuck = await asyncio.wait(self._connection_tasks, timeout=2)
            for task in stuck:
                task.cancel()
        if self._server is not None:
            # Since Python 3.12 this also waits for the connections, so it comes after closing them.
            await self._server.wait_closed()

    def settings(self) -> dict:
        """The current impairments, as SET's OK reply carries them."""
        return {**self._settings, "delay_ms": list(self._settings["delay_ms"])}

    def set_impairments(self, **settings) -> dict:
        """Change any of loss, duplicate, corrupt, delay_ms=(min, max), seed; all or nothing.

        Raises ValueError on a bad name or value. Returns the full current settings.
        """
        checked = _validated(settings)
        self._settings.update(checked)
        if "seed" in checked:
            self._rng.seed(checked["seed"])
        return self.settings()

    def stats(self) -> dict:
        """{"stations": {mac: counters}, "totals": counters}; counters belong to the sending station."""
        totals = _new_counters()
        for counters in self._counters.values():
            for name, count in counters.items():
                totals[name] += count
        return {"stations": {mac: dict(counters) for mac, counters in self._counters.items()},
                "totals": totals}

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(writer)
        self._connections.add(connection)
        self._connection_tasks.add(asyncio.current_task())
        try:
            while (body := await _read_body(reader, MAX_MESSAGE_BODY)) is not None:
                self._dispatch(connection, body)
                await writer.drain()  # a client that does not read its replies stops being read
        except ProtocolError as error:
            logger.warning("radio: closing connection from %s: %s", connection.peer, error)
            connection.fail(str(error))
        except ConnectionError:
            pass  # the board went away; nothing to tell it
        except Exception:
            # One misbehaving connection must never take down the shared air.
            logger.exception("radio: internal error serving %s", connection.peer)
            connection.fail("internal error")
        finally:
            if connection.mac is not None and self._stations.get(connection.mac) is connection:
                del self._stations[connection.mac]
            self._connections.discard(connection)
            self._connection_tasks.discard(asyncio.current_task())
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _dispatch(self, connection: _Connection, body: bytes) -> None:
        msg_type, payload = body[0], body[1:]
        if msg_type == HELLO:
            self._hello(connection, payload)
        elif msg_type == SEND:
            self._send(connection, payload)
        elif msg_type == SET:
            self._set(connection, payload)
        elif msg_type == STATS:
            if payload:
                raise ProtocolError(f"STATS carries no payload, got {len(payload)} bytes")
            connection.reply(STATS_REPLY, json.dumps(self.stats()).encode())
        else:
            raise ProtocolError(f"unknown message type 0x{msg_type:02x}")

    def _hello(self, connection: _Connection, payload: bytes) -> None:
        if len(payload) != 6:
            raise ProtocolError(f"HELLO needs a 6-byte MAC, got {len(payload)} bytes")
        if connection.mac is not None:
            raise ProtocolError(f"this connection already said HELLO as {mac_to_str(connection.mac)}")
        if payload == BROADCAST:
            raise ProtocolError("the broadcast MAC cannot be a station")
        mac = bytes(payload)
        previous = self._stations.get(mac)
        if previous is not None:
            logger.info("radio: station %s reconnected from %s; closing its connection from %s",
                        mac_to_str(mac), connection.peer, previous.peer)
            previous.fail(f"replaced by a new connection for station {mac_to_str(mac)}")
        connection.mac = mac
        self._stations[mac] = connection
        self._counters.setdefault(mac_to_str(mac), _new_counters())
        connection.reply(WELCOME, mac)

    def _send(self, connection: _Connection, payload: bytes) -> None:
        if connection.mac is None:
            raise ProtocolError("SEND before HELLO")
        if len(payload) < 7:
            raise ProtocolError(f"SEND needs a sequence number and a destination MAC, got {len(payload)} bytes")
        seq, destination, data = payload[0], bytes(payload[1:7]), bytes(payload[7:])
        counters = self._counters[mac_to_str(connection.mac)]
        if not 1 <= len(data) <= MAX_FRAME:
            counters["refused"] += 1
            connection.reply(STATUS, bytes([seq, STATUS_REFUSED]))
            return
        counters["sent"] += 1
        if destination == BROADCAST:
            for receiver in self._stations:
                if receiver != connection.mac:
                    self._transmit(connection.mac, receiver, data)
            code = STATUS_DELIVERED
        elif destination in self._stations:
            code = STATUS_DELIVERED if self._transmit(connection.mac, destination, data) else STATUS_NOT_DELIVERED
        else:
            counters["lost"] += 1
            code = STATUS_NOT_DELIVERED
        connection.reply(STATUS, bytes([seq, code]))

    def _set(self, connection: _Connection, payload: bytes) -> None:
        try:
            settings = json.loads(payload.decode("utf-8"))
            if not isinstance(settings, dict):
                raise ValueError("SET needs a JSON object")
            current = self.set_impairments(**settings)
        except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
            connection.reply(ERROR, f"settings unchanged: {error}".encode())
            return
        logger.info("radio: impairments now %s", current)
        connection.reply(OK, json.dumps(current).encode())

    def _transmit(self, source: bytes, destination: bytes, data: bytes) -> bool:
        """Decide one delivery's fate and schedule its copies; False when lost on the air."""
        counters = self._counters[mac_to_str(source)]
        if self._rng.random() < self._settings["loss"]:
            counters["lost"] += 1
            return False
        self._schedule_copy(source, destination, data)
        if self._rng.random() < self._settings["duplicate"]:
            counters["duplicated"] += 1
            self._schedule_copy(source, destination, data)
        return True

    def _schedule_copy(self, source: bytes, destination: bytes, data: bytes) -> None:
        counters = self._counters[mac_to_str(source)]
        if self._rng.random() < self._settings["corrupt"]:
            counters["corrupted"] += 1
            data = self._flip_bits(data)
        delay_s = self._rng.uniform(*self._settings["delay_ms"]) / 1000
        if delay_s == 0:
            self._deliver(source, destination, data)
        elif len(self._pending) >= MAX_PENDING_DELIVERIES:
            counters["lost"] += 1
        else:
            pending_id = next(self._pending_ids)
            self._pending[pending_id] = asyncio.get_running_loop().call_later(
                delay_s, self._deliver_pending, pending_id, source, destination, data)

    def _flip_bits(self, data: bytes) -> bytes:
        flipped = bytearray(data)
        # Distinct bits, so the copy always differs; data is at least 1 byte, so 8 bits to choose from.
        for bit in self._rng.sample(range(len(data) * 8), self._rng.randint(1, 3)):
            flipped[bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(flipped)

    def _deliver_pending(self, pending_id: int, source: bytes, destination: bytes, data: bytes) -> None:
        del self._pending[pending_id]
        self._deliver(source, destination, data)

    def _deliver(self, source: bytes, destination: bytes, data: bytes) -> None:
        # Looked up when the copy comes due: a board that reconnected meanwhile gets it, one that left does not.
        counters = self._counters[mac_to_str(source)]
        receiver = self._stations.get(destination)
        if (receiver is None or receiver.writer.is_closing()
                or receiver.writer.transport.get_write_buffer_size() > MAX_RECEIVER_BACKLOG):
            counters["lost"] += 1
            return
        receiver.reply(DELIVER, source + data)
        counters["delivered"] += 1
        if self._air is not None:
            self._air.delivered(source, destination, data)


class RadioClient:
    """A station or control client speaking the wire protocol; tests use it in place of a board."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mac: bytes | None):
        self.mac = mac
        self._reader = reader
        self._writer = writer
        self._deliveries: asyncio.Queue[tuple[bytes, bytes] | None] = asyncio.Queue()
        self._statuses: dict[int, asyncio.Future] = {}
        self._free_sequence_numbers = asyncio.Semaphore(256)
        self._next_sequence_number = 0
        # Only a station waits for WELCOME; a control client never says HELLO.
        self._welcome = asyncio.get_running_loop().create_future() if mac is not None else None
        self._reply: asyncio.Future | None = None
        self._request_lock = asyncio.Lock()
        self._closed_reason: str | None = None
        self._reader_task = asyncio.create_task(self._read_messages())

    @classmethod
    async def connect(cls, host: str, port: int, mac: bytes | str | None = None) -> RadioClient:
        """Connect; with a MAC, register as that station (HELLO, wait for WELCOME)."""
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer, _as_mac(mac) if mac is not None else None)
        if client.mac is not None:
            writer.write(_frame(HELLO, client.mac))
            try:
                await client._welcome
            except RadioError:
                await client.close()
                raise
        return client

    async def __aenter__(self) -> RadioClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def send(self, destination: bytes | str, data: bytes) -> int:
        """Send one frame; returns its STATUS code (0 delivered, 1 not delivered, 2 refused)."""
        destination = _as_mac(destination)
        async with self._free_sequence_numbers:
            while self._next_sequence_number in self._statuses:
                self._next_sequence_number = (self._next_sequence_number + 1) % 256
            seq = self._next_sequence_number
            self._next_sequence_number = (seq + 1) % 256
            status = asyncio.get_running_loop().create_future()
            self._statuses[seq] = status
            try:
                self._write(SEND, bytes([seq]) + destination + bytes(data))
                await self._writer.drain()
                return await status
            finally:
                self._statuses.pop(seq, None)  # frees the number when the caller gave up waiting

    async def recv(self, timeout: float = 1.0) -> tuple[bytes, bytes]:
        """The next delivered frame as (source MAC, data); TimeoutError if none within timeout."""
        delivery = await asyncio.wait_for(self._deliveries.get(), timeout)
        if delivery is None:
            self._deliveries.put_nowait(None)  # keep later calls failing too
            raise RadioError(f"connection closed: {self._closed_reason}")
        return delivery

    async def configure(self, **settings) -> dict:
        """SET the broker's impairments; returns the full settings, RadioError if it refuses."""
        return json.loads(await self._request(SET, json.dumps(settings).encode(), OK))

    async def stats(self) -> dict:
        return json.loads(await self._request(STATS, b"", STATS_REPLY))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task

    def _write(self, msg_type: int, payload: bytes) -> None:
        if self._closed_reason is not None:
            raise RadioError(f"connection closed: {self._closed_reason}")
        self._writer.write(_frame(msg_type, payload))

    async def _request(self, msg_type: int, payload: bytes, reply_type: int) -> bytes:
        async with self._request_lock:  # replies carry no id, so one request at a time
            self._reply = asyncio.get_running_loop().create_future()
            try:
                self._write(msg_type, payload)
                await self._writer.drain()
                answer_type, answer = await self._reply
            finally:
                self._reply = None
            if answer_type == ERROR:
                raise RadioError(answer.decode("utf-8", "replace"))
            if answer_type != reply_type:
                raise RadioError(f"expected reply 0x{reply_type:02x}, got 0x{answer_type:02x}")
            return answer

    async def _read_messages(self) -> None:
        try:
            while (body := await _read_body(self._reader, 0xFFFF)) is not None:
                self._dispatch(body[0], body[1:])
            self._closed_reason = self._closed_reason or "closed by the broker"
        except (ProtocolError, ConnectionError) as error:
            self._closed_reason = str(error) or type(error).__name__
        finally:
            self._closed_reason = self._closed_reason or "closed"
            failure = RadioError(f"connection closed: {self._closed_reason}")
            waiting = [self._welcome, self._reply, *self._statuses.values()]
            for future in waiting:
                if future is not None and not future.done():
                    future.set_exception(failure)
            self._deliveries.put_nowait(None)

    def _dispatch(self, msg_type: int, payload: bytes) -> None:
        if msg_type == DELIVER:
            self._deliveries.put_nowait((payload[:6], payload[6:]))
        elif msg_type == STATUS:
            status = self._statuses.pop(payload[0], None)
            if status is not None and not status.done():
                status.set_result(payload[1])
        elif msg_type == WELCOME:
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_result(payload)
        elif self._reply is not None and not self._reply.done():
            self._reply.set_result((msg_type, payload))
        elif msg_type == ERROR:
            # Unrequested: a protocol error or replacement; the broker closes the connection next.
            self._closed_reason = payload.decode("utf-8", "replace")
            if self._welcome is not None and not self._welcome.done():
                self._welcome.set_exception(RadioError(self._closed_reason))


def run_broker(listen: str = "127.0.0.1:0", loss: float = 0.0, duplicate: float = 0.0,
               corrupt: float = 0.0, delay_ms: tuple[float, float] | str = (0, 0),
               seed: int | None = None) -> None:
    """Run the virtual radio in the foreground until SIGINT or SIGTERM.

    listen is 'HOST:PORT' (port 0: the system chooses); delay_ms is (min, max) or a 'MIN:MAX' string.
    Raises ValueError on bad arguments before listening. Prints one line once listening (with the
    actual port, so a launcher can read it) and a stats summary on exit.
    """
    host, port = parse_listen(listen)
    if isinstance(delay_ms, str):
        delay_ms = parse_delay(delay_ms)
    broker = RadioBroker(loss=loss, duplicate=duplicate, corrupt=corrupt, delay_ms=delay_ms, seed=seed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_serve_until_signalled(broker, host, port))


async def _serve_until_signalled(broker: RadioBroker, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await broker.start(host, port)
    settings = broker.settings()
    low, high = settings["delay_ms"]
    print(f"virtual radio listening on {host}:{broker.port}, loss={settings['loss']}, "
          f"duplicate={settings['duplicate']}, corrupt={settings['corrupt']}, delay_ms={low}:{high}, "
          f"seed={settings['seed']}", flush=True)
    try:
        await stop.wait()
    finally:
        await broker.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print(_summary(broker.stats()), flush=True)


def _summary(stats: dict) -> str:
    def line(counters: dict) -> str:
        return " ".join(f"{name}={counters[name]}" for name in COUNTER_NAMES)

    lines = [f"virtual radio stopped: {line(stats['totals'])}"]
    lines += [f"  {mac}: {line(counters)}" for mac, counters in sorted(stats["stations"].items())]
    return "\n".join(lines)
