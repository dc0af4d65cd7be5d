"""Commissioning: how a blank board becomes a device of the system (design.md, "Identities: SMKI and
commissioning"; property 7). Sans-I/O: requests in, answers out; the stores and the random source are
passed in.

    blank          no identity. IDENTIFY is answered; KEYGEN makes the board's own DS and KA key pairs
                   from its random source (the private keys never leave it); a board without a usable
                   RNG takes INJECT instead (keys made on the host, sent once over USB: documented as
                   the weaker path, and refused by a board that has an RNG)
    keyed          identity stored. ROOT installs the root anchor; ANCHOR installs one party's anchor
                   from its DS and KA certificates, checked against the root (meterfw.credentials);
                   FINISH checks every initial anchor is there, sets the board's role and answers with
                   a signature by the new DS key over the device ID and a digest of what was installed
    commissioned   identity and the initial anchors (root, recovery, ACB, transitional CoS, WAN provider)
                   all stored. Commissioning requests are refused from now on: anchors change only
                   through signed credential-replacement commands (CS02b) in the security pipeline.

Each step writes its records atomically (meterfw.store); a power cut between steps leaves a board that
is not yet commissioned, and commissioning is simply run again.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


import hashlib

from meterfw import roles, store
from meterfw.crypto import p256

BLANK = const(0)
KEYED = const(1)
COMMISSIONED = const(2)
STATE_NAMES = ("blank", "keyed", "commissioned")

INITIAL_ROLES = (roles.ROOT, roles.RECOVERY, roles.ACCESS_CONTROL_BROKER, roles.TRANSITIONAL_COS,
                 roles.WAN_PROVIDER)
BOARD_ROLES = ("esme", "gsme", "chf")
CONFIRMATION = b"meterlab commissioned"

_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ROOT_PARTY = b"\x00" * 8  # the root anchor names no party; no command ever comes from the root


class CommissioningError(Exception):
    """A request the board refuses; reason says why, for the lab engineer."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def state_of(identities, anchors):
    if identities.identity is None:
        return BLANK
    for role in INITIAL_ROLES:
        if anchors.anchor(role) is None:
            return KEYED
    return COMMISSIONED


def private_key_from(random_bytes):
    """A P-256 private key from random_bytes(32), drawn again until it lands in [1, n-1] (the rejection
    keeps the key uniform; a draw outside happens with probability about 2^-32)."""
    for _ in range(64):
        candidate = random_bytes(32)
        if candidate is None or len(candidate) != 32:
            break
        value = int.from_bytes(candidate, "big")
        if 0 < value < _N:
            return candidate
    raise CommissioningError("the board's random source gives no usable key material")


class Commissioner:
    def __init__(self, storage, random_bytes=None):
        """storage: the security folder's storage; random_bytes(n) -> n random bytes, or None for a
        board without a usable RNG."""
        self.storage = storage
        self.random_bytes = random_bytes
        self.identities = store.IdentityStore(storage)
        self.anchors = store.TrustAnchorStore(storage)

    @property
    def state(self):
        return state_of(self.identities, self.anchors)

    def public_keys(self):
        """(device_id, ds_public_key, ka_public_key), or None when blank."""
        identity = self.identities.identity
        if identity is None:
            return None
        return identity[0], p256.public_key(identity[1]), p256.public_key(identity[2])

    def _not_commissioned(self):
        if self.state == COMMISSIONED:
            raise CommissioningError("already commissioned: anchors change only through signed CS02b commands")

    def keygen(self, device_id, suite):
        """Make and store the board's DS and KA key pairs: (ds_public_key, ka_public_key)."""
        self._not_commissioned()
        if self.random_bytes is None:
            raise CommissioningError("this board has no usable random source: its keys must be injected")
        ds = private_key_from(self.random_bytes)
        ka = private_key_from(self.random_bytes)
        self._install_identity(device_id, ds, ka, suite)
        return p256.public_key(ds), p256.public_key(ka)

    def inject(self, device_id, suite, ds_private_key, ka_private_key):
        """Store keys made elsewhere: only on a board with no random source of its own."""
        self._not_commissioned()
        if self.random_bytes is not None:
            raise CommissioningError("this board makes its own keys: injecting keys is refused")
        self._install_identity(device_id, ds_private_key, ka_private_key, suite)
        return p256.public_key(ds_private_key), p256.public_key(ka_private_key)

    def _install_identity(self, device_id, ds, ka, suite):
        # New keys: nothing anchored or counted for the old ones stays (a counter names its anchor's
        # generation, and a new anchor starts again at generation 1).
        for name in list(self.storage.names()):
            if name.startswith(store.ANCHOR_PREFIX) or name.startswith(store.COUNTER_PREFIX):
                self.storage.remove(name)
        self.anchors = store.TrustAnchorStore(self.storage)
        try:
            self.identities.install(device_id, ds, ka, suite)
        except ValueError as error:
            raise CommissioningError("identity refused: " + str(error))

    def _keyed(self):
        self._not_commissioned()
        if self.identities.identity is None:
            raise CommissioningError("the board has no keys yet: KEYGEN (or INJECT) first")

    def install_root(self, root_public_key):
        self._keyed()
        try:
            self.anchors.install(roles.ROOT, _ROOT_PARTY, root_public_key, root_public_key)
        except ValueError as error:
            raise CommissioningError("root anchor refused: " + str(error))

    def install_anchor(self, role, ca_der, ds_der, ka_der):
        """Install role's anchor from its certificates, which must chain to the root anchor."""
        from meterfw import credentials

        self._keyed()
        if role not in INITIAL_ROLES or role == roles.ROOT:
            raise CommissioningError("commissioning installs only the recovery, ACB, transitional CoS and "
                                     "WAN provider anchors")
        root = self.anchors.anchor(roles.ROOT)
        if root is None:
            raise CommissioningError("install the root anchor first")
        try:
            party_id, ds, ka = credentials.check_party(role, ca_der, ds_der, ka_der, root[1])
        except credentials.CredentialError as error:
            raise CommissioningError(error.reason)
        try:
            self.anchors.install(role, party_id, ds, ka)
        except ValueError as error:
            raise CommissioningError("anchor refused: " + str(error))

    def finish(self):
        """The board is commissioned once every initial anchor is in: the confirmation signature, by
        the device's DS key, over CONFIRMATION || device ID || SHA-256 of the initial anchors."""
        identity = self.identities.identity
        if identity is None:
            raise CommissioningError("the board has no keys yet: KEYGEN (or INJECT) first")
        missing = [roles.NAMES[r] for r in INITIAL_ROLES if self.anchors.anchor(r) is None]
        if missing:
            raise CommissioningError("anchors missing: " + ", ".join(missing))
        return p256.sign(identity[1], confirmation(identity[0], self.anchors))


def anchors_digest(anchors):
    digest = hashlib.sha256()
    for role in INITIAL_ROLES:
        party_id, ds, ka = anchors.anchor(role)
        digest.update(bytes((role,)) + party_id + ds + ka)
    return digest.digest()


def confirmation(device_id, anchors):
    """What FINISH signs; the host rebuilds it from what it installed to check the answer."""
    return CONFIRMATION + bytes(device_id) + anchors_digest(anchors)
