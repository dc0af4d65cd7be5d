"""The GBCS frames delivered over the virtual radio, as the stations that receive them reassemble them.

On the air a GBCS frame travels inside a HAN message cut into fragments (meterfw.han). The broker sees
fragments, so this reassembles them per receiver with meterfw.han's own Reassembler, exactly as that
receiver's firmware does: a fragment sent again after a lost acknowledgement completes nothing twice, a
message whose fragments were lost is never complete, and a corrupted fragment reassembles into the
corrupted frame the receiver gets. Whole messages that carry a GBCS frame:

    han.COMMAND        hub to meter: the frame
    han.RESULT         meter to hub: the response (none when the meter gave none)
    han_poll.QUEUED    hub to gas meter: a frame kept for it by the GPF
    han_poll.DONE      gas meter to hub: its response to the last QUEUED frame, if any

so direction is that of the hub: outbound hub to meter, inbound meter to hub.
"""
from meterfw import han, han_poll
from meterlab.capture import pcapng
from meterlab.capture.serial_link import reason_name


def carried_frame(message):
    """(GBCS frame, direction seen from the hub, what carried it) of a whole HAN message, or None."""
    kind = message[0]
    try:
        if kind == han.COMMAND and len(message) > 1:
            return bytes(message[1:]), pcapng.OUTBOUND, "COMMAND"
        if kind == han.RESULT:
            reason, response = han.parse_result(message)
            if response is not None:
                return response, pcapng.INBOUND, "RESULT: %s" % reason_name(reason)
        elif kind == han_poll.QUEUED:
            ticket, frame = han_poll.parse_queued(message)
            return frame, pcapng.OUTBOUND, "QUEUED ticket %d" % ticket
        elif kind == han_poll.DONE:
            ticket, reason, _, response = han_poll.parse_poll(message)
            if response is not None:
                return response, pcapng.INBOUND, "DONE ticket %d: %s" % (ticket, reason_name(reason))
    except (han.HanError, han_poll.HanError):
        pass  # malformed: it carries no frame the receiver would take
    return None


class AirRecorder:
    """Records what the broker delivers: call delivered() for every copy handed to a receiver."""

    def __init__(self, capture, name):
        self._capture = capture
        self._interface = capture.link(
            name, "HAN frames delivered on the air, seen from the comms hub: outbound = hub to meter, "
                  "inbound = meter to hub; each packet's comment names sender -> receiver")
        self._reassemblers = {}  # receiver's MAC -> han.Reassembler, as that receiver's firmware keeps

    def delivered(self, sender, receiver, data):
        if not han.is_han(data):
            return  # a frame outside the HAN framing (a raw RADIO_SEND) carries no GBCS frame
        reassembler = self._reassemblers.get(receiver)
        if reassembler is None:
            reassembler = self._reassemblers[receiver] = han.Reassembler()
        whole = reassembler.feed(sender, data)
        carried = carried_frame(whole[2]) if whole is not None else None
        if carried is not None:
            frame, direction, carrier = carried
            comment = "%s -> %s %s" % (sender.hex(":"), receiver.hex(":"), carrier)
            self._capture.record(self._interface, direction, frame, comment=comment)
