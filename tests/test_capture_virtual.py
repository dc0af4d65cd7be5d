"""Capture on every transport: a BoardConnection records the GBCS frames in the board-protocol payloads it
sends and receives, the radio broker those in the HAN messages it delivers, both into one file; without a
capture nothing is recorded. A session on virtual boards (the DCC's frames to a meter over its serial
port, and through its hub over the air) opens in tshark with every frame decoded as gbcs_message, each on
its interface and in its direction."""
import asyncio
import contextlib
import threading

import pytest

from capture_check import expert_notes, header, needs_tshark, packets, tshark_fields
from meterfw import authorisation, esme_host, gbcs, han, han_poll, link_host as link, pipeline, roles
from meterlab import capture
from meterlab.boards.radio import RadioBroker, RadioClient
from meterlab.boards.virtual import VirtualBoard, VirtualRadio
from meterlab.capture import INBOUND, OUTBOUND, Capture
from meterlab.client import BoardClient
from meterlab.transport import BoardConnection
from pipeline_fakes import DEVICE, command
from virtual_lab import provisioned

HUB, METER = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
COUNTERS = iter(range(100, 10_000))


def signed_frame(size=0):
    """A supplier's command of about size bytes (a signed tariff, its payload padded out)."""
    return command(roles.SUPPLIER, authorisation.TARIFF, next(COUNTERS), payload=bytes(size), sign=True)


# ------------------------------------------------------------------------------- serial (loop://)

def test_a_connection_records_the_frames_its_payloads_carry(tmp_path):
    request, response = signed_frame(), signed_frame()
    path = tmp_path / "loop.pcapng"
    with Capture(path) as recording, BoardConnection("loop://", timeout=1, capture=recording) as connection:
        # loop:// hands every payload back: each is recorded going out, then coming in
        for payload in (link.gbcs(request), link.han_gbcs(METER, request), link.gbcs_result(0, response),
                        link.gbcs_result(pipeline.REJECT_BAD_MAC, None), link.ping(7), link.han_queued(3)):
            connection.send(payload)
            assert connection.receive() == payload
    name = "serial loop://"
    assert packets(path) == [
        (name, OUTBOUND, request, "GBCS"), (name, INBOUND, request, "GBCS"),
        (name, OUTBOUND, request, "HAN_GBCS to meter 02:00:00:00:00:02"),
        (name, INBOUND, request, "HAN_GBCS to meter 02:00:00:00:00:02"),
        (name, OUTBOUND, response, "GBCS_RESULT: accept"), (name, INBOUND, response, "GBCS_RESULT: accept"),
    ]  # a result without a response, a ping and a ticket carry no frame


def test_without_a_capture_nothing_is_recorded_and_nothing_changes(tmp_path):
    frame = signed_frame()
    session = capture.start(tmp_path / "session.pcapng")
    try:
        with BoardConnection("loop://", timeout=1, capture=None) as connection:
            assert connection._capture is None  # not even a recorder: the cost is one `is None` check
            connection.send(link.gbcs(frame))
            assert connection.receive() == link.gbcs(frame)
            assert connection.stats["frames"] == 1
        with BoardConnection("loop://", timeout=1) as connection:  # the default: the process-wide one
            connection.send(link.gbcs(frame))
            connection.receive()
    finally:
        capture.stop()
    assert [direction for _, direction, _, _ in packets(session.path)] == [OUTBOUND, INBOUND]
    with BoardConnection("loop://", timeout=1) as connection:  # none running: none recorded
        assert connection._capture is None


# ------------------------------------------------------------------------------ the radio broker

@contextlib.contextmanager
def broker_thread(recording, **impairments):
    """A RadioBroker with capture recording, on its own event loop in a thread, for virtual boards (which
    reach it over TCP) and for RadioClients; yields (broker, loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    broker = RadioBroker(capture=recording, **impairments)
    try:
        asyncio.run_coroutine_threadsafe(broker.start(), loop).result(10)
        yield broker, loop
    finally:
        asyncio.run_coroutine_threadsafe(broker.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def exchange(port, messages):
    """Send each (sender, receiver, HAN message) as a board would, fragment by fragment, from one station
    per MAC (a message starting "!" goes as it is, outside the HAN framing); return once every copy the
    broker delivers has arrived."""
    stations = {mac: await RadioClient.connect("127.0.0.1", port, mac) for mac in (HUB, METER)}
    try:
        for message_id, (sender, receiver, message) in enumerate(messages):
            for fragment in (han.fragments(message_id, message) if message[:1] != b"!" else [message]):
                await stations[sender].send(receiver, fragment)
        with contextlib.suppress(asyncio.TimeoutError):
            while True:  # every delivery has happened once the stations hear nothing more
                await asyncio.gather(*(station.recv(timeout=0.2) for station in stations.values()))
    finally:
        for station in stations.values():
            await station.close()


def on(loop, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(30)


def test_the_broker_records_the_frames_in_whole_han_messages(tmp_path):
    big, answer, queued, done = signed_frame(600), signed_frame(), signed_frame(), signed_frame()
    path = tmp_path / "air.pcapng"
    with Capture(path) as recording, broker_thread(recording, duplicate=1.0) as (broker, loop):
        on(loop, exchange(broker.port, [
            (HUB, METER, han.command(big)),  # three fragments, each delivered twice
            (METER, HUB, han.result(0, answer)),
            (METER, HUB, han.result(pipeline.REJECT_REPLAY, None)),  # no response: nothing to record
            (METER, HUB, han_poll.poll(bytes(13))),
            (HUB, METER, han_poll.queued(5, queued)),
            (METER, HUB, han_poll.done(5, 0, bytes(13), done)),
            (HUB, METER, han_poll.idle()),
            (HUB, METER, b"!not a HAN frame"),
        ]))
        name = "han radio 127.0.0.1:%d" % broker.port
    hub_to_meter, meter_to_hub = "02:00:00:00:00:01 -> 02:00:00:00:00:02", "02:00:00:00:00:02 -> 02:00:00:00:00:01"
    # duplicated fragments complete nothing twice, as in the receiver's own reassembly
    assert packets(path) == [
        (name, OUTBOUND, big, hub_to_meter + " COMMAND"),
        (name, INBOUND, answer, meter_to_hub + " RESULT: accept"),
        (name, OUTBOUND, queued, hub_to_meter + " QUEUED ticket 5"),
        (name, INBOUND, done, meter_to_hub + " DONE ticket 5: accept"),
    ]


def test_frames_lost_on_the_air_are_not_recorded(tmp_path):
    path = tmp_path / "lost.pcapng"
    with Capture(path) as recording, broker_thread(recording, loss=1.0) as (broker, loop):
        on(loop, exchange(broker.port, [(HUB, METER, han.command(signed_frame()))]))
    assert packets(path) == []


def _cli_has_capture():
    from meterlab.cli import build_parser

    return "--capture" in build_parser().format_help()


@pytest.mark.skipif(not _cli_has_capture(), reason="the meterlab command has no global --capture FILE yet")
def test_a_virtual_radio_in_its_own_process_writes_its_own_capture(tmp_path):
    frame = signed_frame()
    path = tmp_path / "air.pcapng"
    radio = VirtualRadio(capture=path)
    try:
        asyncio.run(exchange(radio.port, [(HUB, METER, han.command(frame))]))
    finally:
        radio.stop()
    assert packets(path) == [("han radio " + radio.address, OUTBOUND, frame,
                              "02:00:00:00:00:01 -> 02:00:00:00:00:02 COMMAND")]


# ---------------------------------------------------------------------------- on virtual boards

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The DCC's reads of a meter, one on its serial port and one through its hub over the air, all in one
    capture: (path, [(link, direction, frame, comment)] recorded, the hub's answer, {which: link name})."""
    root = tmp_path_factory.mktemp("session")
    read = esme_host.read(1)
    direct = command(roles.SUPPLIER, authorisation.READ_IMPORT_REGISTERS, 5, payload=read)
    relayed = command(roles.SUPPLIER, authorisation.READ_IMPORT_REGISTERS, 6, payload=read)
    path = root / "session.pcapng"
    with open(root / "boards.log", "w") as log, Capture(path) as recording, \
            broker_thread(recording) as (broker, _):
        provisioned(root / "chf", "esp32", "chf", bytes.fromhex("00db12345678a0ff"))
        provisioned(root / "esme", "esp32", "esme", DEVICE)
        radio = "127.0.0.1:%d" % broker.port
        boards = [VirtualBoard(root / role, role=role, radio=radio, mac=mac.hex(":"), deploy=False, log=log)
                  for role, mac in (("chf", HUB), ("esme", METER))]
        with boards[0] as hub, boards[1] as meter:
            with BoardConnection(meter.url, timeout=20, capture=recording) as connection:
                assert BoardClient(connection).gbcs(direct)[0] == pipeline.ACCEPT
            with BoardConnection(hub.url, timeout=30, capture=recording) as connection:
                reason, response = BoardClient(connection).han_gbcs(METER, relayed)
                assert reason == pipeline.ACCEPT
    return path, packets(path), response, {"meter": "serial " + meter.url, "hub": "serial " + hub.url,
                                           "air": "han radio " + radio}


@pytest.mark.virtual
def test_a_session_on_virtual_boards_is_recorded_on_every_link(session):
    path, recorded, response, names = session
    assert [(name, direction, gbcs.parse(frame).counter) for name, direction, frame, _ in recorded] == [
        (names["meter"], OUTBOUND, 5), (names["meter"], INBOUND, 5),
        (names["hub"], OUTBOUND, 6), (names["air"], OUTBOUND, 6), (names["air"], INBOUND, 6),
        (names["hub"], INBOUND, 6),
    ]
    assert recorded[-1][2] == response == recorded[-2][2]  # the hub adds and strips nothing


@pytest.mark.virtual
@needs_tshark
def test_a_session_on_virtual_boards_opens_in_tshark(session):
    """Every frame decoded as gbcs_message, on its link, in its direction, its header as our parser reads
    it."""
    path, recorded, _, _ = session
    decoded = tshark_fields(path)
    assert len(decoded) == len(recorded)
    for (name, direction, frame, comment), shown in zip(recorded, decoded):
        assert "gbcs_message" in shown["frame.protocols"].split(":"), shown
        assert (shown["frame.interface_name"], int(shown["frame.packet_flags_direction"], 16),
                shown["frame.comment"]) == (name, direction, comment)
        assert header(shown) == expected_header(gbcs.parse(frame)), shown


def expected_header(message):
    eui = lambda raw: raw.hex(":")
    return ("0x%02x" % message.cra, str(message.counter), eui(message.originator), eui(message.recipient),
            "0x%04x" % message.message_code)


@pytest.mark.virtual
@needs_tshark
def test_no_frame_of_a_session_is_malformed(session):
    """The payloads are DER (meterfw.der): the dissector's ASN.1 decoder reads each one, the encrypted
    answers' OCTET STRING included (every code's payloads: tests/test_capture_payloads.py)."""
    decoded = tshark_fields(session[0])
    assert [frame for frame in decoded if frame["_ws.malformed"] or expert_notes(frame)] == []
