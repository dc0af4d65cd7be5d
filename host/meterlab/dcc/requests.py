"""Service requests: what a DCC user (supplier, network operator, third party) sends to the DCC, signed
with its DCC-facing key (property 5: never the key its meters trust).

    version (1) = 1 || user EUI-64 (8) || request counter (8, big endian) || kind (1)
    || body length (2, big endian) || body || signature (64: ECDSA P-256 / SHA-256, r || s, over all before)

kinds:
    COMMAND   body: a GBCS command APDU from the user to one meter, without the MAC (the DCC's ACB adds
              it); a critical command already carries the user's meter-facing signature
    RELEASE   body: message code (2): route the user's quarantined requests of that code, lift the
              quarantine
    DELETE    body: message code (2): drop them, and lift it

A request counter is above every earlier one of that user (the DCC keeps the last), so a captured
request cannot be sent again.
"""
COMMAND = 1
RELEASE = 2
DELETE = 3
KINDS = {COMMAND: "command", RELEASE: "release", DELETE: "delete"}
VERSION = 1
_HEADER = 20
MAX_BODY = 8192


class RequestError(ValueError):
    pass


class ServiceRequest:
    def __init__(self, user, counter, kind, body, signature=None):
        self.user = bytes(user)
        self.counter = counter
        self.kind = kind
        self.body = bytes(body)
        self.signature = signature

    @property
    def signed_part(self):
        return (bytes((VERSION,)) + self.user + self.counter.to_bytes(8, "big") + bytes((self.kind,))
                + len(self.body).to_bytes(2, "big") + self.body)

    def encode(self):
        if self.signature is None:
            raise RequestError("the request is not signed")
        return self.signed_part + self.signature

    @property
    def message_code(self):
        if self.kind == COMMAND:
            from meterfw import gbcs

            return gbcs.parse(self.body).message_code
        return int.from_bytes(self.body[:2], "big")


def make(user, counter, kind, body, sign):
    """A signed request; sign(data) -> 64-byte r || s with the user's DCC-facing key."""
    if kind not in KINDS:
        raise RequestError(f"unknown request kind {kind}")
    if len(user) != 8 or not 0 <= counter < 1 << 64 or len(body) > MAX_BODY:
        raise RequestError("bad request fields")
    request = ServiceRequest(user, counter, kind, body)
    request.signature = sign(request.signed_part)
    return request.encode()


def parse(data):
    """The ServiceRequest in data; RequestError with a reason for anything malformed."""
    data = bytes(data)
    if len(data) < _HEADER + 64:
        raise RequestError("request truncated")
    if data[0] != VERSION:
        raise RequestError(f"unsupported request version {data[0]}")
    kind = data[17]
    if kind not in KINDS:
        raise RequestError(f"unknown request kind {kind}")
    length = int.from_bytes(data[18:20], "big")
    if length > MAX_BODY or len(data) != _HEADER + length + 64:
        raise RequestError("request length does not match its body")
    body = data[_HEADER:_HEADER + length]
    if kind != COMMAND and len(body) != 2:
        raise RequestError("a release or delete names one message code (2 bytes)")
    return ServiceRequest(data[1:9], int.from_bytes(data[9:17], "big"), kind, body, data[-64:])
