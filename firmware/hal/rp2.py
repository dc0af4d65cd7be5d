# HAL of RP2040 boards (Raspberry Pi Pico): USB serial shared with the REPL, and a UART between boards
# as the hub/meter link (the Pico has no radio). Frames on the UART use the same framing as the USB
# serial link (meterfw.framing), each carrying destination and source addresses so one link type
# serves a hub and its meters.
import asyncio

import machine
from micropython import const

from hal.realboard import (break_to_repl, describe, free_heap, home_for, load_description,  # noqa: F401
                           metrology, random_bytes, serial, sleep_s, switch_for, ticks_ms, unix_time)
from meterfw import framing

_ADDRESS_BYTES = const(6)
_BROADCAST = b"\xff" * 6


_DESCRIPTION = load_description({"board": "rpi-pico", "family": "rp2040"})
_radio = None


def unique_id():
    # The flash chip's 64-bit unique ID: 8 bytes, what the RP2040 reports as its board ID.
    return machine.unique_id()[:8]


def supply_switch(name="supply_relay"):
    return switch_for(_DESCRIPTION, name)


def home():
    return home_for(_DESCRIPTION)


def board_info():
    return describe(_DESCRIPTION, "rp2040", radio())


class UartLink:
    def __init__(self, config):
        self.mac = machine.unique_id()[-_ADDRESS_BYTES:]
        self._uart = machine.UART(
            config.get("uart", 0),
            baudrate=config.get("baud", 115200),
            tx=machine.Pin(config.get("tx", 0)),
            rx=machine.Pin(config.get("rx", 1)),
        )
        self._reader = asyncio.StreamReader(self._uart)
        self._writer = asyncio.StreamWriter(self._uart, {})
        self._decoder = framing.FrameDecoder()
        self._pending = []

    async def send(self, peer, data):
        self._writer.write(framing.encode(peer + self.mac + data))
        await self._writer.drain()
        return True  # a wire has no acknowledgement; the protocol above retries

    async def recv(self):
        while True:
            while self._pending:
                payload = self._pending.pop(0)
                dst = payload[:_ADDRESS_BYTES]
                if len(payload) > 2 * _ADDRESS_BYTES and (dst == self.mac or dst == _BROADCAST):
                    return payload[_ADDRESS_BYTES : 2 * _ADDRESS_BYTES], payload[2 * _ADDRESS_BYTES :]
            self._pending = self._decoder.feed(await self._reader.read(64))


def radio():
    global _radio
    link = _DESCRIPTION.get("link")
    if _radio is None and isinstance(link, dict) and link.get("type") == "uart":
        _radio = UartLink(link)
    return _radio


def run(main):
    asyncio.run(main)
