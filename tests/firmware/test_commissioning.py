# meterfw.commissioning and the board protocol's commissioning messages, under pytest and on MicroPython.
# Certificate checks need the SMKI's certificates: they are tested on virtual boards
# (tests/test_commissioning_virtual.py); here the anchors are put in the store directly.
from meterfw import commissioning, roles, store
from meterfw import link_host as link
from meterfw.commissioning import Commissioner, CommissioningError
from meterfw.crypto import p256
from meterfw.device import DeviceCore
from mpcheck import raised

DEVICE = b"\x00\xdb\x12\x34\x56\x78\x90\xa0"
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Draws:
    """A random source that hands out the given draws, then counts up from 7."""

    def __init__(self, *draws):
        self.draws = list(draws)
        self.next = 7

    def __call__(self, n):
        if self.draws:
            return self.draws.pop(0)
        self.next += 1
        return bytes(n - 1) + bytes((self.next,))


def key(n):
    return bytes(31) + bytes((n,))


def install_initial_anchors(c):
    for role in commissioning.INITIAL_ROLES:
        if role == roles.ROOT:
            c.install_root(p256.public_key(key(40)))
        else:
            public = p256.public_key(key(40 + role))
            c.anchors.install(role, bytes(7) + bytes((role,)), public, public)


def test_private_keys_are_drawn_again_until_in_range():
    assert commissioning.private_key_from(Draws(bytes(32), ORDER.to_bytes(32, "big"), key(5))) == key(5)
    raised(CommissioningError, commissioning.private_key_from, lambda n: bytes(32))  # never usable
    raised(CommissioningError, commissioning.private_key_from, lambda n: b"short")


def test_states_from_blank_to_commissioned():
    storage = store.MemoryStorage()
    c = Commissioner(storage, Draws())
    assert c.state == commissioning.BLANK and c.public_keys() is None
    raised(CommissioningError, c.install_root, p256.public_key(key(40)))  # no keys yet
    raised(CommissioningError, c.finish)
    ds, ka = c.keygen(DEVICE, "gbcs")
    assert c.state == commissioning.KEYED
    assert c.public_keys() == (DEVICE, ds, ka) and ds == p256.public_key(key(8)) and ka == p256.public_key(key(9))
    raised(CommissioningError, c.install_root, bytes(64))  # not a point
    error = raised(CommissioningError, c.finish)
    assert "anchors missing: root, recovery" in error.reason
    install_initial_anchors(c)
    assert c.state == commissioning.COMMISSIONED
    signature = c.finish()
    assert p256.verify(ds, commissioning.confirmation(DEVICE, c.anchors), signature)
    for step in (lambda: c.keygen(DEVICE, "gbcs"), lambda: c.install_root(p256.public_key(key(41))),
                 lambda: c.install_anchor(roles.RECOVERY, b"", b"", b"")):
        assert "already commissioned" in raised(CommissioningError, step).reason
    # what a restart finds: the same state from flash
    again = Commissioner(storage, Draws())
    assert again.state == commissioning.COMMISSIONED and again.public_keys() == (DEVICE, ds, ka)


def test_new_keys_drop_the_anchors_and_counters_of_the_old_ones():
    storage = store.MemoryStorage()
    c = Commissioner(storage, Draws())
    c.keygen(DEVICE, "gbcs")
    c.install_root(p256.public_key(key(40)))
    store.CounterStore(storage, c.anchors).advance(roles.ROOT, 5)
    c.keygen(DEVICE, "hmac")
    assert c.anchors.roles() == () and c.identities.identity[3] == "hmac"
    assert sorted(storage.names()) == ["identity"]


def test_injection_only_without_a_random_source():
    with_rng = Commissioner(store.MemoryStorage(), Draws())
    assert "makes its own keys" in raised(CommissioningError, with_rng.inject, DEVICE, "gbcs", key(5), key(6)).reason
    without = Commissioner(store.MemoryStorage(), None)
    assert "no usable random source" in raised(CommissioningError, without.keygen, DEVICE, "gbcs").reason
    assert without.inject(DEVICE, "gbcs", key(5), key(6)) == (p256.public_key(key(5)), p256.public_key(key(6)))
    raised(CommissioningError, without.inject, DEVICE, "gbcs", bytes(32), key(6))  # out of range
    raised(CommissioningError, without.inject, DEVICE[:7], "gbcs", key(5), key(6))


def test_commissioning_anchors_only_initial_roles():
    c = Commissioner(store.MemoryStorage(), Draws())
    c.keygen(DEVICE, "gbcs")
    for role in (roles.SUPPLIER, roles.ROOT, roles.NETWORK_OPERATOR):
        assert "installs only" in raised(CommissioningError, c.install_anchor, role, b"", b"", b"").reason
    assert "root anchor first" in raised(CommissioningError, c.install_anchor, roles.RECOVERY, b"", b"", b"").reason
    c.install_root(p256.public_key(key(40)))
    reason = raised(CommissioningError, c.install_anchor, roles.RECOVERY, b"\x30\x00", b"\x30", b"").reason
    assert reason.startswith("DS certificate:")


def core(random_bytes=None, calls=None):
    c = Commissioner(store.MemoryStorage(), random_bytes or Draws())

    def on_commissioned(role):
        calls.append(role)
        return "endpoint", None

    return DeviceCore("unconfigured", "1", "b", "f", False, None, link.ERR_NOT_COMMISSIONED, c,
                      b"\x01" * 8, on_commissioned), c


def test_board_protocol_commissioning():
    calls = []
    device, c = core(calls=calls)
    ask = lambda payload: device.handle(payload, 0, 0)[0]  # noqa: E731
    assert link.parse_identity(ask(bytes((link.IDENTIFY,)))) == (commissioning.BLANK, True, b"\x01" * 8, None)
    status, body = link.parse_status_reply(ask(bytes((link.KEYGEN,)) + DEVICE + b"\x00"), link.KEYS)
    assert status == link.STATUS_DONE and body == p256.public_key(key(8)) + p256.public_key(key(9))
    state, _, _, keys = link.parse_identity(ask(bytes((link.IDENTIFY,))))
    assert state == commissioning.KEYED and keys == (DEVICE, p256.public_key(key(8)), p256.public_key(key(9)))
    for bad in (bytes((link.KEYGEN,)) + DEVICE, bytes((link.KEYGEN,)) + DEVICE + b"\x02"):
        assert link.parse_status_reply(ask(bad), link.KEYS) == (link.STATUS_REFUSED, "malformed request")
    refused = link.parse_status_reply(ask(bytes((link.COMMISSION, 9))), link.COMMISSION_REPLY, 9)
    assert refused == (link.STATUS_REFUSED, "unknown commissioning step")
    refused = link.parse_status_reply(ask(bytes((link.COMMISSION, link.STEP_ANCHOR, roles.RECOVERY, 0))),
                                      link.COMMISSION_REPLY, link.STEP_ANCHOR)
    assert refused[0] == link.STATUS_REFUSED and "malformed anchor step" in refused[1]
    install_initial_anchors(c)
    refused = link.parse_status_reply(ask(bytes((link.COMMISSION, link.STEP_FINISH, 7))), link.COMMISSION_REPLY,
                                      link.STEP_FINISH)
    assert refused == (link.STATUS_REFUSED, "FINISH names no board role") and calls == []
    status, signature = link.parse_status_reply(ask(bytes((link.COMMISSION, link.STEP_FINISH, 1))),
                                                link.COMMISSION_REPLY, link.STEP_FINISH)
    assert status == link.STATUS_DONE and len(signature) == 64
    assert calls == ["gsme"] and device.role == "gsme" and device.endpoint == "endpoint"
    assert ask(bytes((link.IDENTIFY, 0))) == link.error(link.IDENTIFY, link.ERR_MALFORMED)


def test_board_without_commissioner_refuses_commissioning():
    device = DeviceCore("esme", "1", "b", "f", False, None, link.ERR_STATE_DAMAGED)
    assert device.handle(bytes((link.IDENTIFY,)), 0, 0)[0] == link.error(link.IDENTIFY, link.ERR_STATE_DAMAGED)
