"""The device's answers to the commands its pipeline accepted (design.md properties 1-3, "The wire").
Sans-I/O: a Decision and a payload in, the response frame out.

    responder = Responder(device_id, ds_private_key, ka_private_key, anchors, suite="gbcs")
    frame = responder.respond(decision, payload)

A response carries CRA 2, the command's counter (as GBCS and RTDS do: it is how the requester pairs
them), this device as originator, the command's originator as recipient and the command's message code.
How it is protected follows the authorisation table's rule for that code, as in RTDS 4.5.0:

    critical command ("needs a signature")   signed with the device's DS key, no MAC
    any other command                        MAC'd with Z = ECDH(device KA key, requester's KA anchor)
                                             under the device's MAC suite
    "sensitive response"                     the payload is encrypted first (gbcs.encrypt_content) to
                                             the intended recipient: the requester, or the party whose
                                             KA key is passed as recipient_ka (a third party with the
                                             consumer's consent)

Rejected commands get no GBCS answer; the pipeline counts and logs them, and the board reports the
counts. An answer under the command's counter would reuse that counter's per-message MAC key for a
second text (and GMAC must never see one key and IV twice), and a signed answer would make every
replayed frame cost the device a signature: the battery drain a replay flood is after.

Z for each recipient KA key is cached (a device talks to a handful of parties), so a response costs
one key derivation and one MAC, or one signature, not an ECDH.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import authorisation, gbcs
from meterfw.crypto import p256

_MAX_SECRETS = const(8)  # at most one per anchored role that is ever answered
_ANCHOR_KA = const(2)


class Responder:
    def __init__(self, device_id, ds_private_key, ka_private_key, anchors, suite="gbcs"):
        if suite not in ("gbcs", "hmac"):
            raise ValueError("unknown MAC suite")
        self.device_id = bytes(device_id)
        if len(self.device_id) != gbcs.ID_SIZE:
            raise ValueError("device ID must be 8 bytes")
        self._ds_private_key = bytes(ds_private_key)
        self._ka_private_key = bytes(ka_private_key)
        self.anchors = anchors
        self.suite = suite
        self.ecdh_count = 0
        self._secrets = {}  # recipient KA public key -> Z

    def _z(self, ka_public_key):
        z = self._secrets.get(ka_public_key)
        if z is None:
            self.ecdh_count += 1
            z = p256.ecdh(self._ka_private_key, ka_public_key)  # ValueError for a key off the curve
            if len(self._secrets) >= _MAX_SECRETS:
                self._secrets = {}
            self._secrets[ka_public_key] = z
        return z

    def respond(self, decision, payload, recipient_ka=None):
        """The response frame to the accepted command of decision, carrying payload (bytes). ValueError
        for a rejected decision, or when the requester's role has no anchor to answer it with."""
        if not decision.accepted:
            raise ValueError("only accepted commands are answered")
        command = decision.message
        rule = decision.rule
        if decision.consent is not None:  # a third party: its keys are in its consent, not an anchor
            requester_ka = bytes(decision.consent.ka)
        else:
            anchor = self.anchors.anchor(decision.role)
            if anchor is None:
                raise ValueError("no anchor for the requester's role")
            requester_ka = bytes(anchor[_ANCHOR_KA])
        recipient = bytes(command.originator)
        counter = command.counter
        code = command.message_code
        payload = bytes(payload)
        if rule[authorisation.SENSITIVE]:
            ka = requester_ka if recipient_ka is None else bytes(recipient_ka)
            payload = gbcs.encrypt_content(self._z(ka), gbcs.CRA_RESPONSE, counter, self.device_id,
                                           recipient, code, payload)
        apdu = gbcs.build(gbcs.CRA_RESPONSE, counter, self.device_id, recipient, code, payload)
        if rule[authorisation.SIGNED]:
            signature = p256.sign(self._ds_private_key, gbcs.parse(apdu).signed_part)
            return gbcs.build(gbcs.CRA_RESPONSE, counter, self.device_id, recipient, code, payload,
                              signature=signature)
        message = gbcs.parse(apdu)
        return gbcs.wrap(apdu, gbcs.mac_for(message, self._z(requester_ka), self.suite))
