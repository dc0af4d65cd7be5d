# HAL of the virtual board: MicroPython WebAssembly under the Node.js harness (boards/virtual/board.mjs),
# which registers the `vboard` module. Serial bytes and radio frames come from JavaScript promises,
# which asyncio awaits on Node's event loop; the flash is the VM's /flash, written through to the host.
import asyncio
import binascii
import json
import sys
import time

import vboard

_INFO = json.loads(vboard.info())


def board_info():
    return {
        "board": _INFO["board"],
        "family": _INFO["family"],
        "heap": _INFO["heap"],
        "mac": _INFO["mac"].replace(":", "") if _INFO["mac"] else None,
        "virtual": True,
    }


def random_bytes(n):
    # The harness's stand-in for a board's hardware RNG (Node's crypto.randomBytes); None on a board
    # started without one (--no-rng), to exercise commissioning by injected keys.
    if not _INFO.get("rng", True):
        return None
    return binascii.unhexlify(vboard.random_hex(n))


def unique_id():
    # The board's burnt-in 8-byte ID (kept in the state folder's hardware.json).
    return binascii.unhexlify(_INFO["uid"]) if _INFO.get("uid") else bytes(8)


def ticks_ms():
    return time.ticks_ms()


_CLOCK = _INFO.get("clock")  # [real, start, scale]: the board read start at Unix time real, scale times as fast


def unix_time():
    # Node's clock (this port's time.time() is a float), sped up when the harness was given --clock, so
    # a test lives a gas meter's day in a minute; every board given the same --clock agrees on the time.
    now = time.time()
    if _CLOCK:
        return int(_CLOCK[1] + (now - _CLOCK[0]) * _CLOCK[2])
    return int(now)


async def sleep_s(seconds):
    await asyncio.sleep(seconds / _CLOCK[2] if _CLOCK else seconds)


def supply_switch(name="supply_relay"):
    return lambda closed: vboard.gpio_write(name, 1 if closed else 0)


def metrology():
    from hal.load import SimulatedLoad

    return SimulatedLoad(unix_time, time.ticks_ms, time.ticks_diff, _INFO.get("load_watts"))


def free_heap():
    # This port only collects garbage between calls from JavaScript and counts the room it could grow
    # into as free, so gc.mem_free() says little here; the harness measures the live heap after each
    # of its collections, and the board's heap less that is what a board would have free.
    return max(0, _INFO["heap"] - vboard.heap_live())


class Serial:
    async def read(self):
        # The harness never hands over bytes past a 0x03 in one chunk (see board.mjs).
        return bytes(await vboard.serial_read())

    def write(self, data):
        vboard.serial_write(binascii.hexlify(data).decode())


class Radio:
    def __init__(self, mac_hex):
        self.mac = binascii.unhexlify(mac_hex)

    async def send(self, peer, data):
        status = await vboard.radio_send(
            binascii.hexlify(peer).decode(), binascii.hexlify(data).decode()
        )
        return status == 0

    async def recv(self):
        frame = await vboard.radio_recv()
        return binascii.unhexlify(frame.src), bytes(frame.data)


class HomePort:
    # The meter's in-home port (the consumer's side): framed like the serial port, no REPL on it.
    async def read(self):
        return bytes(await vboard.home_read())

    def write(self, data):
        vboard.home_write(binascii.hexlify(data).decode())


_serial = Serial()
_home = HomePort() if _INFO.get("home") else None
_radio = Radio(_INFO["mac"].replace(":", "")) if _INFO["mac"] else None


def serial():
    return _serial


def radio():
    return _radio


def home():
    return _home


def break_to_repl():
    raise KeyboardInterrupt


def run(main):
    # On a board asyncio.run() blocks until the firmware stops; here asyncio runs on Node's event loop,
    # so the firmware runs as a task and the harness is told when it stops, to hand the port to the REPL.
    async def supervise():
        reason = "main returned"
        try:
            await main
        except KeyboardInterrupt:
            print("KeyboardInterrupt: firmware stopped, REPL follows")
            reason = "break"
        except Exception as error:  # a crash must still leave the board reachable through its REPL
            sys.print_exception(error)
            reason = "crashed"
        vboard.firmware_stopped(reason)

    vboard.firmware_started()
    asyncio.create_task(supervise())
