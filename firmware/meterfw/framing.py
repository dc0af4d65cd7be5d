"""Serial framing: SLIP (RFC 1055) with a CRC-32 and one extra escape. Sans-I/O: bytes in, payloads out.

A frame on the wire is

    END || escape(payload || CRC-32(payload) as 4 bytes big-endian) || END        END = 0xC0

escaped as SLIP does (0xC0 -> DB DC, 0xDB -> DB DD) plus 0x03 -> DB DE. On a real board the frames
share the USB serial port with the MicroPython REPL, where 0x03 is Ctrl-C, the keyboard interrupt. An
encoded frame never contains 0x03, so a 0x03 on the wire always means that a person or mpremote wants
the REPL, never a byte of a frame; the decoder rejects any frame that contains a raw 0x03.

Every frame starts with END as well as ending with one, so whatever came before it (line noise, a board's
boot messages, REPL output, half a frame) ends there as a candidate frame of its own and fails its
check: noise costs only the frames it overlaps, never the one after it.

The CRC is the IEEE CRC-32 of binascii.crc32 and zlib.crc32. Payloads are 1 to max_payload bytes: the
CRC-32 of nothing is 00000000, so an empty frame would be four zero bytes between two ENDs, which a
UART break or a floating line easily produces.
"""

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


END = const(0xC0)
ESC = const(0xDB)
ESC_END = const(0xDC)  # ESC ESC_END stands for END
ESC_ESC = const(0xDD)  # ESC ESC_ESC stands for ESC
INTERRUPT = const(0x03)  # Ctrl-C: the REPL's keyboard interrupt, never sent raw inside a frame
ESC_INTERRUPT = const(0xDE)  # ESC ESC_INTERRUPT stands for INTERRUPT

CRC_SIZE = const(4)
MAX_PAYLOAD = const(2048)

_MIN_CANDIDATE = const(5)  # one payload byte and the CRC

# Why the candidate being received is already lost; it is counted when its END arrives.
_KEEP = const(0)
_BAD_ESCAPE = const(1)
_OVERSIZE = const(2)

_END_BYTES = b"\xc0"
_CRC32_POLY_REVERSED = 0xEDB88320  # not const(): larger than a MicroPython small int


def crc32_portable(data):
    """IEEE CRC-32 of data, one bit at a time: slow but needs no table, for ports without binascii.crc32."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ _CRC32_POLY_REVERSED
            else:
                crc >>= 1
    return crc ^ 0xFFFFFFFF


try:
    from binascii import crc32
except ImportError:
    crc32 = crc32_portable


def encode(payload, max_payload=MAX_PAYLOAD):
    """The frame for payload (1 to max_payload bytes) as it goes on the wire, both ENDs included."""
    size = len(payload)
    if size < 1 or size > max_payload:
        raise ValueError("frame payload must be 1 to %d bytes, not %d" % (max_payload, size))
    crc = crc32(payload)
    body = bytes(payload) + bytes(((crc >> 24) & 0xFF, (crc >> 16) & 0xFF, (crc >> 8) & 0xFF, crc & 0xFF))
    # ESC first, so that the ESC bytes the other two replacements insert are not escaped again.
    body = body.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc").replace(b"\x03", b"\xdb\xde")
    return _END_BYTES + body + _END_BYTES


class FrameDecoder:
    """Turns a byte stream, in chunks of any size, into the payloads of its valid frames. Never raises.

    A candidate frame is what lies between two ENDs (or before the first END). Each non-empty candidate
    is counted exactly once, when its END arrives, in one of:
      frames         valid: returned by feed()
      crc_errors     the CRC-32 does not match
      escape_errors  ESC followed by anything but ESC_END, ESC_ESC or ESC_INTERRUPT, or a raw INTERRUPT
      oversize       longer than max_payload + CRC_SIZE once unescaped (buffering stops at that size)
      runts          1 to 4 bytes once unescaped: no room for a payload byte and the CRC
    Empty candidates (ENDs in a row, as between two frames) are the normal gap and are not counted.
    Memory is one buffer of max_payload + CRC_SIZE bytes, allocated here.
    """

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buffer = bytearray(max_payload + CRC_SIZE)
        self._view = memoryview(self._buffer)
        self._length = 0
        self._escaped = False
        self._drop_reason = _KEEP
        self.frames = 0
        self.crc_errors = 0
        self.escape_errors = 0
        self.oversize = 0
        self.runts = 0

    def reset(self):
        """Forget the partial candidate, if any (for when the input was flushed). Counters are kept."""
        self._length = 0
        self._escaped = False
        self._drop_reason = _KEEP

    def feed(self, data):
        """The payloads (bytes) of the frames that data completes, in order; [] if none."""
        payloads = []
        buffer = self._buffer
        capacity = len(buffer)
        length = self._length
        escaped = self._escaped
        drop_reason = self._drop_reason
        for byte in data:
            if byte == END:
                if length or escaped or drop_reason:
                    if escaped and not drop_reason:
                        drop_reason = _BAD_ESCAPE  # ESC just before END escapes nothing
                    payload = self._close_candidate(length, drop_reason)
                    if payload is not None:
                        payloads.append(payload)
                length = 0
                escaped = False
                drop_reason = _KEEP
                continue
            if drop_reason:
                continue
            if escaped:
                escaped = False
                if byte == ESC_END:
                    byte = END
                elif byte == ESC_ESC:
                    byte = ESC
                elif byte == ESC_INTERRUPT:
                    byte = INTERRUPT
                else:
                    drop_reason = _BAD_ESCAPE
                    continue
            elif byte == ESC:
                escaped = True
                continue
            elif byte == INTERRUPT:
                drop_reason = _BAD_ESCAPE
                continue
            if length == capacity:
                drop_reason = _OVERSIZE
                continue
            buffer[length] = byte
            length += 1
        self._length = length
        self._escaped = escaped
        self._drop_reason = drop_reason
        return payloads

    def _close_candidate(self, length, drop_reason):
        """Count a finished non-empty candidate; its payload if it is a valid frame, else None."""
        if drop_reason == _BAD_ESCAPE:
            self.escape_errors += 1
            return None
        if drop_reason == _OVERSIZE:
            self.oversize += 1
            return None
        if length < _MIN_CANDIDATE:
            self.runts += 1
            return None
        buffer = self._buffer
        size = length - CRC_SIZE
        received_crc = (buffer[size] << 24) | (buffer[size + 1] << 16) | (buffer[size + 2] << 8) | buffer[size + 3]
        payload = self._view[:size]
        if crc32(payload) != received_crc:
            self.crc_errors += 1
            return None
        self.frames += 1
        return bytes(payload)
