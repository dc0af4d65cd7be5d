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


def home():
    # The in-home port (consents) is not wired on real boards yet: there a button press will confirm
    # a consent offered over the serial port. Until then, None: no consent can be granted.
    return None


def ticks_ms():
    return time.ticks_ms()


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
