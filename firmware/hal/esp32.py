# HAL of ESP32 boards (DevKitC, S3 DevKitC): USB serial shared with the REPL, ESP-NOW radio.
import asyncio

from micropython import const

from hal.realboard import (break_to_repl, describe, free_heap, home_for, load_description,  # noqa: F401
                           metrology, random_bytes, serial, sleep_s, switch_for, ticks_ms, unix_time)

_MAX_PEERS = const(16)  # ESP-NOW allows 20 peers (fewer when encrypted); keep headroom
_BROADCAST = b"\xff" * 6


_DESCRIPTION = load_description({"board": "esp32-devkitc", "family": "esp32", "link": {"type": "espnow"}})
_radio = None


def unique_id():
    # The 8-byte hardware ID: the chip's 6-byte base MAC as an EUI-64 (FF FE in the middle).
    import machine

    mac = machine.unique_id()
    return mac[:3] + b"\xff\xfe" + mac[3:6]


def supply_switch(name="supply_relay"):
    return switch_for(_DESCRIPTION, name)


def home():
    return home_for(_DESCRIPTION)


def board_info():
    return describe(_DESCRIPTION, "esp32", radio())


class EspNowRadio:
    def __init__(self):
        import aioespnow
        import network

        station = network.WLAN(network.STA_IF)
        station.active(True)
        self.mac = station.config("mac")
        self._espnow = aioespnow.AIOESPNow()
        self._espnow.active(True)
        self._peers = []

    def _ensure_peer(self, peer):
        if peer in self._peers:
            return
        if len(self._peers) >= _MAX_PEERS:
            self._espnow.del_peer(self._peers.pop(0))
        self._espnow.add_peer(peer)
        self._peers.append(peer)

    async def send(self, peer, data):
        # For unicast, asend waits for the peer's MAC-layer ack, like the virtual radio's status. A
        # driver error (radio busy, peer table trouble) is a frame not delivered: the protocol retries.
        try:
            self._ensure_peer(peer)
            return bool(await self._espnow.asend(peer, data, peer != _BROADCAST))
        except OSError:
            return False

    async def recv(self):
        peer, data = await self._espnow.arecv()
        return bytes(peer), bytes(data)


def radio():
    global _radio
    link = _DESCRIPTION.get("link") or {}
    if _radio is None and link.get("type", "espnow") == "espnow":
        _radio = EspNowRadio()
    return _radio


def run(main):
    asyncio.run(main)
