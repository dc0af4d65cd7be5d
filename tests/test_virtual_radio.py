"""Virtual boards on the virtual radio: the firmware's radio path (hal.virtual -> board.mjs -> broker)
carries frames between a hub and meters, with the broker's impairments and ESP-NOW's 250-byte limit."""
import asyncio

import pytest

from meterfw import link_host as link
from meterlab.boards.radio import RadioClient
from meterlab.boards.virtual import VirtualBoard, VirtualRadio
from meterlab.client import BoardClient, BoardRefused
from meterlab.transport import BoardConnection, BoardTimeout
from virtual_lab import provisioned

pytestmark = pytest.mark.virtual


@pytest.fixture(scope="module")
def air(tmp_path_factory):
    """A radio and three boards on it, with a host connection to each board."""
    root = tmp_path_factory.mktemp("air")
    log = open(root / "boards.log", "w")
    radio = VirtualRadio(log=log, seed=7)
    boards = {}
    try:
        for n, (role, family) in enumerate((("chf", "esp32"), ("esme", "esp32"), ("gsme", "rp2040"))):
            # only boards that are part of the system use the radio
            provisioned(root / role, family, role, bytes.fromhex("00db12345678a00%d" % n))
            board = VirtualBoard(root / role, role=role, board=family, radio=radio.address, log=log)
            board.start()
            connection = BoardConnection(board.url, timeout=5)
            boards[role] = (board, BoardClient(connection))
        yield radio, boards
    finally:
        for board, client in boards.values():
            client.connection.close()
            board.stop()
        radio.stop()


def configure(radio, **settings):
    async def send():
        async with await RadioClient.connect(radio.host, radio.port) as control:
            return await control.configure(**settings)

    return asyncio.run(send())


@pytest.fixture(autouse=True)
def clean_air(air):
    radio, boards = air
    configure(radio, loss=0.0, duplicate=0.0, corrupt=0.0, delay_ms=[0, 0], seed=7)
    yield
    for _, client in boards.values():
        client.radio_frames.clear()
        client.connection.reset_input()


def expect_nothing(client, timeout=0.5):
    with pytest.raises(BoardTimeout):
        client.radio_receive(timeout=timeout)


def test_unicast_from_hub_to_meter_is_acknowledged_and_heard(air):
    _, boards = air
    hub, esme = boards["chf"], boards["esme"]
    frame = bytes(range(250))  # the largest ESP-NOW frame, every byte value, 0x03 included
    assert hub[1].radio_send(esme[0].address, frame) is True
    assert esme[1].radio_receive(timeout=5) == (hub[0].address, frame)
    expect_nothing(boards["gsme"][1])


def test_broadcast_reaches_every_other_board_that_listens(air):
    _, boards = air
    hub = boards["chf"]
    assert hub[1].radio_send(b"\xff" * 6, b"wake up") is True
    assert boards["esme"][1].radio_receive(timeout=5) == (hub[0].address, b"wake up")
    # a battery gas meter's radio is off while it sleeps between polls (gas_io): it hears nothing
    expect_nothing(boards["gsme"][1])


def test_frames_over_250_bytes_are_refused_by_the_board(air):
    _, boards = air
    hub, esme = boards["chf"], boards["esme"]
    request = bytes((link.RADIO_SEND,)) + esme[0].address + b"x" * 251
    answer = hub[1].connection.request(request, timeout=5, accept=lambda frame: frame[0] == link.ERROR)
    assert answer == link.error(link.RADIO_SEND, link.ERR_TOO_LONG)
    with pytest.raises(ValueError, match="250"):
        hub[1].radio_send(esme[0].address, b"x" * 251)
    expect_nothing(esme[1])


def test_unknown_peer_is_not_acknowledged(air):
    _, boards = air
    assert boards["chf"][1].radio_send(b"\x02\x00\x00\x00\x00\x01", b"anyone?") is False


def test_total_loss_drops_every_frame(air):
    radio, boards = air
    configure(radio, loss=1.0)
    hub, esme = boards["chf"], boards["esme"]
    assert [hub[1].radio_send(esme[0].address, b"lost %d" % i) for i in range(5)] == [False] * 5
    expect_nothing(esme[1])


def test_duplication_delivers_twice_and_corruption_flips_bits(air):
    radio, boards = air
    hub, esme = boards["chf"], boards["esme"]
    configure(radio, duplicate=1.0)
    assert hub[1].radio_send(esme[0].address, b"once") is True
    assert [esme[1].radio_receive(timeout=5)[1] for _ in range(2)] == [b"once", b"once"]

    configure(radio, duplicate=0.0, corrupt=1.0)
    original = b"\x00" * 32
    assert hub[1].radio_send(esme[0].address, original) is True
    _, heard = esme[1].radio_receive(timeout=5)
    assert len(heard) == len(original) and heard != original


def test_meters_answer_the_hub_too(air):
    _, boards = air
    hub, esme = boards["chf"], boards["esme"]
    assert esme[1].radio_send(hub[0].address, b"reading 42") is True
    assert hub[1].radio_receive(timeout=5) == (esme[0].address, b"reading 42")


def test_board_that_is_not_commissioned_stays_off_the_air(air, tmp_path):
    radio, boards = air
    hub = boards["chf"]
    with VirtualBoard(tmp_path / "blank", role="esme", board="esp32", radio=radio.address,
                      log=open(tmp_path / "blank.log", "w")) as blank:
        with BoardConnection(blank.url, timeout=5) as connection:
            client = BoardClient(connection)
            with pytest.raises(BoardRefused, match="not commissioned"):
                client.radio_send(hub[0].address, b"let me in")
            assert hub[1].radio_send(blank.address, b"anyone there?") is True  # the radio acknowledges...
            expect_nothing(client)  # ...but the board passes nothing on to its host


def test_board_without_radio_says_so(tmp_path):
    with VirtualBoard(tmp_path / "alone", role="esme", board="esp32", log=open(tmp_path / "log", "w")) as board:
        with BoardConnection(board.url, timeout=5) as connection:
            with pytest.raises(BoardRefused, match="no radio"):
                BoardClient(connection).radio_send(b"\x02" * 6, b"hello")
