"""The comms hub's Gas Proxy Function (design.md, "Gas: GSME, CHF and GPF"). Sans-I/O: storage and the
clock are passed in; the hub's radio loop (main.py) moves the HAN messages.

The gas meter sleeps, so the hub keeps two things for it:

- a mirror of its data (meterfw.gsme's mirror(): meter time, register, valve), refreshed each time the
  meter polls, kept with the hub's time of that poll. The GPF answers reads from it (GCS61, addressed to
  the hub's own identity, checked by the hub's own pipeline) and says how old it is: a flood of reads
  never reaches the meter's battery.
- a queue of the GBCS frames sent to the meter while it slept, as they came (the hub adds and strips
  nothing; the meter's pipeline alone decides), each under a ticket. When the meter polls, the oldest goes
  to it; its answer comes back with its next poll and waits here, under its ticket, until the DCC
  collects it.

    proxy = GasProxy(storage, clock)
    ticket = proxy.queue(frame)                 # GpfError when QUEUE_MAX frames wait already
    proxy.synced(mirror)                        # the meter polled (meterfw.han POLL or DONE)
    proxy.done(ticket, reason, response)        # its answer to a queued frame
    proxy.next_queued()                         # (ticket, frame) to hand it, or None: it may sleep
    proxy.result(ticket)                        # (reason, response), PENDING, or None (unknown)
    reason, plan = proxy.validate(message, role, rule)    # a GCS61 read, for the hub's pipeline
    payload = proxy.execute(decision)

What it keeps on flash (meterfw.store's record format; each written by write, read back, rename), so a
power cut loses neither a queued command nor an answer:

    ticket      the last ticket given (4)
    mirror      the hub's time of the poll (4) || the meter's mirror (13)
    q.TICKET    a queued GBCS frame (TICKET: 8 hex digits)
    r.TICKET    reason (1) || response frame: the meter's answer (the last RESULTS kept)

GCS61 (an empty payload, DER `30 00`) is answered in DER (meterfw.der), status 1 when the meter has not
polled yet:

    { status 0, age (seconds since the mirror was refreshed, by the hub's clock), the meter's time,
      register (litres), valve open (BOOLEAN) }
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import authorisation, der, endpoint, pipeline, store

FOLDER = "gpf"
QUEUE_MAX = const(4)  # frames waiting for one poll cycle; more is refused, not dropped
RESULTS = const(8)  # answers kept for the DCC to collect
MIRROR_SIZE = const(13)
PENDING = "pending"
_FORMAT = const(0x6F)
_KIND_TICKET = const(1)
_KIND_MIRROR = const(2)
_KIND_QUEUED = const(3)
_KIND_RESULT = const(4)


class GpfError(ValueError):
    pass


def _name(prefix, ticket):
    return "%s.%08x" % (prefix, ticket)


def _tickets(storage, prefix):
    out = []
    for name in storage.names():
        if name.startswith(prefix + ".") and len(name) == 10:
            try:
                out.append(int(name[2:], 16))
            except ValueError:
                pass  # not ours
    out.sort()
    return out


class GasProxy:
    def __init__(self, storage, clock):
        self._storage = storage
        self._clock = clock
        for name in list(storage.names()):
            if name.endswith(store.NEW):
                storage.remove(name)  # a write the power cut interrupted: the old record stands
        ticket = self._read("ticket", _KIND_TICKET, 4)
        self._ticket = 0 if ticket is None else int.from_bytes(ticket, "big")

    def _read(self, name, kind, size=None):
        data = self._storage.read(name)
        if data is None:
            return None
        return store._decode(name, data, _FORMAT, kind, size)[1]  # size None: the record's own

    def _write(self, name, kind, payload):
        store.commit(self._storage, name, store._encode(_FORMAT, kind, 0, payload))

    # ------------------------------------------------------------------------------ the queue

    def queue(self, frame):
        """Keep frame for the meter's next poll; its ticket. The same frame again while it waits (the
        host sent it twice: its link dropped before the ticket came back) keeps its first ticket."""
        frame = bytes(frame)
        if not frame:
            raise GpfError("an empty frame")
        waiting = _tickets(self._storage, "q")
        for ticket in waiting:
            if self._read(_name("q", ticket), _KIND_QUEUED) == frame:
                return ticket
        if len(waiting) >= QUEUE_MAX:
            raise GpfError("%d commands already wait for the gas meter's next poll" % QUEUE_MAX)
        ticket = (self._ticket + 1) & 0xFFFFFFFF or 1
        self._write("ticket", _KIND_TICKET, ticket.to_bytes(4, "big"))  # first: a ticket is never given twice
        self._ticket = ticket
        self._write(_name("q", ticket), _KIND_QUEUED, frame)
        return ticket

    def next_queued(self):
        """(ticket, frame) of the oldest frame waiting, or None."""
        waiting = _tickets(self._storage, "q")
        if not waiting:
            return None
        ticket = waiting[0]
        return ticket, self._read(_name("q", ticket), _KIND_QUEUED)

    def queued(self):
        return len(_tickets(self._storage, "q"))

    def forget(self):
        """Another gas meter is paired: the old one's frames, answers and mirror go (tickets go on)."""
        for prefix in ("q", "r"):
            for ticket in _tickets(self._storage, prefix):
                self._storage.remove(_name(prefix, ticket))
        self._storage.remove("mirror")

    def done(self, ticket, reason, response):
        """The meter's answer to a queued frame: kept, and the frame leaves the queue (answer first, so
        a cut between the two leaves the frame queued and the meter answers it again from its copy).
        False if ticket was not queued (an answer repeated after a lost acknowledgement)."""
        queued = _name("q", ticket)
        if self._storage.read(queued) is None:
            return False
        self._write(_name("r", ticket), _KIND_RESULT, bytes((reason,)) + (bytes(response) if response else b""))
        self._storage.remove(queued)
        kept = _tickets(self._storage, "r")
        for old in kept[:-RESULTS]:
            self._storage.remove(_name("r", old))
        return True

    def result(self, ticket):
        """(reason, response or None) once the meter answered; PENDING while queued; None if unknown."""
        data = self._read(_name("r", ticket), _KIND_RESULT)
        if data is not None:
            return data[0], (data[1:] or None)
        if self._storage.read(_name("q", ticket)) is not None:
            return PENDING
        return None

    # ------------------------------------------------------------------------------ the mirror

    def synced(self, mirror):
        if len(mirror) != MIRROR_SIZE:
            raise GpfError("a gas meter's mirror is 13 bytes")
        self._write("mirror", _KIND_MIRROR, self._clock().to_bytes(4, "big") + bytes(mirror))

    def mirror(self):
        """(seconds since the meter last synced, its mirror) or None before its first poll."""
        data = self._read("mirror", _KIND_MIRROR, 4 + MIRROR_SIZE)
        if data is None:
            return None
        return max(0, self._clock() - int.from_bytes(data[:4], "big")), data[4:]

    # --------------------------------------------------------------- reads for the hub's pipeline

    def validate(self, message, role, rule):
        if not authorisation.runs("chf", message.message_code):
            return pipeline.REJECT_UNSUPPORTED, None
        if bytes(message.payload) != der.EMPTY:
            return pipeline.REJECT_BAD_PAYLOAD, None
        return pipeline.ACCEPT, None

    def execute(self, decision):
        mirrored = self.mirror()
        if mirrored is None:
            return endpoint.answer(endpoint.STATUS_FAILED)
        age, mirror = mirrored
        # the mirror's layout is meterfw.gsme's mirror(); read here so the hub never loads the meter's code
        return endpoint.answer(endpoint.STATUS_OK, age, int.from_bytes(mirror[:4], "big"),
                               int.from_bytes(mirror[4:12], "big"), mirror[12] == 1)
