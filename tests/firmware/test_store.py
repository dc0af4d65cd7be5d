# Tests of meterfw.store that run unchanged under pytest and on MicroPython (a runner calls every
# test_* function): plain functions and asserts, no pytest, no fixtures, no f-strings.
import os

from meterfw import roles, store
from meterfw.crypto import p256
from mpcheck import flip, raised

GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
G = GX.to_bytes(32, "big") + GY.to_bytes(32, "big")
KEY2 = p256.public_key(b"\x00" * 31 + b"\x02")
KEY3 = p256.public_key(b"\x00" * 31 + b"\x03")
NOT_ON_CURVE = GX.to_bytes(32, "big") + (GY + 1).to_bytes(32, "big")

SUPPLIER_ID = b"\x00\x11\x22\x33\x44\x55\x66\x77"
ACB_ID = b"\x90\xb3\xd5\x1f\x30\x01\x00\x02"
NEW_SUPPLIER_ID = b"\x00\x11\x22\x33\x44\x55\x66\x99"


def _folder_base():
    try:
        import tempfile  # CPython only
        return tempfile.mkdtemp()
    except ImportError:
        return None


def _rmtree(path):
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


def _file_storage_run(check):
    # check(make_storage) with a folder of its own, removed afterwards whatever happens.
    base = _folder_base()
    if base is None:
        n = 0
        while True:
            folder = "_test_store_%d" % n
            try:
                os.stat(folder)
            except OSError:
                break
            n += 1
    else:
        folder = base + "/store"
    try:
        check(lambda: store.FileStorage(folder))
    finally:
        try:
            _rmtree(folder)
        except OSError:
            pass
        if base is not None:
            os.rmdir(base)


def _state(storage):
    anchors = store.TrustAnchorStore(storage)
    counters = store.CounterStore(storage)
    return (tuple((r, anchors.anchor(r)) for r in anchors.roles()),
            tuple((r, counters.counter(r)) for r in roles.ALL))


def _exercise(make_storage):
    storage = make_storage()
    anchors = store.TrustAnchorStore(storage)
    counters = store.CounterStore(storage)
    assert anchors.roles() == ()
    assert anchors.anchor(roles.SUPPLIER) is None
    assert counters.counter(roles.SUPPLIER) == 0

    anchors.install(roles.SUPPLIER, SUPPLIER_ID, G, KEY2)
    anchors.install(roles.ACCESS_CONTROL_BROKER, bytearray(ACB_ID), KEY3, G)
    assert anchors.anchor(roles.SUPPLIER) == (SUPPLIER_ID, G, KEY2)
    assert anchors.anchor(roles.ACCESS_CONTROL_BROKER) == (ACB_ID, KEY3, G)
    assert anchors.roles() == (roles.SUPPLIER, roles.ACCESS_CONTROL_BROKER)
    assert anchors.role_of(SUPPLIER_ID) == roles.SUPPLIER
    assert anchors.role_of(ACB_ID) == roles.ACCESS_CONTROL_BROKER
    assert anchors.role_of(NEW_SUPPLIER_ID) is None

    counters.advance(roles.SUPPLIER, 5)
    counters.advance(roles.SUPPLIER, 6)
    counters.advance(roles.ACCESS_CONTROL_BROKER, 2 ** 64 - 1)
    assert counters.counter(roles.SUPPLIER) == 6

    before = _state(make_storage())
    assert before == _state(storage)
    again_anchors = store.TrustAnchorStore(make_storage())
    again_counters = store.CounterStore(make_storage())
    assert again_anchors.anchor(roles.SUPPLIER) == (SUPPLIER_ID, G, KEY2)
    assert again_anchors.role_of(ACB_ID) == roles.ACCESS_CONTROL_BROKER
    assert again_counters.counter(roles.SUPPLIER) == 6
    assert again_counters.counter(roles.ACCESS_CONTROL_BROKER) == 2 ** 64 - 1
    # replays are refused after a reload too
    raised(ValueError, again_counters.advance, roles.SUPPLIER, 6)
    raised(ValueError, again_counters.advance, roles.ACCESS_CONTROL_BROKER, 2 ** 64 - 1)

    # change of supplier: replace the anchor, set the floor
    again_anchors.install(roles.SUPPLIER, NEW_SUPPLIER_ID, KEY3, KEY2)
    again_counters.floor(roles.SUPPLIER, 100)
    third = _state(make_storage())
    assert dict(third[0])[roles.SUPPLIER] == (NEW_SUPPLIER_ID, KEY3, KEY2)
    assert dict(third[1])[roles.SUPPLIER] == 100
    assert store.TrustAnchorStore(make_storage()).role_of(SUPPLIER_ID) is None
    # one file per role, no leftovers
    names = sorted(make_storage().names())
    assert names == ["anchor.2", "anchor.4", "counter.2", "counter.4"], names


def test_memory_storage_round_trip():
    storage = store.MemoryStorage()
    _exercise(lambda: storage)


def test_file_storage_round_trip():
    _file_storage_run(_exercise)


def test_counters_only_move_up():
    counters = store.CounterStore(store.MemoryStorage())
    raised(ValueError, counters.advance, roles.SUPPLIER, 0)  # 0 is the "nothing stored" value
    counters.advance(roles.SUPPLIER, 10)
    raised(ValueError, counters.advance, roles.SUPPLIER, 10)
    raised(ValueError, counters.advance, roles.SUPPLIER, 9)
    counters.advance(roles.SUPPLIER, 11)
    assert counters.counter(roles.SUPPLIER) == 11
    assert counters.counter(roles.ROOT) == 0  # roles are independent
    counters.advance(roles.ROOT, 1)
    assert counters.counter(roles.SUPPLIER) == 11


def test_floors_only_move_up():
    storage = store.MemoryStorage()
    counters = store.CounterStore(storage)
    counters.advance(roles.SUPPLIER, 50)
    raised(ValueError, counters.floor, roles.SUPPLIER, 49)
    files = dict(storage.files)
    counters.floor(roles.SUPPLIER, 50)  # the same floor: nothing to do, nothing written
    assert storage.files == files
    counters.floor(roles.SUPPLIER, 1000)
    assert counters.counter(roles.SUPPLIER) == 1000
    raised(ValueError, counters.advance, roles.SUPPLIER, 1000)
    counters.advance(roles.SUPPLIER, 1001)
    assert store.CounterStore(storage).counter(roles.SUPPLIER) == 1001


def test_invalid_counters_change_nothing():
    storage = store.MemoryStorage()
    counters = store.CounterStore(storage)
    counters.advance(roles.SUPPLIER, 7)
    files = dict(storage.files)
    for bad in (-1, 2 ** 64, 7, 3, "8", 8.0, True, None):
        raised(ValueError, counters.advance, roles.SUPPLIER, bad)
    for bad in (-1, 2 ** 64, 6, "8", None):
        raised(ValueError, counters.floor, roles.SUPPLIER, bad)
    for bad_role in (8, 126, 128, -1, "2", None):
        raised(ValueError, counters.advance, bad_role, 8)
        raised(ValueError, counters.floor, bad_role, 8)
        raised(ValueError, counters.counter, bad_role)
    assert storage.files == files
    assert counters.counter(roles.SUPPLIER) == 7


def test_invalid_anchors_change_nothing():
    storage = store.MemoryStorage()
    anchors = store.TrustAnchorStore(storage)
    anchors.install(roles.SUPPLIER, SUPPLIER_ID, G, KEY2)
    files = dict(storage.files)
    good = (roles.ROOT, ACB_ID, G, KEY2)
    cases = [
        (8,) + good[1:],
        ("0",) + good[1:],
        (roles.ROOT, ACB_ID[:7], G, KEY2),
        (roles.ROOT, ACB_ID + b"\x00", G, KEY2),
        (roles.ROOT, "0011223344556677", G, KEY2),
        (roles.ROOT, ACB_ID, G[:63], KEY2),
        (roles.ROOT, ACB_ID, b"\x04" + G, KEY2),  # 65-byte SEC1 form: the store takes x || y only
        (roles.ROOT, ACB_ID, G, KEY2 + b"\x00"),
        (roles.ROOT, ACB_ID, NOT_ON_CURVE, KEY2),
        (roles.ROOT, ACB_ID, G, NOT_ON_CURVE),
        (roles.ROOT, ACB_ID, G, bytes(64)),
        (roles.ROOT, SUPPLIER_ID, G, KEY2),  # another role's party id
    ]
    for case in cases:
        raised(ValueError, anchors.install, *case)
    assert storage.files == files
    assert anchors.roles() == (roles.SUPPLIER,)
    assert anchors.anchor(roles.ROOT) is None
    assert anchors.anchor(99) is None
    # the same role keeps its party id when its keys change
    anchors.install(roles.SUPPLIER, SUPPLIER_ID, KEY3, KEY2)
    assert anchors.anchor(roles.SUPPLIER) == (SUPPLIER_ID, KEY3, KEY2)


def _filled_storage():
    storage = store.MemoryStorage()
    store.TrustAnchorStore(storage).install(roles.SUPPLIER, SUPPLIER_ID, G, KEY2)
    store.CounterStore(storage).advance(roles.SUPPLIER, 12345)
    return storage


def test_record_format():
    storage = _filled_storage()
    record = storage.files["counter.2"]
    assert len(record) == 22
    assert record[0] == store.FORMAT_COUNTER and record[1] == roles.SUPPLIER
    assert record[2:6] == b"\x00\x00\x00\x01"  # first write of the record
    assert record[6:14] == (12345).to_bytes(8, "big")
    assert record[14:18] == bytes(4)  # a CounterStore without anchors: generation 0
    store.CounterStore(storage).advance(roles.SUPPLIER, 12346)
    assert storage.files["counter.2"][2:6] == b"\x00\x00\x00\x02"
    anchor = storage.files["anchor.2"]
    assert len(anchor) == 154 and anchor[0] == store.FORMAT_ANCHOR
    assert anchor[6:150] == SUPPLIER_ID + G + KEY2 + bytes(8)  # floor 0


def test_corrupt_record_refuses_to_start():
    for name in ("anchor.2", "counter.2"):
        length = len(_filled_storage().files[name])
        for index in range(0, length, 3):
            storage = _filled_storage()
            storage.files[name] = flip(storage.files[name], index)
            error = raised(store.StoreCorrupt, store.TrustAnchorStore if name[0] == "a" else store.CounterStore,
                           storage)
            assert name in str(error)
        for cut in (0, 1, length - 1):  # truncated, or a byte too many
            storage = _filled_storage()
            storage.files[name] = storage.files[name][:cut]
            raised(store.StoreCorrupt, store.TrustAnchorStore if name[0] == "a" else store.CounterStore, storage)
        storage = _filled_storage()
        storage.files[name] = storage.files[name] + b"\x00"
        raised(store.StoreCorrupt, store.TrustAnchorStore if name[0] == "a" else store.CounterStore, storage)


def test_misplaced_or_foreign_records_refuse_to_start():
    storage = _filled_storage()
    storage.files["counter.3"] = storage.files.pop("counter.2")  # the role byte says 2
    raised(store.StoreCorrupt, store.CounterStore, storage)
    storage = _filled_storage()
    storage.files["counter.2"] = storage.files["anchor.2"]  # right CRC, wrong kind
    raised(store.StoreCorrupt, store.CounterStore, storage)
    for odd in ("counter.x", "counter.02", "counter.8", "counter.", "counter.2.new.new"):
        storage = _filled_storage()
        storage.files[odd] = b"junk"
        raised(store.StoreCorrupt, store.CounterStore, storage)
    storage = _filled_storage()
    storage.files["other.txt"] = b"not ours"  # other files are left alone
    assert store.CounterStore(storage).counter(roles.SUPPLIER) == 12345
    assert storage.files["other.txt"] == b"not ours"


def test_leftover_new_is_cleaned_and_ignored():
    storage = _filled_storage()
    # a complete .new whose rename never happened: the old state stands
    storage.files["counter.2.new"] = store._encode(store.FORMAT_COUNTER, roles.SUPPLIER, 2, (99999).to_bytes(8, "big"))
    # a partly written one
    storage.files["anchor.2.new"] = b"\xa1\x02\x00"
    # a complete .new where no record exists yet: nothing stored
    storage.files["counter.4.new"] = store._encode(store.FORMAT_COUNTER, 4, 1, (7).to_bytes(8, "big"))
    counters = store.CounterStore(storage)
    anchors = store.TrustAnchorStore(storage)
    assert counters.counter(roles.SUPPLIER) == 12345
    assert counters.counter(roles.ACCESS_CONTROL_BROKER) == 0
    assert anchors.anchor(roles.SUPPLIER) == (SUPPLIER_ID, G, KEY2)
    assert sorted(storage.names()) == ["anchor.2", "counter.2"]


def test_file_storage_cleans_leftovers_and_detects_corruption():
    def check(make_storage):
        storage = make_storage()
        store.CounterStore(storage).advance(roles.ROOT, 3)
        storage.write("counter.0.new", b"\xc1\x00")
        assert store.CounterStore(make_storage()).counter(roles.ROOT) == 3
        assert make_storage().names() == ["counter.0"]
        assert storage.read("missing") is None
        storage.remove("missing")  # no error
        storage.write("counter.0", flip(storage.read("counter.0"), 10))
        raised(store.StoreCorrupt, store.CounterStore, make_storage())
    _file_storage_run(check)


class _LyingStorage(store.MemoryStorage):
    # A flash that accepts a write but reads back something else.
    def write(self, name, data):
        store.MemoryStorage.write(self, name, flip(data, 0) if name.endswith(".new") else data)


def test_write_that_does_not_read_back_changes_nothing():
    storage = _LyingStorage()
    counters = store.CounterStore(storage)
    raised(store.StoreError, counters.advance, roles.SUPPLIER, 1)
    assert counters.counter(roles.SUPPLIER) == 0
    assert storage.names() == []
    anchors = store.TrustAnchorStore(storage)
    raised(store.StoreError, anchors.install, roles.SUPPLIER, SUPPLIER_ID, G, KEY2)
    assert anchors.anchor(roles.SUPPLIER) is None
    assert storage.names() == []


DEVICE_ID = b"\x00\xdb\x12\x34\x56\x78\x90\xa0"
DS_PRIVATE = b"\x00" * 31 + b"\x05"
KA_PRIVATE = b"\x00" * 31 + b"\x06"
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def test_identity_round_trip_and_record_format():
    storage = store.MemoryStorage()
    assert store.IdentityStore(storage).identity is None  # not commissioned
    store.IdentityStore(storage).install(DEVICE_ID, DS_PRIVATE, KA_PRIVATE, "hmac")
    assert store.IdentityStore(storage).identity == (DEVICE_ID, DS_PRIVATE, KA_PRIVATE, "hmac")
    record = storage.files["identity"]
    assert len(record) == 6 + 73 + 4 and record[0] == store.FORMAT_IDENTITY and record[1] == 0
    assert record[6:79] == DEVICE_ID + DS_PRIVATE + KA_PRIVATE + b"\x01"
    # the other stores share the folder and ignore it; it ignores theirs
    store.TrustAnchorStore(storage).install(roles.SUPPLIER, SUPPLIER_ID, G, KEY2)
    store.CounterStore(storage).advance(roles.SUPPLIER, 12345)
    assert store.IdentityStore(storage).identity[3] == "hmac"
    assert store.CounterStore(storage).counter(roles.SUPPLIER) == 12345


def test_identity_bad_input_changes_nothing():
    storage = store.MemoryStorage()
    identities = store.IdentityStore(storage)
    identities.install(DEVICE_ID, DS_PRIVATE, KA_PRIVATE, "gbcs")
    before = dict(storage.files)
    for args in ((DEVICE_ID[:7], DS_PRIVATE, KA_PRIVATE, "gbcs"),
                 (DEVICE_ID, bytes(32), KA_PRIVATE, "gbcs"),
                 (DEVICE_ID, DS_PRIVATE, ORDER.to_bytes(32, "big"), "gbcs"),
                 (DEVICE_ID, DS_PRIVATE, KA_PRIVATE[:31], "gbcs"),
                 (DEVICE_ID, DS_PRIVATE, KA_PRIVATE, "aes")):
        raised(ValueError, identities.install, *args)
    assert storage.files == before
    assert identities.identity == (DEVICE_ID, DS_PRIVATE, KA_PRIVATE, "gbcs")


def test_corrupt_identity_refuses_to_start():
    storage = store.MemoryStorage()
    store.IdentityStore(storage).install(DEVICE_ID, DS_PRIVATE, KA_PRIVATE, "gbcs")
    good = storage.files["identity"]
    for index in range(0, len(good), 5):
        storage.files["identity"] = flip(good, index)
        raised(store.StoreCorrupt, store.IdentityStore, storage)
    # a valid CRA over a suite byte we do not know, or a zero key
    for payload in (DEVICE_ID + DS_PRIVATE + KA_PRIVATE + b"\x02", DEVICE_ID + bytes(32) + KA_PRIVATE + b"\x00"):
        storage.files["identity"] = store._encode(store.FORMAT_IDENTITY, 0, 1, payload)
        raised(store.StoreCorrupt, store.IdentityStore, storage)
    storage.files["identity"] = good
    storage.files["identity.new"] = b"\x1d"  # an install cut short: the old identity stands
    storage.files["identityx"] = b"junk"
    raised(store.StoreCorrupt, store.IdentityStore, storage)
    del storage.files["identityx"]
    assert store.IdentityStore(storage).identity[0] == DEVICE_ID
    assert "identity.new" not in storage.files


def test_replacing_an_anchor_resets_the_counter_to_its_floor_in_one_write():
    storage = store.MemoryStorage()
    anchors = store.TrustAnchorStore(storage)
    counters = store.CounterStore(storage, anchors)
    anchors.install(roles.SUPPLIER, SUPPLIER_ID, G, KEY2, 100)
    assert anchors.generation(roles.SUPPLIER) == 1 and anchors.floor(roles.SUPPLIER) == 100
    assert counters.counter(roles.SUPPLIER) == 100
    raised(ValueError, counters.advance, roles.SUPPLIER, 100)
    counters.advance(roles.SUPPLIER, 5000)
    assert counters.counter(roles.SUPPLIER) == 5000
    # a new supplier with a lower floor: one anchor write, and the old counter is stale at once
    writes = []
    original = storage.write
    storage.write = lambda name, data: (writes.append(name), original(name, data))
    anchors.install(roles.SUPPLIER, NEW_SUPPLIER_ID, KEY3, KEY2, 200, counters)
    assert writes == ["anchor.2.new"]
    assert counters.counter(roles.SUPPLIER) == 200
    counters.advance(roles.SUPPLIER, 201)
    # what a restart finds
    again_anchors = store.TrustAnchorStore(storage)
    again = store.CounterStore(storage, again_anchors)
    assert again.counter(roles.SUPPLIER) == 201 and again_anchors.anchor(roles.SUPPLIER)[0] == NEW_SUPPLIER_ID
    # the same party anchored again (new keys): its floor never drops below its counter
    again_anchors.install(roles.SUPPLIER, NEW_SUPPLIER_ID, G, KEY3, 7, again)
    assert again.counter(roles.SUPPLIER) == 201 and again_anchors.floor(roles.SUPPLIER) == 201
    for bad in (-1, 1 << 64, True, "5"):
        raised(ValueError, again_anchors.install, roles.SUPPLIER, NEW_SUPPLIER_ID, G, KEY3, bad)
    # other roles are untouched by the supplier's changes
    assert again.counter(roles.NETWORK_OPERATOR) == 0
