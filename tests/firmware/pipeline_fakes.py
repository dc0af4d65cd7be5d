# In-memory stand-ins for meterfw.store (TrustAnchorStore, CounterStore) and a small lab of fixed keys
# and parties that builds GBCS commands for meterfw.pipeline tests. Runs under CPython and MicroPython.
from meterfw import gbcs, roles
from meterfw.crypto import p256


class FakeAnchors:
    """anchor(role) -> (party_id, ds_public_key, ka_public_key) or None; role_of(party_id) -> role."""

    def __init__(self):
        self._anchors = {}

    def install(self, role, party_id, ds_public_key, ka_public_key):
        self._anchors[role] = (bytes(party_id), bytes(ds_public_key), bytes(ka_public_key))

    def remove(self, role):
        self._anchors.pop(role, None)

    def anchor(self, role):
        return self._anchors.get(role)

    def role_of(self, party_id):
        for role in self._anchors:
            if self._anchors[role][0] == party_id:
                return role
        return None


class FakeCounters:
    """counter(role) -> int (0 when never set); advance(role, counter), ValueError unless above."""

    def __init__(self):
        self._counters = {}
        self.writes = 0

    def counter(self, role):
        return self._counters.get(role, 0)

    def advance(self, role, counter):
        if counter <= self._counters.get(role, 0):
            raise ValueError("counter not above the stored one")
        self._counters[role] = counter
        self.writes += 1

    def snapshot(self):
        return (sorted(self._counters.items()), self.writes)


def _key(n):
    return bytes(31) + bytes((n,))


DEVICE = b"\x00\xdb\x12\x34\x56\x78\x90\xa0"
OTHER_DEVICE = b"\x00\xdb\x12\x34\x56\x78\x90\xa1"
STRANGER = b"\x90\xb3\xd5\x1f\x30\x09\x00\x00"  # a party with no anchor on the device

PARTY_IDS = {
    roles.ACCESS_CONTROL_BROKER: b"\x90\xb3\xd5\x1f\x30\x00\x00\x02",
    roles.SUPPLIER: b"\x90\xb3\xd5\x1f\x30\x01\x00\x00",
    roles.NETWORK_OPERATOR: b"\x90\xb3\xd5\x1f\x30\x02\x00\x00",
    roles.TRANSITIONAL_COS: b"\x90\xb3\xd5\x1f\x30\x00\x00\x04",
}

DEVICE_KA = _key(1)
DEVICE_DS = _key(3)
ACB_KA = _key(2)
# KA private key per party: commands are all MAC'd by the ACB, responses to the requester's KA key.
KA_KEYS = {
    roles.ACCESS_CONTROL_BROKER: ACB_KA,
    roles.SUPPLIER: _key(21),
    roles.NETWORK_OPERATOR: _key(22),
    roles.TRANSITIONAL_COS: _key(23),
}
THIRD_PARTY_KA = _key(24)  # a party with no anchor, reading with the consumer's consent
# DS private key per role.
DS_KEYS = {
    roles.ACCESS_CONTROL_BROKER: _key(10),
    roles.SUPPLIER: _key(11),
    roles.NETWORK_OPERATOR: _key(12),
    roles.TRANSITIONAL_COS: _key(13),
}
_cache = {}


def public(private_key):
    if private_key not in _cache:
        _cache[private_key] = p256.public_key(private_key)
    return _cache[private_key]


def acb_z():
    # Z as the ACB computes it: ECDH(ACB KA key, device KA key).
    if "z" not in _cache:
        _cache["z"] = p256.ecdh(ACB_KA, public(DEVICE_KA))
    return _cache["z"]


def party_z(private_key):
    # Z as a party computes it for the device's responses: ECDH(party KA key, device KA key).
    if ("party", private_key) not in _cache:
        _cache[("party", private_key)] = p256.ecdh(private_key, public(DEVICE_KA))
    return _cache[("party", private_key)]


def make_anchors():
    anchors = FakeAnchors()
    for role in PARTY_IDS:
        anchors.install(role, PARTY_IDS[role], public(DS_KEYS[role]), public(KA_KEYS[role]))
    return anchors


def command(role, code, counter, payload=b"\x01\x02", sign=False, signer=None, recipient=DEVICE,
            originator=None, z=None, suite="gbcs", signature=None):
    """A MAC'd command from role's party (or originator) to recipient, MAC'd with z (default: the
    ACB's Z with DEVICE); sign=True signs it with role's DS key (or the private key signer);
    signature= puts those 64 bytes in as the signature instead."""
    if originator is None:
        originator = PARTY_IDS[role]
    if z is None:
        z = acb_z()
    apdu = gbcs.build(gbcs.CRA_COMMAND, counter, originator, recipient, code, payload)
    if sign or signer is not None:
        if signer is None:
            signer = DS_KEYS[role]
        signature = p256.sign(signer, gbcs.parse(apdu).signed_part)
    if signature is not None:
        apdu = gbcs.build(gbcs.CRA_COMMAND, counter, originator, recipient, code, payload,
                          signature=signature)
    message = gbcs.parse(apdu)
    return gbcs.wrap(message.apdu, gbcs.mac_for(message, z, suite))
