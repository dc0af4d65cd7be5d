"""The device's security pipeline for incoming commands (design.md: properties 1-4, "Principles").
Sans-I/O: bytes in, a Decision out; the trust anchor and counter stores are passed in.

    pipeline = DevicePipeline(device_id, device_ka_private_key, anchors, counters, suite="gbcs")
    decision = pipeline.process(frame)
    if decision.accepted: act on decision.message (the counter has already been advanced)

Cheap checks first, fail closed, in this order; the first failing check decides the reason:

    1. size bound (max_frame bytes)                          REJECT_TOO_LONG
    2. GBCS parse                                            REJECT_MALFORMED
    3. a command (CRA 1) ...                                 REJECT_NOT_COMMAND
       ... carrying a MAC header                             REJECT_NO_MAC
    4. recipient is this device                              REJECT_WRONG_RECIPIENT
    5. MAC, Z = ECDH(device KA key, ACB KA anchor): every command is MAC'd by the DCC's access control
       broker, whoever originated it                        REJECT_NO_ACB_ANCHOR, REJECT_BAD_MAC
    6. originator is a trust anchor's party, or a third party     REJECT_UNKNOWN_ORIGINATOR,
       the consumer consented to (meterfw.consent), still in date  REJECT_NO_CONSENT
       (it then counts as the "other" role, with its own counter)
    7. counter strictly above that role's stored counter     REJECT_REPLAY
    8. the message code is in the authorisation table        REJECT_UNKNOWN_CODE
    8a. and this device's type runs it (device_type given)   REJECT_UNSUPPORTED
    9. critical codes: signature by the role's DS anchor     REJECT_NO_ANCHOR, REJECT_BAD_SIGNATURE
   10. the table allows that role that code                  REJECT_NOT_AUTHORISED
   10a. a third party's ECS17b read asks for no more months than its consent REJECT_CONSENT_SCOPE (the
       read's payload's first field is the months of history wanted; one without months is refused too).
       A GCS13a gas register read has no history to bound: the consent alone lets it through
   10b. the validator, if any, accepts the payload: credential replacement (meterfw.ownership) checks
       the new certificates here, so a bad one changes nothing, and the device's role (meterfw.esme)
       checks its own payloads and refuses codes it does not run; it returns a reason
       (REJECT_BAD_PAYLOAD, REJECT_CERTIFICATE, REJECT_CERTIFICATE_CHAIN, REJECT_KEY_USAGE,
       REJECT_CERTIFICATE_ROLE, REJECT_UNSUPPORTED) or
       ACCEPT with a plan, which the Decision carries to the executor

On a battery meter the pipeline asks its energy budget (budget(operation, critical) -> bool, a
meterfw.ledger.EnergyLedger's allow) before the two costly steps, the MAC check (critical only for a
code the table marks signed) and the signature verify (critical); a refusal is REJECT_ENERGY and the
step is not done, so frames beyond the day's allowance cost the meter no more than their parse.
   11. ACCEPT: the role's counter advanced (atomically, by the store) before the caller acts, so a
       power cut after acting can never let the same command through again. A store that refuses
       (ValueError: not above the stored counter) gives REJECT_REPLAY.

Nothing about the payload is looked at before the MAC has verified, and no signature work is done for a
frame with a bad MAC (property 1). On any reject nothing changes but the per-reason count
(pipeline.rejected[reason]) and the optional log(reason, message_or_None) callback is called; the
counter store is not written. Any unexpected exception inside (a store failing, no memory) gives
REJECT_INTERNAL: process() never raises.

Work done once per anchor: the static ECDH secret Z with the ACB's KA anchor is cached with the anchor
key it came from, and recomputed when that anchor changes (pipeline.ecdh_count counts the ECDHs). With
anchor_tables=True the p256.precompute table of each signing role's DS anchor is kept too (about 8 KB
each, made on first use, remade when the anchor changes).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


import meterfw
from meterfw import authorisation, gbcs, roles
from meterfw.crypto import p256

ACCEPT = const(0)
REJECT_TOO_LONG = const(1)
REJECT_MALFORMED = const(2)
REJECT_NOT_COMMAND = const(3)
REJECT_NO_MAC = const(4)
REJECT_WRONG_RECIPIENT = const(5)
REJECT_NO_ACB_ANCHOR = const(6)
REJECT_BAD_MAC = const(7)
REJECT_UNKNOWN_ORIGINATOR = const(8)
REJECT_REPLAY = const(9)
REJECT_UNKNOWN_CODE = const(10)
REJECT_NO_ANCHOR = const(11)
REJECT_BAD_SIGNATURE = const(12)
REJECT_NOT_AUTHORISED = const(13)
REJECT_INTERNAL = const(14)
REJECT_BAD_PAYLOAD = const(15)
REJECT_CERTIFICATE = const(16)
REJECT_CERTIFICATE_CHAIN = const(17)
REJECT_KEY_USAGE = const(18)
REJECT_CERTIFICATE_ROLE = const(19)
REJECT_NO_CONSENT = const(20)
REJECT_CONSENT_SCOPE = const(21)
REJECT_UNSUPPORTED = const(22)
REJECT_ENERGY = const(23)
REASON_COUNT = const(24)

REASON_NAMES = (
    "accept",
    "too long",
    "malformed",
    "not a command",
    "no MAC",
    "wrong recipient",
    "no ACB anchor",
    "bad MAC",
    "unknown originator",
    "replay",
    "unknown message code",
    "no anchor for the originating role",
    "bad signature",
    "not authorised",
    "internal error",
    "malformed payload",
    "certificate refused",
    "certificate does not chain to the root",
    "wrong key usage in a certificate",
    "wrong role in a certificate",
    "consent expired",
    "outside the consent's scope",
    "not a command this device runs",
    "the day's energy allowance is spent",
)

MAX_FRAME = const(2048)  # default bound; RTDS 4.5.0 frames peak well under 2 KiB

# What the budget is asked for (meterfw.ledger's operation names, not imported: mains boards never load it).
MAC_CHECK = "mac_check"
SIGNATURE_VERIFY = "signature_verify"

_ANCHOR_ID = const(0)
_ANCHOR_DS = const(1)
_ANCHOR_KA = const(2)


def _months_asked(payload):
    # a third party's read: the months of history its first field asks for; a read that says none, or
    # does not decode, asks for more than any consent gives
    try:
        values = meterfw.decoded(payload)
    except ValueError:
        values = None
    return values[0] if values and type(values[0]) is int else 1 << 30


class Decision:
    """What process() decided. accepted: True only for ACCEPT; reason: ACCEPT or a REJECT_* code;
    message: the parsed gbcs.Message (None when the frame did not parse); role: the originating role
    once known, else None; rule: the authorisation rule (roles, signed, sensitive, name) on accept."""

    def __init__(self, reason, message=None, role=None, rule=None, plan=None, consent=None):
        self.reason = reason
        self.accepted = reason == ACCEPT
        self.message = message
        self.role = role
        self.rule = rule
        self.plan = plan  # what the validator worked out for the executor, or None
        self.consent = consent  # the third party's meterfw.consent.Consent, or None

    def __repr__(self):
        return "Decision(%s)" % REASON_NAMES[self.reason]


class DevicePipeline:
    def __init__(self, device_id, device_ka_private_key, anchors, counters, suite="gbcs", log=None,
                 max_frame=MAX_FRAME, anchor_tables=False, validator=None, consents=None, budget=None,
                 device_type=None):
        if suite not in ("gbcs", "hmac"):
            raise ValueError("unknown MAC suite")
        self.device_id = bytes(device_id)
        if len(self.device_id) != gbcs.ID_SIZE:
            raise ValueError("device ID must be 8 bytes")
        self._ka_private_key = bytes(device_ka_private_key)
        self.anchors = anchors
        self.counters = counters
        self.suite = suite
        self.log = log
        self.max_frame = max_frame
        self.anchor_tables = anchor_tables
        self.validator = validator  # validator(message, role, rule) -> (reason, plan), or None
        self.consents = consents  # a meterfw.consent.ConsentStore, or None: no third parties
        self.budget = budget  # budget(operation, critical) -> bool, or None: a mains-powered device
        self.device_type = device_type  # "esme", "gsme": codes of other types refused before signature work
        self.rejected = [0] * REASON_COUNT  # indexed by reason code; [ACCEPT] stays 0
        self.accepted = 0
        self.ecdh_count = 0
        self._z_key = None  # the ACB KA anchor Z was computed from
        self._z = None
        self._tables = {}  # role -> (DS anchor key, p256.precompute table)

    # ------------------------------------------------------------------------------------------ cache

    def _acb_z(self):
        # Z with the ACB's KA anchor, or None when there is no usable ACB anchor.
        anchor = self.anchors.anchor(roles.ACCESS_CONTROL_BROKER)
        if anchor is None:
            return None
        ka = bytes(anchor[_ANCHOR_KA])
        if self._z is None or self._z_key != ka:
            self._z = None
            self._z_key = None
            self.ecdh_count += 1
            try:
                z = p256.ecdh(self._ka_private_key, ka)
            except ValueError:
                return None
            self._z = z
            self._z_key = ka
        return self._z

    def _table(self, role, ds):
        if not self.anchor_tables:
            return None
        cached = self._tables.get(role)
        if cached is not None and cached[0] == ds:
            return cached[1]
        try:
            table = p256.precompute(ds)
        except ValueError:
            return None
        self._tables[role] = (ds, table)
        return table

    # ---------------------------------------------------------------------------------------- process

    def _reject(self, reason, message=None, role=None):
        self.rejected[reason] += 1
        if self.log is not None:
            try:
                self.log(reason, message)
            except Exception:  # a failing logger must not turn a reject into a crash
                pass
        return Decision(reason, message, role)

    def process(self, frame):
        """The Decision for one incoming frame (bytes). Never raises."""
        try:
            return self._process(frame)
        except Exception:  # fail closed: a store or memory failure is a reject, never a crash
            return self._reject(REJECT_INTERNAL)

    def _process(self, frame):
        # 1. size, before anything else is done with the bytes
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            return self._reject(REJECT_MALFORMED)
        if len(frame) > self.max_frame:
            return self._reject(REJECT_TOO_LONG)
        # 2. parse the envelope (lengths only; the payload is not interpreted)
        try:
            message = gbcs.parse(frame)
        except gbcs.FrameError:
            return self._reject(REJECT_MALFORMED)
        # 3. a MAC'd command
        if message.cra != gbcs.CRA_COMMAND:
            return self._reject(REJECT_NOT_COMMAND, message)
        if message.mac is None:
            return self._reject(REJECT_NO_MAC, message)
        # 4. for this device
        if message.recipient != self.device_id:
            return self._reject(REJECT_WRONG_RECIPIENT, message)
        # 5. the ACB's MAC
        z = self._acb_z()
        if z is None:
            return self._reject(REJECT_NO_ACB_ANCHOR, message)
        if self.budget is not None:
            claimed = authorisation.rule(message.message_code)
            if not self.budget(MAC_CHECK, claimed is not None and claimed[authorisation.SIGNED]):
                return self._reject(REJECT_ENERGY, message)
        if not gbcs.verify_mac(message, z, self.suite):
            return self._reject(REJECT_BAD_MAC, message)
        # 6. who originated it: an anchored party, or a third party with the consumer's consent
        originator = bytes(message.originator)
        role = self.anchors.role_of(originator)
        consent = None
        if role is None and self.consents is not None:
            consent = self.consents.find(originator)
            if consent is not None:
                if not self.consents.active(consent):
                    return self._reject(REJECT_NO_CONSENT, message, roles.OTHER)
                role = roles.OTHER
        if role is None:
            return self._reject(REJECT_UNKNOWN_ORIGINATOR, message)
        # 7. fresh
        current = consent.counter if consent is not None else self.counters.counter(role)
        if message.counter <= current:
            return self._reject(REJECT_REPLAY, message, role)
        # 8. a code the table knows (no signature work for a command nobody may send)
        rule = authorisation.rule(message.message_code)
        if rule is None:
            return self._reject(REJECT_UNKNOWN_CODE, message, role)
        if self.device_type is not None and self.device_type not in rule[authorisation.DEVICES]:
            return self._reject(REJECT_UNSUPPORTED, message, role)
        # 9. critical: signed by the role's DS anchor
        if rule[authorisation.SIGNED]:
            anchor = self.anchors.anchor(role) if consent is None else (None, consent.ds, None)
            if anchor is None:
                return self._reject(REJECT_NO_ANCHOR, message, role)
            if message.signature is None:
                return self._reject(REJECT_BAD_SIGNATURE, message, role)
            if self.budget is not None and not self.budget(SIGNATURE_VERIFY, True):
                return self._reject(REJECT_ENERGY, message, role)
            ds = bytes(anchor[_ANCHOR_DS])
            if not p256.verify(ds, message.signed_part, message.signature, self._table(role, ds)):
                return self._reject(REJECT_BAD_SIGNATURE, message, role)
        # 10. this role may send this code
        if role not in rule[authorisation.ROLES]:
            return self._reject(REJECT_NOT_AUTHORISED, message, role)
        # 10a. a third party reads no further back than its consent allows
        if (consent is not None and message.message_code == authorisation.READ_IMPORT_REGISTERS
                and _months_asked(message.payload) > consent.months):
            return self._reject(REJECT_CONSENT_SCOPE, message, role)
        # 10b. the payload's own checks, before anything is written
        plan = None
        if self.validator is not None:
            reason, plan = self.validator(message, role, rule)
            if reason != ACCEPT:
                return self._reject(reason, message, role)
        # 11. accept: the counter moves first (the store writes it atomically)
        try:
            if consent is not None:
                self.consents.advance(originator, message.counter)
            else:
                self.counters.advance(role, message.counter)
        except ValueError:
            return self._reject(REJECT_REPLAY, message, role)
        self.accepted += 1
        return Decision(ACCEPT, message, role, rule, plan, consent)
