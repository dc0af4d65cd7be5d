"""The home area network between a comms hub and its meters (design.md, "Boards and links"): messages of
up to 2 KB (a GBCS frame and a little) over a link that carries at most 250 bytes a frame and loses some.
Sans-I/O: bytes in, messages out; the HAL sends and receives the frames.

On the air, every frame is

    MAGIC (1, 0x48) || message id (2) || index (1) || count (1) || up to 245 bytes of the message

A message is cut into count fragments (1 to MAX_FRAGMENTS). The sender gives each fragment to the link
until the link acknowledges it (ESP-NOW's unicast acknowledgement, the virtual radio's), up to RETRIES
times (meterfw's main loop does that); the receiver keeps fragments by (sender, message id), drops
duplicates, and delivers a message once, when its last fragment is in. A message whose fragments stop
coming is dropped when newer ones need the room (at most PARTIAL messages in reassembly); one delivered
is remembered (the last RECENT) so a fragment sent again after a lost acknowledgement delivers nothing
twice. Nothing here is security: the GBCS frames inside carry their own MACs, signatures and counters,
and a corrupted, replayed or reordered one dies in the meter's pipeline; this layer only makes large
frames cross a small-frame link, which the hub does without adding or stripping anything.

Messages (first byte):

    COMMAND  0x30 || a GBCS frame, hub to an awake meter (an ESME)
    RESULT   0xB0 || pipeline reason (1) || the response frame (empty if none), meter to hub

A battery gas meter sleeps and polls its hub instead (meterfw.han_poll's messages, carried the same way).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


MAGIC = const(0x48)
HEADER = const(5)
LINK_MAX_FRAME = const(250)
FRAGMENT_DATA = const(245)  # LINK_MAX_FRAME - HEADER
MAX_FRAGMENTS = const(9)  # 2205 bytes: a 2 KB GBCS frame with its message header
MAX_MESSAGE = const(2205)
RETRIES = const(8)  # sends of one fragment before the message counts as lost
PARTIAL = const(2)
RECENT = const(8)

COMMAND = const(0x30)
RESULT = const(0xB0)


class HanError(ValueError):
    pass


def fragments(message_id, message):
    """The frames that carry message under message_id (0..65535)."""
    message = bytes(message)
    if not 0 < len(message) <= MAX_MESSAGE:
        raise HanError("a HAN message is 1 to %d bytes" % MAX_MESSAGE)
    count = (len(message) + FRAGMENT_DATA - 1) // FRAGMENT_DATA
    head = bytes((MAGIC, message_id >> 8 & 0xFF, message_id & 0xFF))
    return [head + bytes((index, count)) + message[index * FRAGMENT_DATA:(index + 1) * FRAGMENT_DATA]
            for index in range(count)]


def is_han(frame):
    return len(frame) > HEADER and frame[0] == MAGIC


class Reassembler:
    """Fragments in, whole messages out, each once."""

    def __init__(self):
        self._partial = []  # [(sender, message id, count, {index: data})], oldest first
        self._recent = []  # (sender, message id) delivered, oldest first
        self.dropped = 0  # frames that were not HAN frames, or did not fit a message

    def feed(self, sender, frame):
        """(sender, message id, message) when frame completes a message, else None."""
        if not is_han(frame):
            self.dropped += 1
            return None
        message_id = frame[1] << 8 | frame[2]
        index, count = frame[3], frame[4]
        if not 0 < count <= MAX_FRAGMENTS or index >= count or (index < count - 1 and len(frame) != LINK_MAX_FRAME):
            self.dropped += 1  # only the last fragment may be short
            return None
        key = (bytes(sender), message_id)
        if key in self._recent:
            return None  # sent again after a lost acknowledgement: delivered already
        entry = None
        for candidate in self._partial:
            if (candidate[0], candidate[1]) == key:
                entry = candidate
                break
        if entry is None or entry[2] != count:
            if entry is not None:
                self._partial.remove(entry)  # a new message reusing the id: the old one is gone
            entry = (key[0], message_id, count, {})
            self._partial.append(entry)
            if len(self._partial) > PARTIAL:
                self._partial.pop(0)
        entry[3][index] = bytes(frame[HEADER:])
        if len(entry[3]) < count:
            return None
        self._partial.remove(entry)
        self._recent.append(key)
        if len(self._recent) > RECENT:
            self._recent.pop(0)
        parts = entry[3]
        return key[0], message_id, b"".join(parts[i] for i in range(count))


def command(frame):
    return bytes((COMMAND,)) + bytes(frame)


def result(reason, response):
    return bytes((RESULT, reason)) + (bytes(response) if response else b"")


def parse_result(message):
    """(reason, response frame or None) of a RESULT message; HanError otherwise."""
    if len(message) < 2 or message[0] != RESULT:
        raise HanError("not a RESULT message")
    return message[1], (bytes(message[2:]) or None)

