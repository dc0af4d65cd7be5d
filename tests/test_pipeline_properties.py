"""Properties of meterfw.pipeline under CPython, for any input hypothesis finds: garbage and tampered
frames never raise, are never accepted and never move a counter; over any sequence of valid, replayed,
reordered, misaddressed, unauthorised and tampered commands, exactly the valid fresh ones are accepted,
in order, and each role's counter is the last one accepted from it."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pipeline_fakes import DEVICE, DEVICE_KA, OTHER_DEVICE, FakeCounters, command, make_anchors  # tests/conftest.py

from meterfw import authorisation, der, pipeline, roles

S = roles.SUPPLIER
NO = roles.NETWORK_OPERATOR
READ = authorisation.READ_IMPORT_REGISTERS
TARIFF = authorisation.TARIFF

VALID_FRAMES = [
    command(S, READ, 5),
    command(NO, READ, 1, der.EMPTY),
    command(S, TARIFF, 7, b"tariff-data", sign=True),
    command(S, authorisation.SUPPLY_DISCONNECT, 0xFFFFFFFFFFFFFFFF, sign=True),
]

# One pipeline for the stateless properties: it never sees an unmodified valid frame, so its counters
# must stay empty; keeping it spares an ECDH per example.
_ANCHORS = make_anchors()
_COUNTERS = FakeCounters()
_PIPELINE = pipeline.DevicePipeline(DEVICE, DEVICE_KA, _ANCHORS, _COUNTERS)


def rejected_without_effect(frame):
    before = _COUNTERS.snapshot()
    decision = _PIPELINE.process(frame)
    assert not decision.accepted
    assert 1 <= decision.reason < pipeline.REASON_COUNT
    assert _COUNTERS.snapshot() == before == ([], 0)
    return decision


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_accepted(data):
    rejected_without_effect(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_after_a_valid_header_never_accepted(tail):
    frame = VALID_FRAMES[0]
    rejected_without_effect(frame[:len(frame) // 2] + tail)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10 ** 6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10 ** 6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10 ** 6), st.integers(1, 20)),
    st.tuples(st.just("truncate"), st.integers(0, 10 ** 6), st.just(0)),
)


def mutate(frame, mutations):
    data = bytearray(frame)
    for kind, where, value in mutations:
        at = where % (len(data) + 1)
        if kind == "insert":
            data[at:at] = bytes((value,))
        elif not data:
            continue
        elif kind == "flip":
            data[at % len(data)] ^= 1 << value
        elif kind == "set":
            data[at % len(data)] = value
        elif kind == "delete":
            del data[at:at + value]
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID_FRAMES), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_valid_frames_never_accepted(frame, mutations):
    mutated = mutate(frame, mutations)
    if mutated == frame:
        return
    rejected_without_effect(mutated)


class PipelineMachine(RuleBasedStateMachine):
    """A device pipeline and a model: the last counter sent and accepted per role."""

    def __init__(self):
        super().__init__()
        self.counters = FakeCounters()
        self.pipeline = pipeline.DevicePipeline(DEVICE, DEVICE_KA, make_anchors(), self.counters)
        self.model = {}  # role -> last accepted counter
        self.expected = []  # (role, counter) of the commands that must have been accepted, in order
        self.accepted = []  # what the pipeline accepted, in order
        self.sent = []  # frames accepted so far (to replay)

    def fresh(self, role, gap):
        return self.model.get(role, 0) + gap

    def send(self, frame, accept):
        decision = self.pipeline.process(frame)
        if decision.accepted:
            self.accepted.append((decision.role, decision.message.counter))
        if accept:
            assert decision.accepted, decision
        else:
            assert not decision.accepted, decision
        return decision

    @rule(role=st.sampled_from([S, NO]), gap=st.integers(1, 1000), payload=st.binary(max_size=20))
    def valid_read(self, role, gap, payload):
        counter = self.fresh(role, gap)
        frame = command(role, READ, counter, payload)
        self.send(frame, True)
        self.model[role] = counter
        self.expected.append((role, counter))
        self.sent.append(frame)

    @rule(gap=st.integers(1, 5), code=st.sampled_from([TARIFF, authorisation.SUPPLY_CONNECT, authorisation.RESET_BALANCE]))
    def valid_critical(self, gap, code):
        counter = self.fresh(S, gap)
        frame = command(S, code, counter, b"critical", sign=True)
        self.send(frame, True)
        self.model[S] = counter
        self.expected.append((S, counter))
        self.sent.append(frame)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data):
        frame = data.draw(st.sampled_from(self.sent))
        assert self.send(frame, False).reason == pipeline.REJECT_REPLAY

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def reordered(self, data):
        role = data.draw(st.sampled_from(sorted(self.model)))
        counter = data.draw(st.integers(0, self.model[role]))
        frame = command(role, READ, counter)
        assert self.send(frame, False).reason == pipeline.REJECT_REPLAY

    @rule(role=st.sampled_from([S, NO]), gap=st.integers(1, 5))
    def wrong_recipient(self, role, gap):
        frame = command(role, READ, self.fresh(role, gap), recipient=OTHER_DEVICE)
        assert self.send(frame, False).reason == pipeline.REJECT_WRONG_RECIPIENT

    @rule(gap=st.integers(1, 5), code=st.sampled_from([TARIFF, authorisation.SUPPLY_DISCONNECT, authorisation.VALVE_CLOSE]))
    def wrong_role(self, gap, code):
        frame = command(NO, code, self.fresh(NO, gap), sign=True)
        assert self.send(frame, False).reason == pipeline.REJECT_NOT_AUTHORISED

    @rule(role=st.sampled_from([S, NO]), gap=st.integers(1, 5), where=st.integers(0, 10 ** 6),
          bit=st.integers(0, 7))
    def tampered(self, role, gap, where, bit):
        frame = bytearray(command(role, READ, self.fresh(role, gap), b"reading"))
        frame[where % len(frame)] ^= 1 << bit
        self.send(bytes(frame), False)

    @invariant()
    def exactly_the_valid_fresh_ones(self):
        assert self.accepted == self.expected
        for role in roles.ALL:
            assert self.counters.counter(role) == self.model.get(role, 0)
        assert self.counters.writes == len(self.expected)


PipelineMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
TestPipelineMachine = PipelineMachine.TestCase
