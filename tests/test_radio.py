"""The virtual radio broker: delivery, ESP-NOW's frame limit, impairments, robustness, stats."""
import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from meterlab.boards.radio import (
    BROADCAST, ERROR, MAX_FRAME, SET, STATS, STATS_REPLY, WELCOME, RadioBroker, RadioClient, RadioError, mac_from_str, mac_to_str, parse_delay,
)

HUB = mac_from_str("02:00:00:00:00:01")
METER_A = mac_from_str("02:00:00:00:00:02")
METER_B = mac_from_str("02:00:00:00:00:03")
NOBODY = mac_from_str("02:00:00:00:00:99")
QUIET = 0.1  # how long to wait when checking that nothing (more) arrives


def run(scenario, **impairments):
    """Run scenario(broker, hub, meter_a, meter_b) against a fresh broker, bounded in time."""
    async def main():
        broker = RadioBroker(**impairments)
        await broker.start()
        clients = [await RadioClient.connect("127.0.0.1", broker.port, mac) for mac in (HUB, METER_A, METER_B)]
        try:
            return await asyncio.wait_for(scenario(broker, *clients), timeout=10)
        finally:
            for client in clients:
                await client.close()
            await broker.stop()
    return asyncio.run(main())


async def assert_nothing_arrives(client):
    with pytest.raises(TimeoutError):
        await client.recv(timeout=QUIET)


async def receive_all(client, count, timeout=2.0):
    return [await client.recv(timeout) for _ in range(count)]


def split_messages(raw):
    """Raw broker output -> [(type, payload)], checking the framing on the way."""
    messages = []
    while raw:
        length = int.from_bytes(raw[:2], "big")
        assert 1 <= length <= len(raw) - 2, raw
        messages.append((raw[2], raw[3:2 + length]))
        raw = raw[2 + length:]
    return messages


async def send_raw_then_end(port, raw):
    """Send raw bytes and end the stream; return the broker's messages up to its closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    writer.write_eof()
    try:
        return split_messages(await asyncio.wait_for(reader.read(), timeout=2))  # read() ends at EOF
    finally:
        writer.close()


def test_unicast_is_delivered_to_its_destination_only_and_acked():
    async def scenario(broker, hub, meter_a, meter_b):
        assert await hub.send(METER_A, b"read register 1") == 0
        assert await meter_a.recv() == (HUB, b"read register 1")
        assert await meter_a.send("02:00:00:00:00:01", b"42") == 0
        assert await hub.recv() == (METER_A, b"42")
        await assert_nothing_arrives(meter_b)
    run(scenario)


def test_broadcast_reaches_every_other_station():
    async def scenario(broker, hub, meter_a, meter_b):
        assert await hub.send(BROADCAST, b"beacon") == 0
        assert await meter_a.recv() == (HUB, b"beacon")
        assert await meter_b.recv() == (HUB, b"beacon")
        await assert_nothing_arrives(hub)
    run(scenario)


def test_frames_over_250_bytes_or_empty_are_refused_and_not_delivered():
    async def scenario(broker, hub, meter_a, meter_b):
        assert await hub.send(METER_A, bytes(MAX_FRAME + 1)) == 2
        assert await hub.send(BROADCAST, bytes(MAX_FRAME + 1)) == 2
        assert await hub.send(METER_A, b"") == 2
        await assert_nothing_arrives(meter_a)
        largest = bytes(range(250))
        assert await hub.send(METER_A, largest) == 0
        assert await meter_a.recv() == (HUB, largest)
    run(scenario)


def test_unknown_destination_is_not_delivered():
    async def scenario(broker, hub, meter_a, meter_b):
        assert await hub.send(NOBODY, b"hello?") == 1
        await assert_nothing_arrives(meter_a)
    run(scenario)


def test_total_loss_delivers_nothing_and_reports_not_delivered():
    async def scenario(broker, hub, meter_a, meter_b):
        assert [await hub.send(METER_A, b"frame %d" % i) for i in range(20)] == [1] * 20
        assert await hub.send(BROADCAST, b"beacon") == 0  # broadcast is never acked
        await assert_nothing_arrives(meter_a)
        await assert_nothing_arrives(meter_b)
    run(scenario, loss=1.0)


def test_ten_percent_loss_over_2000_frames_is_about_ten_percent_and_reproducible():
    async def scenario(broker, hub, meter_a, meter_b):
        statuses = await asyncio.gather(*(hub.send(METER_A, i.to_bytes(2, "big")) for i in range(2000)))
        delivered = [frame for _, frame in await receive_all(meter_a, statuses.count(0))]
        await assert_nothing_arrives(meter_a)
        assert set(statuses) <= {0, 1}
        assert sorted(delivered) == [i.to_bytes(2, "big") for i, status in enumerate(statuses) if status == 0]
        return statuses

    first = run(scenario, loss=0.1, seed=7)
    assert 0.85 <= first.count(0) / 2000 <= 0.95
    assert run(scenario, loss=0.1, seed=7) == first


def test_total_duplication_delivers_every_frame_twice():
    async def scenario(broker, hub, meter_a, meter_b):
        for i in range(5):
            assert await hub.send(METER_A, b"frame %d" % i) == 0
        received = await receive_all(meter_a, 10)
        await assert_nothing_arrives(meter_a)
        assert sorted(frame for _, frame in received) == sorted([b"frame %d" % i for i in range(5)] * 2)
    run(scenario, duplicate=1.0)


def test_total_corruption_flips_one_to_three_bits_and_keeps_the_length():
    async def scenario(broker, hub, meter_a, meter_b):
        for _ in range(20):
            original = os.urandom(40)
            assert await hub.send(METER_A, original) == 0
            source, corrupted = await meter_a.recv()
            assert source == HUB and len(corrupted) == len(original)
            flipped_bits = bin(int.from_bytes(original, "big") ^ int.from_bytes(corrupted, "big")).count("1")
            assert 1 <= flipped_bits <= 3
        one_byte = b"\x00"
        assert await hub.send(METER_A, one_byte) == 0
        assert (await meter_a.recv())[1] != one_byte
    run(scenario, corrupt=1.0, seed=3)


def test_delay_holds_frames_at_least_the_minimum_and_reorders_them():
    async def scenario(broker, hub, meter_a, meter_b):
        await hub.configure(delay_ms=[50, 60])
        sent_at = time.monotonic()
        assert await hub.send(METER_A, b"late") == 0
        assert await meter_a.recv() == (HUB, b"late")
        assert time.monotonic() - sent_at >= 0.049  # the loop's clock may fire a timer a hair early

        await hub.configure(delay_ms=[0, 50], seed=11)
        frames = [b"%02d" % i for i in range(20)]
        await asyncio.gather(*(hub.send(METER_A, frame) for frame in frames))
        arrived = [frame for _, frame in await receive_all(meter_a, 20)]
        assert sorted(arrived) == frames and arrived != frames
    run(scenario)


def test_invalid_settings_are_refused_and_change_nothing():
    async def scenario(broker, hub, meter_a, meter_b):
        control = await RadioClient.connect("127.0.0.1", broker.port)  # no MAC: a control client
        before = await control.configure(loss=0.25, delay_ms=[1, 2])
        for bad in ({"loss": 1.5}, {"loss": "high"}, {"duplicate": -0.1}, {"corrupt": True},
                    {"delay_ms": [5, 2]}, {"delay_ms": [-1, 3]}, {"delay_ms": 5}, {"seed": 1.5},
                    {"volume": 11}, {"loss": 0.5, "delay_ms": [9, 1]}):
            with pytest.raises(RadioError, match="settings unchanged"):
                await control.configure(**bad)
        assert broker.settings() == before
        for not_settings in (b"[]", b"{", b"\xff"):
            # Refused like a bad value, and the connection stays open: the STATS after it is answered.
            answers = await send_raw_then_end(broker.port, bytes([0, 1 + len(not_settings), SET]) + not_settings
                                              + bytes([0, 1, STATS]))
            assert [message_type for message_type, _ in answers] == [ERROR, STATS_REPLY]
            assert answers[0][1].startswith(b"settings unchanged")
        assert broker.settings() == before
        with pytest.raises(ValueError, match="loss"):
            broker.set_impairments(loss=2)
        with pytest.raises(ValueError, match="unknown"):
            broker.set_impairments(jitter=1)
        assert broker.settings() == before == await control.configure()
        await control.close()
    run(scenario)


def test_malformed_messages_get_error_and_disconnect_while_others_are_served():
    async def scenario(broker, hub, meter_a, meter_b):
        malformed = {
            "unknown type": b"\x00\x01\x7f",
            "broker-only type": b"\x00\x03\x03ab",
            "zero length": b"\x00\x00",
            "oversized length": b"\x04\x01",
            "send before hello": b"\x00\x09\x02\x01" + METER_A + b"x",
            "short hello": b"\x00\x04\x01abc",
            "broadcast hello": b"\x00\x07\x01" + BROADCAST,
            "second hello": b"\x00\x07\x01" + NOBODY + b"\x00\x07\x01" + NOBODY,
            "truncated send": b"\x00\x07\x01" + NOBODY + b"\x00\x04\x02\x01ab",
            "stats with payload": b"\x00\x02\x13x",
            "truncated body": b"\x00\x10\x13",
            "truncated header": b"\x00",
        }
        for case, raw in malformed.items():
            answers = await send_raw_then_end(broker.port, raw)
            assert [message_type for message_type, _ in answers] in ([ERROR], [WELCOME, ERROR]), case
            assert await hub.send(METER_A, case.encode()) == 0
            assert await meter_a.recv() == (HUB, case.encode())
        assert broker.stats()["totals"]["sent"] == len(malformed)
    run(scenario)


def test_a_station_reconnecting_with_its_mac_replaces_the_old_connection():
    async def scenario(broker, hub, meter_a, meter_b):
        restarted = await RadioClient.connect("127.0.0.1", broker.port, METER_A)
        with pytest.raises(RadioError, match="replaced"):
            await meter_a.recv()
        assert await hub.send(METER_A, b"still there?") == 0
        assert await restarted.recv() == (HUB, b"still there?")
        await restarted.close()
    run(scenario)


def test_a_receiver_leaving_mid_delivery_is_harmless():
    async def scenario(broker, hub, meter_a, meter_b):
        await hub.configure(delay_ms=[30, 30])
        assert await hub.send(METER_A, b"for a meter about to go") == 0
        await meter_a.close()
        await asyncio.sleep(0.1)
        assert await hub.send(METER_B, b"next") == 0
        assert await meter_b.recv() == (HUB, b"next")
        assert broker.stats()["totals"]["lost"] == 1
    run(scenario)


def test_stats_count_each_fate_per_sending_station():
    async def scenario(broker, hub, meter_a, meter_b):
        for i in range(3):
            assert await hub.send(METER_A, b"%d" % i) == 0
        assert await hub.send(BROADCAST, b"beacon") == 0
        assert await hub.send(METER_A, bytes(251)) == 2
        assert await hub.send(NOBODY, b"?") == 1
        assert await meter_b.send(HUB, b"reply") == 0
        await receive_all(meter_a, 4)
        await receive_all(meter_b, 1)
        await receive_all(hub, 1)
        stats = await hub.stats()
        assert stats == broker.stats()
        zero = dict.fromkeys(("duplicated", "corrupted"), 0)
        assert stats["stations"] == {
            mac_to_str(HUB): {"sent": 5, "delivered": 5, "lost": 1, "refused": 1, **zero},
            mac_to_str(METER_A): {"sent": 0, "delivered": 0, "lost": 0, "refused": 0, **zero},
            mac_to_str(METER_B): {"sent": 1, "delivered": 1, "lost": 0, "refused": 0, **zero},
        }
        assert stats["totals"] == {"sent": 6, "delivered": 6, "lost": 1, "refused": 1, **zero}
    run(scenario)


def test_stats_count_duplicates_and_corruption():
    async def scenario(broker, hub, meter_a, meter_b):
        for i in range(4):
            assert await hub.send(METER_A, b"%d" % i) == 0
        await receive_all(meter_a, 8)
        assert broker.stats()["totals"] == {
            "sent": 4, "delivered": 8, "lost": 0, "duplicated": 4, "corrupted": 8, "refused": 0}
    run(scenario, duplicate=1.0, corrupt=1.0)


def test_mac_helpers():
    assert mac_from_str("AA:bb:cc:dd:ee:ff") == bytes.fromhex("aabbccddeeff")
    assert mac_to_str(bytes.fromhex("aabbccddeeff")) == "aa:bb:cc:dd:ee:ff"
    for bad in ("aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:fg", "aabbccddeeff", "aa-bb-cc-dd-ee-ff", ""):
        with pytest.raises(ValueError, match="bad MAC"):
            mac_from_str(bad)
    for bad in (b"\x00" * 5, b"\x00" * 7, "aa:bb:cc:dd:ee:ff"):
        with pytest.raises(ValueError, match="bad MAC"):
            mac_to_str(bad)


def test_parse_delay():
    assert parse_delay("5:40") == (5, 40)
    assert parse_delay("10") == (10, 10)
    for bad in ("40:5", "a:b", "5:", "1:2:3", "-1", "1.5", "70000"):
        with pytest.raises(ValueError, match="bad delay"):
            parse_delay(bad)


def test_run_broker_serves_until_sigint_then_prints_stats():
    program = ("from meterlab.boards.radio import run_broker; "
               "run_broker('127.0.0.1:0', loss=0.1, delay_ms='5:40', seed=1)")
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith("virtual radio listening on 127.0.0.1:")
        assert "loss=0.1" in first_line and "delay_ms=5:40" in first_line and "seed=1" in first_line
        port = int(first_line.split()[4].rstrip(",").rpartition(":")[2])

        async def exchange():
            async with await RadioClient.connect("127.0.0.1", port, HUB) as hub:
                async with await RadioClient.connect("127.0.0.1", port, METER_A):
                    await hub.send(METER_A, b"x")
                    assert (await hub.configure())["delay_ms"] == [5, 40]
        asyncio.run(asyncio.wait_for(exchange(), timeout=5))
        process.send_signal(signal.SIGINT)
        summary, _ = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 0
    assert summary.startswith("virtual radio stopped: sent=1 ")
    assert f"{mac_to_str(HUB)}: sent=1" in summary
