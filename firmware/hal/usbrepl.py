# The USB serial port of a real board (ESP32, RP2040), shared with the MicroPython REPL.
#
# While the firmware runs it owns stdin, with Ctrl-C disabled (kbd_intr(-1)) so that a byte of a frame
# can never interrupt it; frames escape 0x03 anyway (meterfw.framing), so a 0x03 on the wire always
# means a person or mpremote wants the REPL: the firmware then re-enables Ctrl-C and raises
# KeyboardInterrupt out of asyncio.run(), and the bytes after the 0x03 are still unread in stdin for
# the REPL (this reader takes one byte at a time, never more than it has seen).
import asyncio
import select
import sys

import micropython
from micropython import const

_CHUNK = const(64)
_CTRL_C = const(3)


class UsbReplSerial:
    def __init__(self):
        micropython.kbd_intr(-1)
        self._stdin = sys.stdin.buffer
        self._stdout = sys.stdout.buffer  # the raw stream: no \n -> \r\n cooking of frame bytes
        # The byte stream, not sys.stdin: that is text (read() gives str, CR turned into LF).
        self._reader = asyncio.StreamReader(self._stdin)
        self._poll = select.poll()
        self._poll.register(self._stdin, select.POLLIN)
        self._buf = bytearray(_CHUNK)

    async def read(self):
        first = await self._reader.read(1)
        buf = self._buf
        buf[0] = first[0]
        n = 1
        while n < _CHUNK and buf[n - 1] != _CTRL_C and self._poll.poll(0):
            buf[n] = self._stdin.read(1)[0]
            n += 1
        return bytes(buf[:n])

    def write(self, data):
        self._stdout.write(data)


def break_to_repl():
    micropython.kbd_intr(3)
    raise KeyboardInterrupt
