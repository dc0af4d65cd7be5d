# What ESP32 and RP2040 boards have alike: the board description on flash (board.json, copied there by
# deploy), the clock, the GC heap and the USB serial port shared with the REPL.
import gc
import json
import time
from binascii import hexlify

from hal.usbrepl import UsbReplSerial, break_to_repl  # noqa: F401

_serial = None


def load_description(default):
    try:
        with open("board.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def random_bytes(n):
    # ESP32: the hardware RNG; RP2040: bits from the ring oscillator. Both through os.urandom. A port
    # without it has no usable random source: commissioning then needs injected keys.
    try:
        import os

        return os.urandom(n)
    except (ImportError, AttributeError):
        return None


class UartHomePort:
    """The meter's in-home port on a UART of its own (the description's "home": uart, tx, rx, baud): where
    the consumer's device (an in-home display, a laptop on a USB-serial adapter) grants and revokes
    consents, framed like the USB serial port. Only someone at the meter can reach it, which is the
    point: neither the DCC nor a third party can make a consent."""

    def __init__(self, config):
        import asyncio

        import machine

        uart = machine.UART(config["uart"], baudrate=config.get("baud", 115200), tx=machine.Pin(config["tx"]),
                            rx=machine.Pin(config["rx"]))
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})

    async def read(self):
        return bytes(await self._reader.read(64))

    def write(self, data):
        # Answers are short: buffered, and drained by a task while the loop runs on.
        import asyncio

        self._writer.write(data)
        asyncio.create_task(self._writer.drain())


_home = None


def home_for(description):
    """home() of a board: its in-home port, or None when its description names no "home" UART."""
    global _home
    config = description.get("home")
    if _home is None and isinstance(config, dict):
        _home = UartHomePort(config)
    return _home


def ticks_ms():
    return time.ticks_ms()


# MicroPython's embedded ports count from 2000 or 1970 depending on version and port; ask rather than assume.
_EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


def unix_time():
    # The RTC is not set at boot (it starts at the epoch); a lab sets it with mpremote's `rtc --set`.
    return int(time.time()) + _EPOCH_OFFSET


async def sleep_s(seconds):
    # A gas meter's sleep between wakes. A production meter deep-sleeps here (machine.deepsleep, radio
    # off, a few microamps); a dev board in a lab keeps its USB serial up, so it waits with its radio
    # unheard (main.py drops frames while a gas meter sleeps) and the ledger books the sleep it models.
    import asyncio

    await asyncio.sleep(seconds)


def switch_for(description, name="supply_relay"):
    """supply_switch(name) of a board: that pin of its description as an output (a gas meter's "valve"
    falls back to the supply relay's LED on a dev board), or a switch that drives nothing."""
    pins = description.get("pins") or {}
    pin = pins.get(name, pins.get("supply_relay"))
    if pin is None:
        return lambda closed: None
    import machine

    relay = machine.Pin(pin, machine.Pin.OUT)
    return lambda closed: relay.value(1 if closed else 0)


def metrology():
    from hal.load import SimulatedLoad

    return SimulatedLoad(unix_time, time.ticks_ms, time.ticks_diff)


def free_heap():
    return gc.mem_free()


def describe(description, family, radio):
    """hal.board_info() of a real board."""
    return {
        "board": description.get("board", family),
        "family": family,
        "heap": gc.mem_alloc() + gc.mem_free(),
        "mac": hexlify(radio.mac).decode() if radio else None,
        "virtual": False,
    }


def serial():
    global _serial
    if _serial is None:
        _serial = UsbReplSerial()
    return _serial
