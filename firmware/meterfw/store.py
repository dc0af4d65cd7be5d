"""Persistent state that must survive a power cut: trust anchors and replay counters, one record per role.

Sans-I/O: the store never opens a file itself. The HAL passes in a storage object with

    read(name) -> bytes, or None when there is no such file
    write(name, data)   writes a whole file; NOT atomic: a power cut may leave it partly written
    rename(src, dst)    atomic replace of dst by src (littlefs and POSIX rename give this; FAT does
                        not: MicroPython's FAT driver unlinks dst first, so boards must use littlefs)
    remove(name)        no error when the file is missing
    names() -> list     every file name in the storage

FileStorage(folder) implements it with os (MicroPython boards, the virtual board, CPython) and
MemoryStorage() in a dict, for tests.

A record is one file:

    format (1) || role (1) || sequence (4, big endian) || payload || CRC-32 of all that precedes (4, BE)

    anchor.<role>   format 0xA2, payload party_id (8) || DS key (64, x || y) || KA key (64, x || y)
                    || counter floor (8, big endian)
    counter.<role>  format 0xC2, payload counter (8, big endian) || anchor generation (4)
    identity        format 0x1D, role byte 0, payload device ID (8) || DS private key (32)
                    || KA private key (32) || MAC suite (1: 0 gbcs, 1 hmac): the device's own keys

<role> is the decimal role number (meterfw.roles). The sequence number counts the writes of that record
(1 for the first); the role byte must match the file name.

Anchors and counters change together without a second commit point. An anchor's generation is its
record's sequence number; a counter record names the generation it was accepted under. Replacing an
anchor (a change of supplier) writes one record, the new keys with the new party's counter floor, and
from that rename on the old counter record is stale: the role's counter is the new floor until the
first command under the new anchor. So a power cut during a change of supplier leaves the old owner
with its counter, or the new owner with its floor, never a mix. Re-anchoring the same party (new keys
after a compromise) never lowers its counter: the floor is at least the counter it had. Nothing lost (design.md): a change writes
NAME.new, reads it back and compares, then renames it over NAME; the rename is the commit point. A power
cut before the rename leaves the old NAME (or no NAME: nothing stored) plus a stray NAME.new; a cut after
it leaves the new NAME. NAME itself is never written in place, so it is never partly written.

Loading: every NAME.new is removed, whether complete or not: it never became the state (NAME missing
and NAME.new complete means nothing was stored). Then every NAME is read and checked (length, format,
role, CRC, and for anchors that both keys are points on P-256 and party ids are unique); any failure,
or a file with a store prefix that is not a valid record name, raises StoreCorrupt: the device refuses
to start rather than run with half a state. Both stores load all their records at construction (small)
and keep a RAM copy; a change goes to storage first, then to RAM, so a failed write leaves RAM as it was.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


import os

from meterfw import roles
from meterfw.crypto import p256

try:
    from binascii import crc32
except ImportError:
    from meterfw.framing import crc32_portable as crc32

FORMAT_ANCHOR = const(0xA2)
FORMAT_COUNTER = const(0xC2)
FORMAT_IDENTITY = const(0x1D)
ANCHOR_PREFIX = "anchor."
COUNTER_PREFIX = "counter."
IDENTITY_NAME = "identity"
FOLDER = "security"  # the flash folder (relative to the board's working directory) holding the records
SUITES = ("gbcs", "hmac")  # index = the suite byte of the identity record
NEW = ".new"

PARTY_ID_SIZE = const(8)
KEY_SIZE = const(64)
_HEADER = const(6)  # format, role, sequence
_CRC = const(4)
RECORD_OVERHEAD = const(10)  # _HEADER and _CRC around a record's payload
_ANCHOR_PAYLOAD = const(144)  # party id, DS key, KA key, counter floor
_COUNTER_PAYLOAD = const(12)  # counter, anchor generation
_IDENTITY_PAYLOAD = const(73)  # device ID, DS private key, KA private key, suite
_PRIVATE_KEY_SIZE = const(32)
_ENOENT = const(2)  # errno ENOENT on every port we run on
_DIR_BIT = const(0x4000)  # S_IFDIR in os.stat()[0]
COUNTER_MAX = 0xFFFFFFFFFFFFFFFF  # not const(): larger than a MicroPython small int
_SEQUENCE_MASK = 0xFFFFFFFF


class StoreError(Exception):
    pass


class StoreCorrupt(StoreError):
    """The stored state is damaged or not ours: the device must not start on it."""


def _crc(data):
    return crc32(data) & 0xFFFFFFFF


def _encode(fmt, role, sequence, payload):
    body = bytes((fmt, role)) + sequence.to_bytes(4, "big") + payload
    return body + _crc(body).to_bytes(4, "big")


def _decode(name, data, fmt, role, payload_size=None):
    """(sequence, payload) of a record, or StoreCorrupt. payload_size None: a record of its own length
    (a tariff, a queued frame), with at least one byte of payload."""
    if data is None:
        raise StoreCorrupt(name + ": listed but unreadable")
    if payload_size is None:
        payload_size = len(data) - RECORD_OVERHEAD
        if payload_size < 1:
            raise StoreCorrupt(name + ": too short for a record")
    if len(data) != _HEADER + payload_size + _CRC:
        raise StoreCorrupt("%s: %d bytes, expected %d" % (name, len(data), _HEADER + payload_size + _CRC))
    end = len(data) - _CRC
    if _crc(data[:end]) != int.from_bytes(data[end:], "big"):
        raise StoreCorrupt(name + ": CRC mismatch")
    if data[0] != fmt:
        raise StoreCorrupt("%s: format byte %d, expected %d" % (name, data[0], fmt))
    if data[1] != role:
        raise StoreCorrupt("%s: holds role %d" % (name, data[1]))
    return int.from_bytes(data[2:_HEADER], "big"), bytes(data[_HEADER:end])


def _role_from(text):
    """The role a file name's suffix names, or None. Only the canonical decimal form counts."""
    if not text or not text.isdigit():
        return None
    role = int(text)
    if role not in roles.ALL or str(role) != text:
        return None
    return role


def _check_role(role):
    if isinstance(role, bool) or not isinstance(role, int) or role not in roles.ALL:
        raise ValueError("unknown role %r" % (role,))


def _exact_bytes(value, size, what):
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(what + " must be bytes")
    value = bytes(value)
    if len(value) != size:
        raise ValueError("%s must be %d bytes, not %d" % (what, size, len(value)))
    return value


def _valid_key(key):
    # The on-curve check of p256's decoder: far lighter than precompute (no table, no point multiples).
    return len(key) == KEY_SIZE and p256.is_valid_public_key(key)


def commit(storage, name, data):
    """Replace file name by data as one step: write NAME.new, read it back and compare, rename."""
    new = name + NEW
    storage.write(new, data)
    if storage.read(new) != data:
        storage.remove(new)
        raise StoreError(new + ": read back differs from what was written")
    storage.rename(new, name)


class _RecordStore:
    """One record file per role, written by write-verify-rename (see the module docstring)."""

    def __init__(self, storage, prefix, fmt, payload_size):
        self._storage = storage
        self._prefix = prefix
        self._format = fmt
        self._payload_size = payload_size
        self._sequence = {}

    def _key(self, rest):
        # The role a record name's suffix (after the prefix) names, or None for a name that is not ours.
        return _role_from(rest)

    def _name(self, role):
        return self._prefix + str(role)

    def _load(self):
        """{role: payload} of every record; removes leftover .new files; StoreCorrupt on damage."""
        storage = self._storage
        prefix = self._prefix
        payloads = {}
        for name in list(storage.names()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            leftover = rest.endswith(NEW)
            if leftover:
                rest = rest[:len(rest) - len(NEW)]
            role = self._key(rest)
            if role is None:
                raise StoreCorrupt(name + ": not a record name")
            if leftover:
                storage.remove(name)  # never committed: the old state stands
                continue
            sequence, payload = _decode(name, storage.read(name), self._format, role, self._payload_size)
            self._sequence[role] = sequence
            payloads[role] = payload
        return payloads

    def _put(self, role, payload):
        """Commit payload as role's record: write NAME.new, verify, rename. RAM is the caller's job."""
        sequence = (self._sequence.get(role, 0) + 1) & _SEQUENCE_MASK
        data = _encode(self._format, role, sequence, payload)
        commit(self._storage, self._name(role), data)
        self._sequence[role] = sequence


class TrustAnchorStore(_RecordStore):
    """Per role: (party_id, ds_public_key, ka_public_key); party ids are unique across roles."""

    def __init__(self, storage):
        _RecordStore.__init__(self, storage, ANCHOR_PREFIX, FORMAT_ANCHOR, _ANCHOR_PAYLOAD)
        anchors = {}
        self._floors = {}
        payloads = self._load()
        for role in payloads:
            payload = payloads[role]
            party_id = payload[:PARTY_ID_SIZE]
            ds = payload[PARTY_ID_SIZE:PARTY_ID_SIZE + KEY_SIZE]
            ka = payload[PARTY_ID_SIZE + KEY_SIZE:PARTY_ID_SIZE + 2 * KEY_SIZE]
            self._floors[role] = int.from_bytes(payload[PARTY_ID_SIZE + 2 * KEY_SIZE:], "big")
            if not (_valid_key(ds) and _valid_key(ka)):
                raise StoreCorrupt(ANCHOR_PREFIX + str(role) + ": key not on the curve")
            for other in anchors:
                if anchors[other][0] == party_id:
                    raise StoreCorrupt("roles %d and %d share a party id" % (other, role))
            anchors[role] = (party_id, ds, ka)
        self._anchors = anchors

    def anchor(self, role):
        """(party_id, ds_public_key, ka_public_key) for role, or None (also for an unknown role)."""
        return self._anchors.get(role)

    def role_of(self, party_id):
        """The role whose anchor has this party id, or None."""
        if not isinstance(party_id, (bytes, bytearray, memoryview)):
            return None
        party_id = bytes(party_id)
        for role in self._anchors:
            if self._anchors[role][0] == party_id:
                return role
        return None

    def roles(self):
        """The roles that have an anchor, ascending."""
        return tuple(sorted(self._anchors))

    def generation(self, role):
        """How many times role's anchor has been written (0: never): counters name the one they follow."""
        return self._sequence.get(role, 0)

    def floor(self, role):
        """The counter floor role's anchor was installed with (0 without an anchor)."""
        return self._floors.get(role, 0)

    def install(self, role, party_id, ds_public_key, ka_public_key, floor=0, counters=None):
        """Install or replace role's anchor, atomically, with the counter floor that role's commands must
        exceed from now on. ValueError (and nothing changed) when role is unknown, a length is wrong, a
        key is not a P-256 point, another role holds party_id, or floor is not a counter. When the same
        party is anchored again (new keys), its floor is at least its current counter (counters: the
        CounterStore to ask), so no old command of that party becomes fresh again."""
        _check_role(role)
        if isinstance(floor, bool) or not isinstance(floor, int) or floor < 0 or floor > COUNTER_MAX:
            raise ValueError("counter floor must be an int in 0..2^64-1")
        party_id = _exact_bytes(party_id, PARTY_ID_SIZE, "party id")
        ds = _exact_bytes(ds_public_key, KEY_SIZE, "DS public key")
        ka = _exact_bytes(ka_public_key, KEY_SIZE, "KA public key")
        if not _valid_key(ds):
            raise ValueError("DS public key is not a P-256 point")
        if not _valid_key(ka):
            raise ValueError("KA public key is not a P-256 point")
        for other in self._anchors:
            if other != role and self._anchors[other][0] == party_id:
                raise ValueError("party id already anchors role %d" % other)
        current = self._anchors.get(role)
        if current is not None and current[0] == party_id and counters is not None:
            floor = max(floor, counters.counter(role))
        self._put(role, party_id + ds + ka + floor.to_bytes(8, "big"))
        self._anchors[role] = (party_id, ds, ka)
        self._floors[role] = floor


class CounterStore(_RecordStore):
    """Per role, the highest originator counter accepted under the role's current anchor; it only moves
    up. With anchors (a TrustAnchorStore), a counter accepted under an anchor that has since been
    replaced no longer counts: the new anchor's floor does (see the module docstring). Without, the
    stored counter is all there is (0 when none)."""

    def __init__(self, storage, anchors=None):
        _RecordStore.__init__(self, storage, COUNTER_PREFIX, FORMAT_COUNTER, _COUNTER_PAYLOAD)
        self.anchors = anchors
        counters = {}
        payloads = self._load()
        for role in payloads:
            payload = payloads[role]
            counters[role] = (int.from_bytes(payload[:8], "big"), int.from_bytes(payload[8:], "big"))
        self._counters = counters  # role -> (counter, anchor generation it was accepted under)

    def _generation(self, role):
        return 0 if self.anchors is None else self.anchors.generation(role)

    def counter(self, role):
        """The counter role's next command must exceed; ValueError for an unknown role."""
        _check_role(role)
        stored = self._counters.get(role)
        if stored is not None and stored[1] == self._generation(role):
            return stored[0]
        return 0 if self.anchors is None else self.anchors.floor(role)

    def _checked(self, role, counter):
        _check_role(role)
        if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0 or counter > COUNTER_MAX:
            raise ValueError("counter must be an int in 0..2^64-1")
        return self.counter(role)

    def _store(self, role, counter):
        generation = self._generation(role)
        self._put(role, counter.to_bytes(8, "big") + generation.to_bytes(4, "big"))
        self._counters[role] = (counter, generation)

    def advance(self, role, counter):
        """Accept counter for role: it must be above the current one (else ValueError: a replay)."""
        current = self._checked(role, counter)
        if counter <= current:
            raise ValueError("counter %d is not above %d" % (counter, current))
        self._store(role, counter)

    def floor(self, role, counter):
        """Raise role's counter to counter: later commands need more. Lowering raises ValueError; the
        same value changes nothing and writes nothing."""
        current = self._checked(role, counter)
        if counter < current:
            raise ValueError("floor %d is below the stored counter %d" % (counter, current))
        if counter == current:
            return
        self._store(role, counter)


class IdentityStore(_RecordStore):
    """The device's own identity: (device_id, ds_private_key, ka_private_key, suite), or None before
    commissioning. One record, replaced atomically like the others."""

    def __init__(self, storage):
        _RecordStore.__init__(self, storage, IDENTITY_NAME, FORMAT_IDENTITY, _IDENTITY_PAYLOAD)
        self.identity = None
        payload = self._load().get(0)
        if payload is not None:
            device_id = payload[:PARTY_ID_SIZE]
            ds = payload[PARTY_ID_SIZE:PARTY_ID_SIZE + _PRIVATE_KEY_SIZE]
            ka = payload[PARTY_ID_SIZE + _PRIVATE_KEY_SIZE:_IDENTITY_PAYLOAD - 1]
            suite = payload[_IDENTITY_PAYLOAD - 1]
            if suite >= len(SUITES):
                raise StoreCorrupt(IDENTITY_NAME + ": unknown MAC suite %d" % suite)
            if not (p256.is_valid_private_key(ds) and p256.is_valid_private_key(ka)):
                raise StoreCorrupt(IDENTITY_NAME + ": private key out of range")
            self.identity = (device_id, ds, ka, SUITES[suite])

    def _key(self, rest):
        return 0 if rest == "" else None  # the one record is named "identity"

    def _name(self, role):
        return IDENTITY_NAME

    def install(self, device_id, ds_private_key, ka_private_key, suite):
        """Store the device's identity, atomically. ValueError (nothing changed) for a wrong length, a
        private key outside [1, n-1] or an unknown suite."""
        device_id = _exact_bytes(device_id, PARTY_ID_SIZE, "device ID")
        ds = _exact_bytes(ds_private_key, _PRIVATE_KEY_SIZE, "DS private key")
        ka = _exact_bytes(ka_private_key, _PRIVATE_KEY_SIZE, "KA private key")
        if suite not in SUITES:
            raise ValueError("unknown MAC suite %r" % (suite,))
        if not p256.is_valid_private_key(ds):
            raise ValueError("DS private key out of range")
        if not p256.is_valid_private_key(ka):
            raise ValueError("KA private key out of range")
        self._put(0, device_id + ds + ka + bytes((SUITES.index(suite),)))
        self.identity = (device_id, ds, ka, suite)


class MemoryStorage:
    """The storage interface over a dict (files: name -> bytes), for tests."""

    def __init__(self):
        self.files = {}

    def read(self, name):
        return self.files.get(name)

    def write(self, name, data):
        self.files[name] = bytes(data)

    def rename(self, src, dst):
        self.files[dst] = self.files.pop(src)

    def remove(self, name):
        if name in self.files:
            del self.files[name]

    def names(self):
        return list(self.files)


def _missing(error):
    return error.args and error.args[0] == _ENOENT


class FileStorage:
    """The storage interface over files in folder (created if missing), with os only."""

    def __init__(self, folder):
        self.folder = folder
        try:
            os.mkdir(folder)
        except OSError:
            pass  # exists already; checked below
        if not os.stat(folder)[0] & _DIR_BIT:
            raise OSError("not a folder: " + folder)

    def _path(self, name):
        return self.folder + "/" + name

    def read(self, name):
        try:
            with open(self._path(name), "rb") as file:
                return file.read()
        except OSError as error:
            if _missing(error):
                return None
            raise

    def write(self, name, data):
        with open(self._path(name), "wb") as file:
            file.write(data)

    def rename(self, src, dst):
        os.rename(self._path(src), self._path(dst))

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError as error:
            if not _missing(error):
                raise

    def names(self):
        return os.listdir(self.folder)
