"""The GBCS frames in the board protocol's payloads (meterfw.link), as one serial link carries them.

Three kinds hold a whole GBCS frame: GBCS (host to board: the frame), HAN_GBCS (host to hub: meter
address (6) || the frame to relay) and GBCS_RESULT (board to host: reason (1) || the response, empty when
there is none). Every other kind, HAN_QUEUED's ticket and RADIO_SEND's HAN fragments included, carries
none and is not recorded; the fragments are captured whole on the radio instead (meterlab.capture.air).
"""
from meterfw import link
from meterlab.capture import pcapng


def carried_frame(payload):
    """(GBCS frame, what carried it) of a board-protocol payload, or None when it carries no frame.
    Not a validator: a frame cut short or malformed is returned as it is, for Wireshark to say so."""
    kind = payload[0] if payload else None
    if kind == link.GBCS and len(payload) > 1:
        return bytes(payload[1:]), "GBCS"
    if kind == link.HAN_GBCS and len(payload) > 1 + link.ADDRESS_BYTES:
        return bytes(payload[1 + link.ADDRESS_BYTES:]), "HAN_GBCS to meter %s" % payload[1:7].hex(":")
    if kind == link.GBCS_RESULT and len(payload) > 2:
        return bytes(payload[2:]), "GBCS_RESULT: %s" % reason_name(payload[1])
    return None


class SerialLinkRecorder:
    """Records the frames one BoardConnection sends and receives, on an interface named after its port,
    from the host's side: outbound is host to board, inbound is board to host."""

    def __init__(self, capture, url):
        self._capture = capture
        self._interface = capture.link(
            "serial %s" % url,
            "board protocol on %s, seen from the host: outbound = host to board, inbound = board to host" % url)

    def sent(self, payload):
        self._record(pcapng.OUTBOUND, payload)

    def received(self, payload):
        self._record(pcapng.INBOUND, payload)

    def _record(self, direction, payload):
        carried = carried_frame(payload)
        if carried is not None:
            self._capture.record(self._interface, direction, carried[0], comment=carried[1])


def reason_name(reason):
    """A meterfw.pipeline reason code in words, as packet comments give it on every link."""
    from meterfw import pipeline  # only a capture needs it: every connection imports this module

    return pipeline.REASON_NAMES[reason] if reason < len(pipeline.REASON_NAMES) else "reason %d" % reason
