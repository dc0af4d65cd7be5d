"""Power cuts at every storage operation of meterfw.store (design.md, "Nothing lost").

PowerCutStorage wraps a MemoryStorage, counts every write, rename and remove, and on the Nth one cuts
the power: before the operation (nothing happens), during it (a write leaves a prefix of its data), or
after it (the operation completed but the caller never learns). After a cut a new store is built over
what survived, as a device does on its next boot: it must load, show the old or the new state and never
anything else, and never accept a replay of a counter it had stored.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterfw import roles, store
from meterfw.crypto import p256

G = p256.public_key((1).to_bytes(32, "big"))
KEYS = [p256.public_key(k.to_bytes(32, "big")) for k in (1, 2, 3, 0xC0FFEE)]
PARTY_IDS = [bytes([0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, i]) for i in range(4)]
ROLE_CHOICES = [roles.ROOT, roles.SUPPLIER, roles.ACCESS_CONTROL_BROKER, roles.TRANSITIONAL_COS]


class PowerCut(Exception):
    pass


class PowerCutStorage:
    """A MemoryStorage whose power fails at its cut_at-th write/rename/remove (1-based).

    mode "before": the operation does nothing; "during": a write stores data[:prefix] (other operations
    are atomic, so they act as "before"); "after": the operation completes. Then PowerCut is raised,
    and so is it for every later operation: the device is off."""

    def __init__(self, inner, cut_at, mode="before", prefix=0):
        self.inner = inner
        self.cut_at = cut_at
        self.mode = mode
        self.prefix = prefix
        self.operations = 0
        self.cut = False

    def _operation(self):
        if self.cut:
            raise PowerCut("already off")
        self.operations += 1
        return self.operations == self.cut_at

    def read(self, name):
        if self.cut:
            raise PowerCut("already off")
        return self.inner.read(name)

    def names(self):
        if self.cut:
            raise PowerCut("already off")
        return self.inner.names()

    def _mutate(self, action, partial=None):
        if not self._operation():
            action()
            return
        self.cut = True
        if self.mode == "after":
            action()
        elif self.mode == "during" and partial is not None:
            partial()
        raise PowerCut("at operation %d (%s)" % (self.cut_at, self.mode))

    def write(self, name, data):
        self._mutate(lambda: self.inner.write(name, data),
                     lambda: self.inner.write(name, bytes(data)[:self.prefix]))

    def rename(self, src, dst):
        self._mutate(lambda: self.inner.rename(src, dst))

    def remove(self, name):
        self._mutate(lambda: self.inner.remove(name))


def copy_storage(storage):
    copy = store.MemoryStorage()
    copy.files = dict(storage.files)
    return copy


def state(storage):
    anchors = store.TrustAnchorStore(storage)
    counters = store.CounterStore(storage)
    return ({role: anchors.anchor(role) for role in roles.ALL},
            {role: counters.counter(role) for role in roles.ALL})


def cut_variants(record_size):
    """(mode, prefix) of every way one operation can be cut."""
    yield "before", 0
    yield "after", 0
    for prefix in range(record_size):
        yield "during", prefix


def run_with_cuts(initial, operation, record_size):
    """For N = 1.. until operation runs without a cut: every cut variant at operation N. Yields
    (storage after the cut, whether the cut happened). Checks the cut run used a fresh copy."""
    n = 0
    while True:
        n += 1
        cut_any = False
        for mode, prefix in cut_variants(record_size):
            inner = copy_storage(initial)
            storage = PowerCutStorage(inner, n, mode, prefix)
            try:
                operation(storage)
            except PowerCut:
                cut_any = True
                yield inner
            else:
                assert not storage.cut
                yield inner
        if not cut_any:
            return


def no_leftovers(storage):
    assert not [name for name in storage.names() if name.endswith(store.NEW)]


@pytest.mark.parametrize("start", [0, 10], ids=["nothing-stored", "stored"])
@pytest.mark.parametrize("stale_new", [False, True], ids=["clean", "stale-new"])
def test_advance_cut_at_every_operation(start, stale_new):
    initial = store.MemoryStorage()
    if start:
        store.CounterStore(initial).advance(roles.SUPPLIER, start)
    if stale_new:  # a cut of an earlier change left a complete .new behind
        initial.files["counter.2.new"] = store._encode(store.FORMAT_COUNTER, roles.SUPPLIER, 9, (999).to_bytes(8, "big"))
    new = 20
    outcomes = set()
    for survived in run_with_cuts(initial, lambda s: store.CounterStore(s).advance(roles.SUPPLIER, new), 18):
        counters = store.CounterStore(survived)
        no_leftovers(survived)
        value = counters.counter(roles.SUPPLIER)
        assert value in (start, new)
        outcomes.add(value)
        # a replay of an already stored counter is refused whichever state survived
        for replay in (start, new) if value == new else (start,):
            with pytest.raises(ValueError):
                counters.advance(roles.SUPPLIER, replay)
        if value == new:
            with pytest.raises(ValueError):
                counters.advance(roles.SUPPLIER, new - 1)
            assert store.CounterStore(survived).counter(roles.SUPPLIER) == new
        else:
            counters.advance(roles.SUPPLIER, new)  # the interrupted command may be accepted later
            assert store.CounterStore(survived).counter(roles.SUPPLIER) == new
        # nothing else changed
        assert all(counters.counter(role) == 0 for role in roles.ALL if role != roles.SUPPLIER)
    assert outcomes == {start, new}  # both outcomes were exercised


@pytest.mark.parametrize("stale_new", [False, True], ids=["clean", "stale-new"])
def test_install_cut_at_every_operation(stale_new):
    initial = store.MemoryStorage()
    anchors = store.TrustAnchorStore(initial)
    anchors.install(roles.ROOT, PARTY_IDS[0], KEYS[0], KEYS[1])
    anchors.install(roles.SUPPLIER, PARTY_IDS[1], KEYS[1], KEYS[2])
    if stale_new:
        initial.files["anchor.2.new"] = b"\xa1\x02\x00\x00"
    old = (PARTY_IDS[1], KEYS[1], KEYS[2])
    new = (PARTY_IDS[2], KEYS[3], KEYS[0])
    outcomes = set()

    def change(storage):
        store.TrustAnchorStore(storage).install(roles.SUPPLIER, *new)

    for survived in run_with_cuts(initial, change, 146):
        anchors = store.TrustAnchorStore(survived)
        no_leftovers(survived)
        current = anchors.anchor(roles.SUPPLIER)
        assert current in (old, new)
        outcomes.add(current)
        assert anchors.anchor(roles.ROOT) == (PARTY_IDS[0], KEYS[0], KEYS[1])
        assert anchors.roles() == (roles.ROOT, roles.SUPPLIER)
        assert anchors.role_of(current[0]) == roles.SUPPLIER
        other = new if current == old else old
        assert anchors.role_of(other[0]) is None
    assert outcomes == {old, new}


def test_cut_during_the_cleanup_at_load():
    initial = store.MemoryStorage()
    store.CounterStore(initial).advance(roles.SUPPLIER, 5)
    store.TrustAnchorStore(initial).install(roles.SUPPLIER, PARTY_IDS[0], KEYS[0], KEYS[1])
    initial.files["counter.2.new"] = b"\xc1"
    initial.files["counter.3.new"] = b""
    initial.files["anchor.2.new"] = b"\xa1\x02"
    for n in (1, 2, 3):
        for mode in ("before", "after"):
            inner = copy_storage(initial)
            with pytest.raises(PowerCut):
                state(PowerCutStorage(inner, n, mode))
            anchors, counters = state(inner)
            assert counters[roles.SUPPLIER] == 5 and counters[roles.NETWORK_OPERATOR] == 0
            assert anchors[roles.SUPPLIER] == (PARTY_IDS[0], KEYS[0], KEYS[1])
            no_leftovers(inner)


# ---------------------------------------------------------------------------------------------------
# Random histories with one cut somewhere.

operations = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from(ROLE_CHOICES), st.integers(0, 40)),
    st.tuples(st.just("floor"), st.sampled_from(ROLE_CHOICES), st.integers(0, 40)),
    st.tuples(st.just("advance"), st.sampled_from(ROLE_CHOICES), st.sampled_from([2 ** 64 - 1, 2 ** 64, -1])),
    st.tuples(st.just("install"), st.sampled_from(ROLE_CHOICES), st.integers(0, len(PARTY_IDS) - 1),
              st.integers(0, len(KEYS) - 1), st.integers(0, len(KEYS) - 1)),
)


def apply(anchors, counters, operation):
    """Run one operation; a refusal (ValueError) is a legitimate outcome that changes nothing."""
    try:
        if operation[0] == "advance":
            counters.advance(operation[1], operation[2])
        elif operation[0] == "floor":
            counters.floor(operation[1], operation[2])
        else:
            _, role, party, ds, ka = operation
            anchors.install(role, PARTY_IDS[party], KEYS[ds], KEYS[ka])
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(history=st.lists(operations, min_size=1, max_size=12), cut_at=st.integers(1, 40),
       mode=st.sampled_from(["before", "during", "after"]), prefix=st.integers(0, 200),
       second_cut=st.one_of(st.none(), st.integers(1, 4)))
def test_random_history_with_a_cut(history, cut_at, mode, prefix, second_cut):
    # The states S0..Sn of the history without any cut, reloaded from storage after each step.
    reference = store.MemoryStorage()
    anchors, counters = store.TrustAnchorStore(reference), store.CounterStore(reference)
    states = [state(reference)]
    for operation in history:
        apply(anchors, counters, operation)
        states.append(state(reference))

    inner = store.MemoryStorage()
    storage = PowerCutStorage(inner, cut_at, mode, prefix)
    anchors, counters = store.TrustAnchorStore(storage), store.CounterStore(storage)
    interrupted = None
    for index, operation in enumerate(history):
        try:
            apply(anchors, counters, operation)
        except PowerCut:
            interrupted = index
            break
    if second_cut is not None and interrupted is not None:
        # the boot after the cut is cut too, while it cleans up
        try:
            state(PowerCutStorage(inner, second_cut, "before"))
        except PowerCut:
            pass
    survived = state(inner)
    no_leftovers(inner)
    if interrupted is None:
        assert survived == states[-1]
    else:
        assert survived in (states[interrupted], states[interrupted + 1])
        # a counter stored before the cut is never accepted again
        counters = store.CounterStore(inner)
        for role, value in survived[1].items():
            if value:
                with pytest.raises(ValueError):
                    counters.advance(role, value)
