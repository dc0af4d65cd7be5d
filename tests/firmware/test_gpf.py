# meterfw.gpf, the comms hub's Gas Proxy Function: the mirror of the sleeping gas meter with its age, the
# frames queued for its next poll, its answers kept for the DCC, and GCS61 reads answered from the mirror.
# Runs under pytest and on MicroPython.
from meterfw import authorisation, der, gpf, han, han_poll, pipeline, roles, store
from meterfw.endpoint import GbcsEndpoint
from meterfw.response import Responder
from mpcheck import raised
from pipeline_fakes import DEVICE, DEVICE_DS, DEVICE_KA, FakeCounters, command, make_anchors
from power_cut import CuttingStorage, PowerCut

S = roles.SUPPLIER
READ_GPF = authorisation.READ_GPF
MIRROR = (1_800_000_000).to_bytes(4, "big") + (4321).to_bytes(8, "big") + b"\x01"


class Clock:
    def __init__(self, now=1_800_000_100):
        self.now = now

    def __call__(self):
        return self.now


def test_frames_wait_under_tickets_and_their_answers_wait_for_the_dcc():
    storage, clock = store.MemoryStorage(), Clock()
    proxy = gpf.GasProxy(storage, clock)
    first, second = proxy.queue(b"frame one"), proxy.queue(b"frame two")
    assert (first, second) == (1, 2) and proxy.queued() == 2
    assert proxy.queue(b"frame two") == 2 and proxy.queued() == 2  # sent twice while it waits: queued once
    assert proxy.next_queued() == (1, b"frame one") and proxy.result(1) == gpf.PENDING
    assert proxy.done(1, pipeline.ACCEPT, b"answer one")
    assert not proxy.done(1, pipeline.ACCEPT, b"again")  # a DONE repeated after a lost acknowledgement
    assert proxy.result(1) == (pipeline.ACCEPT, b"answer one") and proxy.next_queued() == (2, b"frame two")
    assert proxy.done(2, pipeline.REJECT_REPLAY, None)
    assert proxy.result(2) == (pipeline.REJECT_REPLAY, None) and proxy.next_queued() is None
    assert proxy.result(3) is None  # never given
    # a restart keeps all of it, and never gives a ticket twice
    again = gpf.GasProxy(storage, clock)
    assert again.result(1) == (pipeline.ACCEPT, b"answer one") and again.queue(b"three") == 3
    # another gas meter paired: the old one's frames, answers and mirror go; tickets go on
    again.synced(MIRROR)
    again.forget()
    assert again.mirror() is None and again.next_queued() is None and again.result(1) is None
    assert again.queue(b"four") == 4


def test_the_queue_is_bounded_and_refuses_rather_than_drops():
    proxy = gpf.GasProxy(store.MemoryStorage(), Clock())
    for n in range(gpf.QUEUE_MAX):
        proxy.queue(b"frame %d" % n)
    raised(gpf.GpfError, proxy.queue, b"one too many")
    raised(gpf.GpfError, proxy.queue, b"")
    assert proxy.queued() == gpf.QUEUE_MAX and proxy.next_queued() == (1, b"frame 0")


def test_only_the_last_answers_are_kept():
    proxy = gpf.GasProxy(store.MemoryStorage(), Clock())
    for n in range(gpf.RESULTS + 3):
        ticket = proxy.queue(b"f")
        proxy.done(ticket, pipeline.ACCEPT, b"a")
    assert proxy.result(1) is None and proxy.result(3) is None
    assert proxy.result(4) == (pipeline.ACCEPT, b"a") and proxy.result(gpf.RESULTS + 3) == (pipeline.ACCEPT, b"a")


def test_a_power_cut_at_any_write_loses_no_frame_and_no_answer():
    def scenario(storage):
        proxy = gpf.GasProxy(storage, Clock())
        proxy.queue(b"close the valve")
        proxy.synced(MIRROR)
        proxy.done(1, pipeline.ACCEPT, b"closed")

    clean = CuttingStorage()
    scenario(clean)
    for cut in range(1, clean.changes + 1):
        storage = CuttingStorage(cut_before=cut)
        raised(PowerCut, scenario, storage)
        storage.cut_before = None
        proxy = gpf.GasProxy(storage, Clock())
        outcome = proxy.result(1)
        # before the queue write finished, the hub had not answered the DCC: no ticket was given
        assert outcome in (None, gpf.PENDING, (pipeline.ACCEPT, b"closed")), (cut, outcome)
        if outcome == gpf.PENDING:
            assert proxy.next_queued() == (1, b"close the valve")  # handed to the meter again
        assert proxy.queue(b"next") >= 2 or outcome is None
        assert not [name for name in storage.names() if name.endswith(store.NEW)]


def test_gcs61_reads_answer_from_the_mirror_with_its_age():
    clock = Clock()
    proxy = gpf.GasProxy(store.MemoryStorage(), clock)
    anchors = make_anchors()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters(), validator=proxy.validate,
                                device_type="chf")
    endpoint = GbcsEndpoint(p, Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors), proxy.execute)
    decision, response = endpoint.handle(command(S, READ_GPF, 1, payload=der.EMPTY))
    assert decision.accepted and response is not None
    assert proxy.execute(decision) == der.encode([1])  # no poll yet: nothing to answer from
    proxy.synced(MIRROR)
    clock.now += 600
    payload = proxy.execute(decision)
    assert payload == der.encode([0, 600, 1_800_000_000, 4321, True])  # MIRROR's time, litres, valve open
    for frame, reason in ((command(S, READ_GPF, 2, payload=b"\x01"), pipeline.REJECT_BAD_PAYLOAD),
                          (command(S, READ_GPF, 4, payload=b""), pipeline.REJECT_BAD_PAYLOAD),
                          (command(S, authorisation.VALVE_CLOSE, 3, payload=der.EMPTY, sign=True),
                           pipeline.REJECT_UNSUPPORTED)):
        assert endpoint.handle(frame)[0].reason == reason
    raised(gpf.GpfError, proxy.synced, b"short")


def test_the_sleeping_meters_messages_round_trip():
    assert han_poll.parse_poll(han_poll.poll(MIRROR)) == MIRROR
    assert han_poll.parse_poll(han_poll.done(9, 3, MIRROR, b"resp")) == (9, 3, MIRROR, b"resp")
    assert han_poll.parse_poll(han_poll.done(9, 0, MIRROR, None)) == (9, 0, MIRROR, None)
    assert han_poll.parse_queued(han_poll.queued(70000, b"frame")) == (70000, b"frame")
    assert han_poll.parse_queued(han_poll.idle()) is None
    for bad in (b"", b"\x50short", han.result(0, b"x"), han_poll.queued(1, b"x")):
        raised(han_poll.HanError, han_poll.parse_poll, bad)
    for bad in (b"", b"\x31\x00\x00\x00\x01", han_poll.poll(MIRROR)):
        raised(han_poll.HanError, han_poll.parse_queued, bad)
