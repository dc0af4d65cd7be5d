"""The consumer's consents, kept by the meter (design.md, "DCC, CSP, parties"; properties 3 and 4): which
third parties may read consumption, how far back, until when. Sans-I/O: storage and the clock are
passed in.

A third party is no trust anchor: it may send only what the authorisation table allows the "other"
role (reads), and the meter accepts it only while it holds that party's consent. The consent carries
the party's DS and KA keys (its certificates checked against the root when it was granted, by
meterfw.credentials), the months of history it may read (at most 13), when it expires (meter time,
seconds), and the party's own replay counter, so third parties never share one.

    consent.<slot>   format 0xCE, payload party id (8) || DS key (64) || KA key (64) || months (1)
                     || expires (4, seconds, big endian) || counter (8, big endian)

Granted and revoked only through the meter's local (in-home) port, never over the WAN: neither the
DCC nor a third party can make one. Each record is written like every other (meterfw.store: write,
read back, rename), so a power cut leaves a consent granted or not, never half.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import store

FORMAT_CONSENT = const(0xCE)
PREFIX = "consent."
MAX_CONSENTS = const(8)
MAX_MONTHS = const(13)
_PAYLOAD = const(149)
_ID = const(8)
_KEY = const(64)


class Consent:
    def __init__(self, slot, party_id, ds, ka, months, expires, counter):
        self.slot = slot
        self.party_id = party_id
        self.ds = ds
        self.ka = ka
        self.months = months
        self.expires = expires
        self.counter = counter

    def _payload(self):
        return (self.party_id + self.ds + self.ka + bytes((self.months,)) + self.expires.to_bytes(4, "big")
                + self.counter.to_bytes(8, "big"))


class ConsentStore(store._RecordStore):
    def __init__(self, storage, clock):
        store._RecordStore.__init__(self, storage, PREFIX, FORMAT_CONSENT, _PAYLOAD)
        self.clock = clock  # clock() -> the meter's time in seconds
        self._consents = {}
        payloads = self._load()
        for slot in payloads:
            p = payloads[slot]
            months = p[2 * _KEY + _ID]
            if not 1 <= months <= MAX_MONTHS:
                raise store.StoreCorrupt(PREFIX + str(slot) + ": months out of range")
            self._consents[slot] = Consent(slot, p[:_ID], p[_ID:_ID + _KEY], p[_ID + _KEY:_ID + 2 * _KEY], months,
                                           int.from_bytes(p[_ID + 2 * _KEY + 1:_ID + 2 * _KEY + 5], "big"),
                                           int.from_bytes(p[_ID + 2 * _KEY + 5:], "big"))

    def _key(self, rest):
        if len(rest) == 1 and "0" <= rest <= "7":
            return int(rest)
        return None

    def _name(self, slot):
        return PREFIX + str(slot)

    def find(self, party_id):
        """The party's Consent (also when expired: see active()), or None."""
        for consent in self._consents.values():
            if consent.party_id == party_id:
                return consent
        return None

    def active(self, consent):
        return consent is not None and self.clock() < consent.expires

    def consents(self):
        return [self._consents[slot] for slot in sorted(self._consents)]

    def grant(self, party_id, ds, ka, months, expires):
        """Grant (or renew) the party's consent, atomically. A renewal keeps the party's counter.
        ValueError (nothing changed) for bad values, or when all MAX_CONSENTS slots hold other parties."""
        party_id = store._exact_bytes(party_id, _ID, "party id")
        ds = store._exact_bytes(ds, _KEY, "DS key")
        ka = store._exact_bytes(ka, _KEY, "KA key")
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
            raise ValueError("a consent covers 1 to 13 months")
        if isinstance(expires, bool) or not isinstance(expires, int) or not 0 < expires < 1 << 32:
            raise ValueError("expiry must be a time in seconds that fits 4 bytes")
        current = self.find(party_id)
        if current is not None:
            slot, counter = current.slot, current.counter
        else:
            free = [s for s in range(MAX_CONSENTS) if s not in self._consents]
            if not free:
                raise ValueError("the meter holds %d consents already: revoke one first" % MAX_CONSENTS)
            slot, counter = free[0], 0
        consent = Consent(slot, party_id, ds, ka, months, expires, counter)
        self._put(slot, consent._payload())
        self._consents[slot] = consent
        return consent

    def revoke(self, party_id):
        """Withdraw the party's consent; True if there was one."""
        consent = self.find(party_id)
        if consent is None:
            return False
        self._storage.remove(self._name(consent.slot))
        del self._consents[consent.slot]
        self._sequence.pop(consent.slot, None)
        return True

    def advance(self, party_id, counter):
        """Accept counter for the party: above its last (ValueError otherwise: a replay)."""
        consent = self.find(party_id)
        if consent is None:
            raise ValueError("no consent")
        if counter <= consent.counter or counter >> 64:
            raise ValueError("counter not above the consent's")
        updated = Consent(consent.slot, consent.party_id, consent.ds, consent.ka, consent.months, consent.expires,
                          counter)
        self._put(consent.slot, updated._payload())
        self._consents[consent.slot] = updated
