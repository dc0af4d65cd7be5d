"""The DCC's service: the one path by which a user's command reaches a meter (design.md, "DCC, CSP,
parties"; properties 1, 4, 5, 8).

For each service request, in this order, and every step into the audit log:

    1. parse; the user is a party of the SMKI whose DCC-facing certificate chains to the infrastructure CA
    2. the request's signature with that DCC-facing key; its counter above the user's last one
    3. the command is from the user, to one meter, without a MAC; the user's role may send that code
       (the meters' own authorisation table, so a DNO's tariff stops here, not only at the meter);
       a critical command carries a valid signature by the user's meter-facing key
    4. the meter is in the register; a supplier's command goes only to a meter it owns
    5. anomaly detection (anomaly.py): over a threshold, an alarm, and the request waits in quarantine
       until the user's signed RELEASE (routed then) or DELETE
    6. the ACB's MAC (Z with each meter computed once), then the router (the CSP) takes the frame to the
       meter and brings back its answer

State lives in SQLite beside the device register (dcc.sqlite): the users' last counters, which supplier
owns which meter, the quarantine and the alarms; the audit log (audit.py) is its own file. A restart
loses nothing: the anomaly windows are rebuilt from the audit log's routed requests.
"""
import sqlite3
import time

from cryptography import x509 as pyca_x509
from cryptography.exceptions import InvalidSignature

from meterfw import authorisation, gbcs, ownership, roles
from meterfw.link_host import Queued
from meterlab import hostcrypto
from meterlab.dcc import requests
from meterlab.dcc.anomaly import AnomalyDetector
from meterlab.dcc.audit import AuditLog
from meterlab.dcc.register import DeviceRegister
from meterlab.parties import commands
from meterlab.smki import certificates
from meterlab.smki.keystore import verify
from meterlab.smki.parties import DCC_DS, METER_DS, METER_KA, all_parties, dcc_parties

ROUTED, QUARANTINED, REFUSED, RELEASED, DELETED = "routed", "quarantined", "refused", "released", "deleted"
QUEUED = "queued"  # at a comms hub's GPF, for its sleeping gas meter's next poll: Dcc.collect() later

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_counters (user TEXT PRIMARY KEY, counter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ownership (meter TEXT PRIMARY KEY, supplier TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, user TEXT NOT NULL, code INTEGER NOT NULL,
                                       meter TEXT NOT NULL, request BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine_state (user TEXT NOT NULL, code INTEGER NOT NULL,
                                             PRIMARY KEY (user, code));
CREATE TABLE IF NOT EXISTS queued (meter TEXT NOT NULL, ticket INTEGER NOT NULL, user TEXT NOT NULL,
                                   code INTEGER NOT NULL, new_owner TEXT, frame BLOB NOT NULL,
                                   PRIMARY KEY (meter, ticket));
CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY, at REAL NOT NULL, user TEXT NOT NULL,
                                   code INTEGER NOT NULL, text TEXT NOT NULL);
"""
EVERYONE = "*"  # quarantine_state's user for a code quarantined for all users


class Result:
    def __init__(self, status, detail="", reason=None, response=None, ticket=None):
        self.status = status
        self.detail = detail
        self.reason = reason  # the meter's pipeline reason, when routed
        self.response = response  # the meter's response frame, when it gave one
        self.ticket = ticket  # QUEUED: the hub's ticket, for collect()

    def __repr__(self):
        return f"Result({self.status}, {self.detail!r}, reason={self.reason})"


class Dcc:
    def __init__(self, folder, smki, passphrase, router, thresholds=None, clock=time.time):
        self.folder = folder
        self.smki = smki
        self.router = router  # router(device record, frame) -> (meter reason, response or None)
        self.clock = clock
        self.register = DeviceRegister(folder)
        self._db = sqlite3.connect(self.register.path)
        self._db.execute("PRAGMA journal_mode=WAL")  # one fsync a commit, and the audit log's alike
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(STATE_SCHEMA)
        self.audit = AuditLog(folder, clock=clock)
        self.parties = dcc_parties(smki, passphrase)
        self.acb = self.parties[roles.ACCESS_CONTROL_BROKER]
        self.users = self._load_users(passphrase)
        self.detector = AnomalyDetector(thresholds)
        self._deferring = False  # inside a batch: writes wait for the batch's commit
        self._keys_cache = {}
        self._z_cache = {}
        self._owners = {}
        self._devices = {}
        self._counters = {}  # user -> last request counter (the table's copy, read once)
        self._dirty_users = set()
        self._dirty = False  # a deferred write waits for the batch's commit
        self._restore_detector()

    def close(self):
        self._db.close()
        self.register.close()
        self.audit.close()

    # ----------------------------------------------------------------------------------- users

    def _load_users(self, passphrase):
        infrastructure = pyca_x509.load_der_x509_certificate(self.smki.certificate("infrastructure-ca"))
        users = {}
        for party in all_parties(self.smki, passphrase):
            certificate = pyca_x509.load_der_x509_certificate(party.certificate(DCC_DS))
            try:
                certificate.verify_directly_issued_by(infrastructure)
            except (ValueError, TypeError, InvalidSignature):
                continue  # not a DCC user: its DCC-facing certificate is not ours
            users[party.eui64] = party
        return users

    def _restore_detector(self):
        now = self.clock()
        for _, at, actor, action, detail in self.audit.entries():
            if action == "route" and now - at < self.detector.thresholds.window:
                self.detector.check(actor, detail["code"], at)
        self.detector.quarantined_users.clear()
        self.detector.quarantined_codes.clear()
        for user, code in self._db.execute("SELECT user, code FROM quarantine_state"):
            if user == EVERYONE:
                self.detector.quarantined_codes.add(code)
            else:
                self.detector.quarantined_users.add((user, code))

    # ------------------------------------------------------------------------------- ownership

    def owner(self, meter):
        if meter not in self._owners:
            row = self._db.execute("SELECT supplier FROM ownership WHERE meter = ?", (meter.hex(),)).fetchone()
            self._owners[meter] = bytes.fromhex(row[0]) if row else None
        return self._owners[meter]

    def _set_owner(self, meter, supplier):
        self._write("INSERT OR REPLACE INTO ownership VALUES (?, ?)", (meter.hex(), supplier.hex()))
        self._owners[meter] = supplier

    def record_installation(self, meters, supplier):
        """An estate installed in bulk with supplier's anchor already on its meters (the fleet mode of
        meterlab attack, where thousands are set up at once): supplier becomes each one's owner, as a
        change of supplier would have made it, in one audited write."""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO ownership VALUES (?, ?)",
                                 [(meter.hex(), supplier.eui64.hex()) for meter in meters])
        for meter in meters:
            self._owners[meter] = supplier.eui64
        self.audit.append("dcc", "installed", {"supplier": supplier.eui64.hex(), "meters": len(meters)})

    def _device(self, meter):
        # Register entries never change once made: read each once.
        device = self._devices.get(meter)
        if device is None:
            device = self.register.device(meter)
            if device is not None:
                self._devices[meter] = device
        return device

    def change_supplier(self, meter, new_supplier):
        """CS02b supplierByTransCoS, originated by the DCC's transitional CoS: the meter's new owner."""
        return self._own_command(
            meter, lambda device: commands.take_ownership(self.smki, device, new_supplier,
                                                          self.parties[roles.TRANSITIONAL_COS], self.acb),
            "dcc transitional CoS", "change of supplier", {"supplier": new_supplier.eui64.hex()},
            new_supplier.eui64, "new owner", "the meter refused the change of supplier")

    def install_by_recovery(self, meter, party, role):
        """CS02b anyExceptAbnormalRootByRecovery: the DCC's recovery party anchors party as role on the
        meter (a network operator's anchor, or any anchor after a compromise)."""
        return self._own_command(
            meter, lambda device: commands.recover(self.smki, device, self.parties[roles.RECOVERY], party, role,
                                                   self.acb),
            "dcc recovery", "install anchor", {"party": party.eui64.hex(), "role": role},
            party.eui64 if role == roles.SUPPLIER else None, "anchor installed", "the meter refused the new anchor")

    def _own_command(self, meter, build, actor, action, detail, new_owner, done, refused):
        # A credential command the DCC originates itself (its transitional CoS or recovery party): built
        # for the registered meter, audited before it leaves (as a user's request is), routed, and its
        # answer audited; on the meter's accept, its signed answer is checked and a supplier it installed
        # becomes the owner.
        from meterlab.csp import CspRefused

        device = self._device(meter)
        if device is None:
            return Result(REFUSED, "meter not registered")
        frame = build(device)
        fields = {"meter": meter.hex(), **detail}
        self.audit.append(actor, action, fields)
        try:
            answer = self.router(device, frame)
        except CspRefused as error:
            self.audit.append(actor, "csp refused", {**fields, "why": str(error)})
            return Result(REFUSED, f"the CSP refused: {error}")
        if isinstance(answer, Queued):
            return self._queued(actor, fields, device, answer.ticket, frame,
                                new_owner.hex() if new_owner is not None else None)
        return self._answered(actor, fields, device, frame, *answer, new_owner=new_owner, done=done,
                              refused=refused)

    def _answered(self, actor, fields, device, frame, reason, response, new_owner=None, done="", refused=None):
        # The meter's answer to a command the DCC originated (refused: that command's words for a refusal).
        self.audit.append(actor, "answer", {**fields, "meter_reason": reason})
        if reason != 0:
            return Result(REFUSED, refused, reason, response)
        commands.check_response(device, frame, response)
        if new_owner is not None:
            self._set_owner(device["eui64"], new_owner)
        return Result(ROUTED, done, reason, response)

    def _queued(self, user_name, fields, device, ticket, frame, new_owner=None):
        self._write("INSERT OR REPLACE INTO queued VALUES (?, ?, ?, ?, ?, ?)",
                    (device["eui64"].hex(), ticket, user_name, fields.get("code", -1), new_owner, frame))
        self.audit.append(user_name, "queued", {**fields, "ticket": ticket})
        return Result(QUEUED, f"held by the hub's GPF for the gas meter's next poll (ticket {ticket})",
                      ticket=ticket)

    def collect(self, meter, ticket):
        """The answer to a command queued for a sleeping gas meter: ROUTED with the meter's reason and
        response once it has polled, QUEUED while it has not, REFUSED for a ticket the DCC never got."""
        from meterlab.csp import CspRefused

        row = self._db.execute("SELECT user, code, new_owner, frame FROM queued WHERE meter = ? AND ticket = ?",
                               (meter.hex(), ticket)).fetchone()
        if row is None:
            return Result(REFUSED, f"no command queued for meter {meter.hex()} under ticket {ticket}")
        user_name, code, new_owner, frame = row
        device = self._device(meter)
        try:
            answer = self.router.collect(device, ticket)
        except CspRefused as error:
            return Result(REFUSED, f"the CSP refused: {error}")
        if answer is None:
            return Result(QUEUED, "the gas meter has not polled since", ticket=ticket)
        fields = {"code": code, "meter": meter.hex(), "ticket": ticket}
        if new_owner is not None and user_name.startswith("dcc"):  # the DCC's own credential command
            result = self._answered(user_name, fields, device, frame, *answer, new_owner=bytes.fromhex(new_owner),
                                    done="new owner", refused="the meter refused the credential command")
        else:
            reason, response = answer
            self.audit.append(user_name, "answer", {**fields, "meter_reason": reason})
            if reason == 0 and new_owner is not None:  # a supplier's supplierBySupplier, done
                self._set_owner(meter, bytes.fromhex(new_owner))
            result = Result(ROUTED, "", reason, response)
        # answered and audited: only now may the DCC forget it was waiting
        self._write("DELETE FROM queued WHERE meter = ? AND ticket = ?", (meter.hex(), ticket))
        return result

    # --------------------------------------------------------------------------------- requests
    #
    # A batch of requests goes in two phases, each one group commit of the DCC's state and the audit log:
    # first every decision (refused, quarantined, or to be routed: the users' counters, the quarantine,
    # the alarms and an audit entry for each), durable before any frame leaves; then the frames go out
    # and the meters' answers are audited. A crash between them leaves requests audited as routed that a
    # meter may not have seen: never a frame sent without its entry.

    class _Plan:
        def __init__(self, user_name, device, command, fields):
            self.user_name = user_name
            self.device = device
            self.command = command
            self.fields = fields

    def _write(self, sql, args=()):
        self._db.execute(sql, args)
        if self._deferring:
            self._dirty = True
        else:
            self._db.commit()

    def _commit_batch(self):
        if self._dirty:
            self._db.commit()
            self._dirty = False

    def _refuse(self, user, detail, **fields):
        self.audit.append(user, "refuse", {"why": detail, **fields})
        return Result(REFUSED, detail)

    def submit(self, data):
        """The Result of one service request (bytes)."""
        return self.submit_batch([data])[0]

    def submit_batch(self, batch):
        """The Results of several service requests, decided in order, made durable together."""
        outcomes = []
        self._deferring = True
        try:
            with self.audit.batch():
                for data in batch:
                    outcomes.append(self._decide(data))
                if self._dirty_users:
                    self._db.executemany("INSERT OR REPLACE INTO user_counters VALUES (?, ?)",
                                         [(user, self._counters[user]) for user in self._dirty_users])
                    self._dirty_users.clear()
                    self._dirty = True
                self._commit_batch()
        finally:
            self._deferring = False
        plans = [o for o in outcomes if isinstance(o, self._Plan)]
        for outcome in outcomes:
            if isinstance(outcome, Result) and isinstance(outcome.response, list):
                plans.extend(o for o in outcome.response if isinstance(o, self._Plan))
        answers = {}
        self._deferring = True
        try:
            with self.audit.batch():
                accepted = 0
                for plan in plans:
                    answers[id(plan)] = result = self._send(plan)
                    accepted += result.reason == 0
                if accepted:  # one entry for the batch's accepted answers; every other answer has its own
                    self.audit.append("dcc", "answers", {"accepted": accepted})
                self._commit_batch()
        finally:
            self._deferring = False

        def finished(outcome):
            return answers[id(outcome)] if isinstance(outcome, self._Plan) else outcome

        results = []
        for outcome in outcomes:
            outcome = finished(outcome)
            if isinstance(outcome.response, list):
                outcome.response = [finished(o) for o in outcome.response]
            results.append(outcome)
        return results

    def _decide(self, data):
        try:
            request = requests.parse(data)
        except requests.RequestError as error:
            return self._refuse("unknown", f"malformed request: {error}")
        user_name = request.user.hex()
        party = self.users.get(request.user)
        if party is None:
            return self._refuse(user_name, "not a DCC user")
        if not verify(party.keys.public_key(DCC_DS), request.signed_part, request.signature):
            return self._refuse(user_name, "bad signature on the request")
        if user_name not in self._counters:
            row = self._db.execute("SELECT counter FROM user_counters WHERE user = ?", (user_name,)).fetchone()
            self._counters[user_name] = row[0] if row else -1
        if request.counter <= self._counters[user_name]:
            return self._refuse(user_name, "replayed request", counter=request.counter)
        self._counters[user_name] = request.counter
        self._dirty_users.add(user_name)  # written with the batch's commit, before any frame leaves
        if request.kind == requests.COMMAND:
            return self._command(request, party)
        return self._release_or_delete(request, party)

    def _command(self, request, party):
        user_name = request.user.hex()
        try:
            command = gbcs.parse(request.body)
        except gbcs.FrameError as error:
            return self._refuse(user_name, f"malformed command: {error.reason}")
        if command.mac is not None or command.cra != gbcs.CRA_COMMAND or bytes(command.originator) != party.eui64:
            return self._refuse(user_name, "not an unMAC'd command from this user")
        code = command.message_code
        fields = {"code": code, "meter": bytes(command.recipient).hex()}
        if not authorisation.allowed(party.role, code):
            name = roles.NAMES[party.role]
            return self._refuse(user_name, f"{_article(name)} {name} may not send 0x{code:04X}", **fields)
        if authorisation.needs_signature(code):
            if not verify(party.keys.public_key(METER_DS), command.signed_part, command.signature):
                return self._refuse(user_name, "critical command without the user's valid signature", **fields)
        meter = bytes(command.recipient)
        device = self._device(meter)
        if device is None:
            return self._refuse(user_name, "meter not registered", **fields)
        if not authorisation.runs(device["role"], code):  # a battery meter is spared the frame altogether
            return self._refuse(user_name, f"{_article(device['role'])} {device['role']} does not run 0x{code:04X}",
                                **fields)
        if party.role == roles.SUPPLIER and self.owner(meter) != party.eui64:
            return self._refuse(user_name, "the meter is owned by another supplier", **fields)
        verdict = self.detector.check(user_name, code, self.clock())
        if not verdict.routed:
            return self._quarantine(request, user_name, code, meter, verdict)
        self.audit.append(user_name, "route", fields)
        return self._Plan(user_name, device, command, fields)

    def _quarantine(self, request, user_name, code, meter, verdict):
        now = self.clock()
        self._write("INSERT INTO quarantine (user, code, meter, request, at) VALUES (?, ?, ?, ?, ?)",
                    (user_name, code, meter.hex(), request.encode(), now))
        if (user_name, code) in self.detector.quarantined_users:
            self._write("INSERT OR IGNORE INTO quarantine_state VALUES (?, ?)", (user_name, code))
        if code in self.detector.quarantined_codes:
            self._write("INSERT OR IGNORE INTO quarantine_state VALUES (?, ?)", (EVERYONE, code))
        if verdict.alarm:
            self._write("INSERT INTO alarms (at, user, code, text) VALUES (?, ?, ?, ?)",
                        (now, user_name, code, verdict.alarm))
            self.audit.append(user_name, "alarm", {"code": code, "text": verdict.alarm})
        self.audit.append(user_name, "quarantine", {"code": code, "meter": meter.hex()})
        return Result(QUARANTINED, verdict.alarm or "held in quarantine")

    def _device_keys(self, device):
        meter = device["eui64"]
        keys = self._keys_cache.get(meter)
        if keys is None:
            keys = self._keys_cache[meter] = commands.device_keys(device)
        return keys

    def _acb_z(self, device):
        meter = device["eui64"]
        z = self._z_cache.get(meter)
        if z is None:  # one ECDH per meter: Z = ECDH(ACB KA, device KA) never changes
            z = self._z_cache[meter] = self.acb.keys.exchange(METER_KA, self._device_keys(device)[2])
        return z

    def _send(self, plan):
        from meterlab.csp import CspRefused

        command = plan.command
        frame = gbcs.wrap(command.apdu, hostcrypto.mac_for(command, self._acb_z(plan.device)))
        try:
            answer = self.router(plan.device, frame)
        except CspRefused as error:
            self.audit.append(plan.user_name, "csp refused", {**plan.fields, "why": str(error)})
            return Result(REFUSED, f"the CSP refused: {error}")
        if isinstance(answer, Queued):  # a supplier handing its meter to another: the owner changes when done
            new_owner = _new_owner(command)
            return self._queued(plan.user_name, plan.fields, plan.device, answer.ticket, frame,
                                new_owner.hex() if new_owner is not None else None)
        reason, response = answer
        if reason != 0:
            self.audit.append(plan.user_name, "answer", {**plan.fields, "meter_reason": reason})
        elif command.message_code == authorisation.CREDENTIALS_SUPPLIER_BY_SUPPLIER:
            self._set_owner(bytes(command.recipient), _new_owner(command))
        return Result(ROUTED, "", reason, response)

    def _release_or_delete(self, request, party):
        user_name = request.user.hex()
        code = request.message_code
        rows = self._db.execute("SELECT id, request FROM quarantine WHERE user = ? AND code = ? ORDER BY id",
                                (user_name, code)).fetchall()
        self._write("DELETE FROM quarantine WHERE user = ? AND code = ?", (user_name, code))
        self._write("DELETE FROM quarantine_state WHERE user = ? AND code = ?", (user_name, code))
        self.detector.release(user_name, code)
        action = "release" if request.kind == requests.RELEASE else "delete"
        self.audit.append(user_name, action, {"code": code, "requests": len(rows)})
        held = []
        if request.kind == requests.RELEASE:
            for _, data in rows:  # through every check again, anomaly detection included
                held.append(self._command(requests.parse(data), party))
        return Result(RELEASED if request.kind == requests.RELEASE else DELETED,
                      f"{action}d {len(rows)} quarantined requests", response=held)

    # ----------------------------------------------------------------------------------- views

    def alarms(self):
        return [{"id": row[0], "at": row[1], "user": row[2], "code": row[3], "text": row[4]}
                for row in self._db.execute("SELECT id, at, user, code, text FROM alarms ORDER BY id")]

    def quarantined(self, user=None):
        query = "SELECT user, code, meter FROM quarantine"
        args = ()
        if user is not None:
            query += " WHERE user = ?"
            args = (user.hex(),)
        return self._db.execute(query + " ORDER BY id", args).fetchall()


def _new_owner(command):
    """The supplier a supplierBySupplier command hands the meter to (its EUI-64); None for another command,
    or for a payload the meter will refuse anyway."""
    if command.message_code != authorisation.CREDENTIALS_SUPPLIER_BY_SUPPLIER:
        return None
    fields = ownership.decode_payload(command.payload)
    try:
        return certificates.describe(fields[3])["eui64"] if fields is not None else None
    except certificates.CertificateProfileError:
        return None


def user_request(party, kind, body, counter=None):
    """A service request from party (a Party), signed with its DCC-facing key."""
    if counter is None:
        counter = commands.next_counter(party)
    return requests.make(party.eui64, counter, kind, body, lambda data: party.keys.sign(DCC_DS, data))


def _article(name):
    return "an" if name[0] in "aeiou" else "a"


def command_request(party, meter, code, payload, counter=None, sign=None):
    """A COMMAND service request: party's command APDU to meter (signed with its meter-facing key when
    critical), inside a request signed with its DCC-facing key."""
    gbcs_counter = commands.next_counter(party) if counter is None else counter
    apdu = gbcs.build(gbcs.CRA_COMMAND, gbcs_counter, party.eui64, meter, code, payload)
    if authorisation.needs_signature(code) if sign is None else sign:
        signature = party.keys.sign(METER_DS, gbcs.parse(apdu).signed_part)
        apdu = gbcs.build(gbcs.CRA_COMMAND, gbcs_counter, party.eui64, meter, code, payload, signature=signature)
    return user_request(party, requests.COMMAND, apdu)
