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
    6. the ACB's MAC, then the router (the CSP) takes the frame to the meter and brings back its answer

State lives in SQLite beside the device register (dcc.sqlite): the users' last counters, which supplier
owns which meter, the quarantine and the alarms; the audit log (audit.py) is its own file. A restart
loses nothing: the anomaly windows are rebuilt from the audit log's routed requests.
"""
import json
import sqlite3
import time

from cryptography import x509 as pyca_x509
from cryptography.exceptions import InvalidSignature

from meterfw import authorisation, gbcs, ownership, roles
from meterlab.dcc import requests
from meterlab.dcc.anomaly import AnomalyDetector
from meterlab.dcc.audit import AuditLog
from meterlab.dcc.register import DeviceRegister
from meterlab.parties import commands
from meterlab.smki import certificates
from meterlab.smki.keystore import verify
from meterlab.smki.parties import DCC_DS, METER_DS, all_parties, dcc_parties

ROUTED, QUARANTINED, REFUSED, RELEASED, DELETED = "routed", "quarantined", "refused", "released", "deleted"

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_counters (user TEXT PRIMARY KEY, counter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ownership (meter TEXT PRIMARY KEY, supplier TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, user TEXT NOT NULL, code INTEGER NOT NULL,
                                       meter TEXT NOT NULL, request BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine_state (user TEXT NOT NULL, code INTEGER NOT NULL,
                                             PRIMARY KEY (user, code));
CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY, at REAL NOT NULL, user TEXT NOT NULL,
                                   code INTEGER NOT NULL, text TEXT NOT NULL);
"""
EVERYONE = "*"  # quarantine_state's user for a code quarantined for all users


class Result:
    def __init__(self, status, detail="", reason=None, response=None):
        self.status = status
        self.detail = detail
        self.reason = reason  # the meter's pipeline reason, when routed
        self.response = response  # the meter's response frame, when it gave one

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
        self._db.executescript(STATE_SCHEMA)
        self.audit = AuditLog(folder, clock=clock)
        self.parties = dcc_parties(smki, passphrase)
        self.acb = self.parties[roles.ACCESS_CONTROL_BROKER]
        self.users = self._load_users(passphrase)
        self.detector = AnomalyDetector(thresholds)
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
        row = self._db.execute("SELECT supplier FROM ownership WHERE meter = ?", (meter.hex(),)).fetchone()
        return bytes.fromhex(row[0]) if row else None

    def _set_owner(self, meter, supplier):
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO ownership VALUES (?, ?)", (meter.hex(), supplier.hex()))

    def change_supplier(self, meter, new_supplier):
        """CS02b supplierByTransCoS, originated by the DCC's transitional CoS: the meter's new owner."""
        device = self.register.device(meter)
        if device is None:
            return Result(REFUSED, "meter not registered")
        frame = commands.take_ownership(self.smki, device, new_supplier, self.parties[roles.TRANSITIONAL_COS],
                                        self.acb)
        reason, response = self.router(device, frame)
        self.audit.append("dcc transitional CoS", "change of supplier",
                          {"meter": meter.hex(), "supplier": new_supplier.eui64.hex(), "meter_reason": reason})
        if reason == 0:
            commands.check_response(device, frame, response)
            self._set_owner(meter, new_supplier.eui64)
            return Result(ROUTED, "new owner", reason, response)
        return Result(REFUSED, "the meter refused the change of supplier", reason, response)

    def install_by_recovery(self, meter, party, role):
        """CS02b anyExceptAbnormalRootByRecovery: the DCC's recovery party anchors party as role on the
        meter (a network operator's anchor, or any anchor after a compromise)."""
        device = self.register.device(meter)
        if device is None:
            return Result(REFUSED, "meter not registered")
        frame = commands.recover(self.smki, device, self.parties[roles.RECOVERY], party, role, self.acb)
        reason, response = self.router(device, frame)
        self.audit.append("dcc recovery", "install anchor",
                          {"meter": meter.hex(), "party": party.eui64.hex(), "role": role, "meter_reason": reason})
        if reason == 0:
            commands.check_response(device, frame, response)
            if role == roles.SUPPLIER:
                self._set_owner(meter, party.eui64)
            return Result(ROUTED, "anchor installed", reason, response)
        return Result(REFUSED, "the meter refused the new anchor", reason, response)

    # --------------------------------------------------------------------------------- requests

    def _refuse(self, user, detail, **fields):
        self.audit.append(user, "refuse", {"why": detail, **fields})
        return Result(REFUSED, detail)

    def submit(self, data):
        """The Result of one service request (bytes)."""
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
        row = self._db.execute("SELECT counter FROM user_counters WHERE user = ?", (user_name,)).fetchone()
        if row is not None and request.counter <= row[0]:
            return self._refuse(user_name, "replayed request", counter=request.counter)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO user_counters VALUES (?, ?)", (user_name, request.counter))
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
            return self._refuse(user_name, f"a {roles.NAMES[party.role]} may not send 0x{code:04X}", **fields)
        if authorisation.needs_signature(code):
            if not verify(party.keys.public_key(METER_DS), command.signed_part, command.signature):
                return self._refuse(user_name, "critical command without the user's valid signature", **fields)
        meter = bytes(command.recipient)
        device = self.register.device(meter)
        if device is None:
            return self._refuse(user_name, "meter not registered", **fields)
        if party.role == roles.SUPPLIER and self.owner(meter) != party.eui64:
            return self._refuse(user_name, "the meter is owned by another supplier", **fields)
        verdict = self.detector.check(user_name, code, self.clock())
        if not verdict.routed:
            return self._quarantine(request, user_name, code, meter, verdict)
        return self._route(user_name, device, command, fields)

    def _quarantine(self, request, user_name, code, meter, verdict):
        now = self.clock()
        with self._db:
            self._db.execute("INSERT INTO quarantine (user, code, meter, request, at) VALUES (?, ?, ?, ?, ?)",
                             (user_name, code, meter.hex(), request.encode(), now))
            if (user_name, code) in self.detector.quarantined_users:
                self._db.execute("INSERT OR IGNORE INTO quarantine_state VALUES (?, ?)", (user_name, code))
            if code in self.detector.quarantined_codes:
                self._db.execute("INSERT OR IGNORE INTO quarantine_state VALUES (?, ?)", (EVERYONE, code))
            if verdict.alarm:
                self._db.execute("INSERT INTO alarms (at, user, code, text) VALUES (?, ?, ?, ?)",
                                 (now, user_name, code, verdict.alarm))
        if verdict.alarm:
            self.audit.append(user_name, "alarm", {"code": code, "text": verdict.alarm})
        self.audit.append(user_name, "quarantine", {"code": code, "meter": meter.hex()})
        return Result(QUARANTINED, verdict.alarm or "held in quarantine")

    def _route(self, user_name, device, command, fields):
        from meterlab.csp import CspRefused

        frame = gbcs.wrap(command.apdu, commands.acb_mac(self.acb, device, command.apdu))
        try:
            reason, response = self.router(device, frame)
        except CspRefused as error:
            self.audit.append(user_name, "csp refused", {**fields, "why": str(error)})
            return Result(REFUSED, f"the CSP refused: {error}")
        self.audit.append(user_name, "route", {**fields, "meter_reason": reason})
        if reason == 0 and command.message_code == authorisation.CREDENTIALS_SUPPLIER_BY_SUPPLIER:
            fields_ = ownership.decode_payload(command.payload)
            self._set_owner(bytes(command.recipient), certificates.describe(fields_[3])["eui64"])
        return Result(ROUTED, "", reason, response)

    def _release_or_delete(self, request, party):
        user_name = request.user.hex()
        code = request.message_code
        rows = self._db.execute("SELECT id, request FROM quarantine WHERE user = ? AND code = ? ORDER BY id",
                                (user_name, code)).fetchall()
        with self._db:
            self._db.execute("DELETE FROM quarantine WHERE user = ? AND code = ?", (user_name, code))
            self._db.execute("DELETE FROM quarantine_state WHERE user = ? AND code = ?", (user_name, code))
        self.detector.release(user_name, code)
        action = "release" if request.kind == requests.RELEASE else "delete"
        self.audit.append(user_name, action, {"code": code, "requests": len(rows)})
        results = []
        if request.kind == requests.RELEASE:
            for _, held in rows:  # through every check again, anomaly detection included
                held_request = requests.parse(held)
                results.append(self._command(held_request, party))
        return Result(RELEASED if request.kind == requests.RELEASE else DELETED,
                      f"{action}d {len(rows)} quarantined requests", response=results)

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


def user_request(party, kind, body, counter=None):
    """A service request from party (a Party), signed with its DCC-facing key."""
    if counter is None:
        counter = commands.next_counter(party)
    return requests.make(party.eui64, counter, kind, body, lambda data: party.keys.sign(DCC_DS, data))


def command_request(party, meter, code, payload, counter=None, sign=None):
    """A COMMAND service request: party's command APDU to meter (signed with its meter-facing key when
    critical), inside a request signed with its DCC-facing key."""
    gbcs_counter = commands.next_counter(party) if counter is None else counter
    apdu = gbcs.build(gbcs.CRA_COMMAND, gbcs_counter, party.eui64, meter, code, payload)
    if authorisation.needs_signature(code) if sign is None else sign:
        signature = party.keys.sign(METER_DS, gbcs.parse(apdu).signed_part)
        apdu = gbcs.build(gbcs.CRA_COMMAND, gbcs_counter, party.eui64, meter, code, payload, signature=signature)
    return user_request(party, requests.COMMAND, apdu)
