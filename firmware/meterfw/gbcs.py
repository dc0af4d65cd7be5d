"""GBCS message envelope: the general signing APDU, optionally inside the GBCS MAC header. Sans-I/O.

Two framings parse (see design.md, "The wire"):

    MAC'd frame:  DD 00 00 00 00 00 00 || len (BER) || 11 00 00 00 00 || general signing APDU || MAC (12)
    bare APDU:    DF || 09 || CRA || counter (8) || 08 || originator (8) || 08 || recipient (8)
                  || date-time (00, or 0C + 12 bytes) || other-info len (BER) || message code (2) || extra
                  || content len (BER) || payload || signature len (00 or 40) || signature (r || s)

where len counts everything after it (security header, APDU and MAC). CRA is 1 command, 2 response,
3 alert. parse() checks every length against the frame, rejects trailing bytes and non-minimal BER
lengths (so every accepted frame has exactly one encoding) and raises nothing but FrameError.

Re-encoding: Message.encode() (or build(...) with the same fields) gives back the parsed bytes exactly.
New frames: build(...) without a MAC gives the bare APDU; parse it, sign message.signed_part, build again
with the signature; then wrap(message.apdu, mac_for(message, z)) gives the MAC'd frame.

MACs: mac_key(z, message) = KDF(Z, 60857406080300 || originator || 09 || CRA || counter || recipient),
suite "gbcs" = AES-128-GMAC (IV = originator || 00000000, AAD = 11 00 00 00 00 00 || APDU, 12 bytes),
suite "hmac" = HMAC-SHA256 with the same key over the same AAD, cut to 12 bytes.

Sensitive content (design.md property 3): encrypt_content() turns a payload into a DER OCTET STRING of
ciphertext || tag (12) with AES-128-GCM (the recipient opens it with meterfw.gbcs_host.decrypt_content) under the content key, the same KDF with CRA 04 in place of the message's CRA, so only
the holder of Z (the sender and the one recipient) can read it. The key is new for every (originator,
counter, recipient), and the IV (originator || 000000 || CRA) keeps a response and an alert that happen
to share a counter apart: GCM must never see one key and IV twice. The caller's duty that remains: never
encrypt two different payloads for one message (a device answers each command counter once).
"""

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


from meterfw import der
from meterfw.crypto import gcm, kdf, p256
from meterfw.crypto import hmac as _hmac

CRA_COMMAND = const(1)
CRA_RESPONSE = const(2)
CRA_ALERT = const(3)
CRA_ENCRYPTION = const(4)  # stands in for the CRA in the KDF of a content key

MAC_SIZE = const(12)
SIGNATURE_SIZE = const(64)
ID_SIZE = const(8)
DATE_TIME_SIZE = const(12)
MAX_FRAME = const(8192)  # the largest frame parse() accepts; RTDS 4.5.0 peaks well under 2 KiB
MAX_LENGTH = const(65535)  # the largest BER length encoded (81 nn, 82 nnnn)

_TAG_MAC_HEADER = const(0xDD)
_TAG_SIGNING = const(0xDF)
_TRANSACTION_ID_SIZE = const(9)
_MAC_HEADER_ZEROS = b"\x00\x00\x00\x00\x00\x00"
_SECURITY_HEADER = b"\x11\x00\x00\x00\x00"
_AAD_PREFIX = b"\x11\x00\x00\x00\x00\x00"
_KDF_ALGORITHM_ID = b"\x60\x85\x74\x06\x08\x03\x00"
_IV_SUFFIX = b"\x00\x00\x00\x00"
_SUITES = ("gbcs", "hmac")


class FrameError(ValueError):
    """A frame that is not a well-formed GBCS message; reason says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Message:
    """One parsed GBCS message. Fields as in the module doc; date_time, signature and mac are None when
    absent. apdu: the general signing APDU from DF through the signature; signed_part: the APDU without
    its DF tag through the end of the payload (what the signature covers)."""

    def __init__(self, cra, counter, originator, recipient, date_time, message_code, other_info_extra,
                 payload, signature, mac, apdu, signed_part, precommand=False):
        self.cra = cra
        self.counter = counter
        self.originator = originator
        self.recipient = recipient
        self.date_time = date_time
        self.message_code = message_code
        self.other_info_extra = other_info_extra
        self.payload = payload
        self.signature = signature
        self.mac = mac
        self.apdu = apdu
        self.signed_part = signed_part
        self.precommand = precommand

    def encode(self):
        """The frame again, byte for byte, rebuilt from the fields."""
        return build(self.cra, self.counter, self.originator, self.recipient, self.message_code,
                     self.payload, self.date_time, self.other_info_extra, self.signature, self.mac,
                     self.precommand)


# ---------------------------------------------------------------------------------------------- parse

def _need(i, count, end, what):
    if i + count > end:
        raise FrameError("truncated " + what)


def _length(buf, i, end, what):
    # A BER definite length in its minimal form: (value, index after it).
    _need(i, 1, end, what + " length")
    first = buf[i]
    if first < 0x80:
        return first, i + 1
    if first == 0x81:
        _need(i, 2, end, what + " length")
        value = buf[i + 1]
        if value < 0x80:
            raise FrameError("non-minimal " + what + " length")
        return value, i + 2
    if first == 0x82:
        _need(i, 3, end, what + " length")
        value = (buf[i + 1] << 8) | buf[i + 2]
        if value < 0x100:
            raise FrameError("non-minimal " + what + " length")
        return value, i + 3
    raise FrameError("unsupported " + what + " length form")


def _parse_apdu(buf, start, end, mac, precommand=False):
    i = start
    _need(i, 3, end, "general signing header")
    if buf[i] != _TAG_SIGNING:
        raise FrameError("unsupported APDU tag")
    if buf[i + 1] != _TRANSACTION_ID_SIZE:
        raise FrameError("unsupported transaction ID length")
    cra = buf[i + 2]
    if cra < CRA_COMMAND or cra > CRA_ALERT:
        raise FrameError("unsupported CRA flag")
    _need(i, 11, end, "originator counter")
    counter = int.from_bytes(buf[i + 3:i + 11], "big")
    i += 11
    _need(i, 1 + ID_SIZE, end, "originator ID")
    if buf[i] != ID_SIZE:
        raise FrameError("bad originator ID length")
    originator = buf[i + 1:i + 1 + ID_SIZE]
    i += 1 + ID_SIZE
    _need(i, 1 + ID_SIZE, end, "recipient ID")
    if buf[i] != ID_SIZE:
        raise FrameError("bad recipient ID length")
    recipient = buf[i + 1:i + 1 + ID_SIZE]
    i += 1 + ID_SIZE
    _need(i, 1, end, "date-time")
    if buf[i] == 0:
        date_time = None
        i += 1
    elif buf[i] == DATE_TIME_SIZE:
        _need(i, 1 + DATE_TIME_SIZE, end, "date-time")
        date_time = buf[i + 1:i + 1 + DATE_TIME_SIZE]
        i += 1 + DATE_TIME_SIZE
    else:
        raise FrameError("bad date-time length")
    other_length, i = _length(buf, i, end, "other-info")
    if other_length < 2:
        raise FrameError("other-info without a message code")
    _need(i, other_length, end, "other-info")
    message_code = (buf[i] << 8) | buf[i + 1]
    other_info_extra = buf[i + 2:i + other_length]
    i += other_length
    content_length, i = _length(buf, i, end, "content")
    _need(i, content_length, end, "content")
    payload = buf[i:i + content_length]
    i += content_length
    signed_end = i
    if precommand:
        if i != end:
            raise FrameError("trailing bytes after the pre-command payload")
        return Message(cra, counter, originator, recipient, date_time, message_code, other_info_extra,
                       payload, None, None, buf[start:end], buf[start + 1:end], True)
    _need(i, 1, end, "signature length")
    signature_length = buf[i]
    i += 1
    if signature_length == 0:
        signature = None
    elif signature_length == SIGNATURE_SIZE:
        _need(i, SIGNATURE_SIZE, end, "signature")
        signature = buf[i:i + SIGNATURE_SIZE]
        i += SIGNATURE_SIZE
    else:
        raise FrameError("bad signature length")
    if i != end:
        raise FrameError("trailing bytes after the signature")
    return Message(cra, counter, originator, recipient, date_time, message_code, other_info_extra,
                   payload, signature, mac, buf[start:end], buf[start + 1:signed_end])


def parse(frame, precommand=False):
    """The Message in frame (bytes-like): a MAC'd frame or a bare general signing APDU. FrameError
    (with .reason) for anything else; never any other exception.

    precommand=True parses a pre-command instead: a bare command APDU as a DCC user hands it to the DCC
    for signing, which ends with the payload (no signature length byte, no MAC); message.precommand is
    then True. The two forms are kept apart because a pre-command is a prefix of the signed command."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise FrameError("frame must be bytes")
    buf = bytes(frame)
    n = len(buf)
    if n == 0:
        raise FrameError("truncated frame tag")
    if n > MAX_FRAME:
        raise FrameError("frame too long")
    tag = buf[0]
    if precommand:
        if tag != _TAG_SIGNING:
            raise FrameError("a pre-command is a bare general signing APDU")
        message = _parse_apdu(buf, 0, n, None, True)
        if message.cra != CRA_COMMAND:
            raise FrameError("a pre-command must be a command")
        return message
    if tag == _TAG_SIGNING:
        return _parse_apdu(buf, 0, n, None)
    if tag != _TAG_MAC_HEADER:
        raise FrameError("unsupported frame tag")
    _need(0, 7, n, "MAC header")
    if buf[1:7] != _MAC_HEADER_ZEROS:
        raise FrameError("unsupported MAC header")
    length, i = _length(buf, 7, n, "MAC header")
    if i + length > n:
        raise FrameError("truncated MAC'd frame")
    if i + length < n:
        raise FrameError("trailing bytes after the MAC")
    _need(i, len(_SECURITY_HEADER) + MAC_SIZE, n, "MAC'd frame")
    if buf[i:i + len(_SECURITY_HEADER)] != _SECURITY_HEADER:
        raise FrameError("unsupported security header")
    return _parse_apdu(buf, i + len(_SECURITY_HEADER), n - MAC_SIZE, buf[n - MAC_SIZE:])


# ---------------------------------------------------------------------------------------------- build

def _encode_length(value):
    if value < 0 or value > MAX_LENGTH:
        raise ValueError("length out of range")
    if value < 0x80:
        return bytes((value,))
    if value < 0x100:
        return bytes((0x81, value))
    return bytes((0x82, value >> 8, value & 0xFF))


def _check_bytes(value, size, what):
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != size:
        raise ValueError("%s must be %d bytes" % (what, size))
    return bytes(value)


def build(cra, counter, originator, recipient, message_code, payload, date_time=None,
          other_info_extra=b"", signature=None, mac=None, precommand=False):
    """The frame for these fields: the bare general signing APDU when mac is None, else the MAC'd frame
    carrying mac (12 bytes); with precommand=True the pre-command form (a command APDU ending with the
    payload, no signature, no MAC). The inverse of parse(): parse(build(...)) has these fields, and
    build(fields of parse(frame)) == frame. ValueError for a field out of range."""
    if cra < CRA_COMMAND or cra > CRA_ALERT:
        raise ValueError("CRA must be 1, 2 or 3")
    if counter < 0 or counter >> 64:
        raise ValueError("counter must fit 8 bytes")
    if message_code < 0 or message_code > 0xFFFF:
        raise ValueError("message code must fit 2 bytes")
    parts = [b"\xdf\x09", bytes((cra,)), counter.to_bytes(8, "big"),
             b"\x08", _check_bytes(originator, ID_SIZE, "originator"),
             b"\x08", _check_bytes(recipient, ID_SIZE, "recipient")]
    if date_time is None:
        parts.append(b"\x00")
    else:
        parts.append(b"\x0c")
        parts.append(_check_bytes(date_time, DATE_TIME_SIZE, "date-time"))
    other_info_extra = bytes(other_info_extra)
    payload = bytes(payload)
    parts.append(_encode_length(2 + len(other_info_extra)))
    parts.append(bytes((message_code >> 8, message_code & 0xFF)))
    parts.append(other_info_extra)
    parts.append(_encode_length(len(payload)))
    parts.append(payload)
    if precommand:
        if cra != CRA_COMMAND or signature is not None or mac is not None:
            raise ValueError("a pre-command is an unsigned command without a MAC")
        return b"".join(parts)
    if signature is None:
        parts.append(b"\x00")
    else:
        parts.append(b"\x40")
        parts.append(_check_bytes(signature, SIGNATURE_SIZE, "signature"))
    apdu = b"".join(parts)
    if mac is None:
        return apdu
    return wrap(apdu, mac)


def wrap(apdu, mac):
    """The MAC'd frame around a general signing APDU (bytes) and its 12-byte MAC."""
    mac = _check_bytes(mac, MAC_SIZE, "MAC")
    apdu = bytes(apdu)
    return b"".join((b"\xdd", _MAC_HEADER_ZEROS,
                     _encode_length(len(_SECURITY_HEADER) + len(apdu) + MAC_SIZE),
                     _SECURITY_HEADER, apdu, mac))


# ----------------------------------------------------------------------------------------- security

def _key(z, originator, cra, counter, recipient):
    other_info = b"".join((_KDF_ALGORITHM_ID, originator, b"\x09", bytes((cra,)),
                           counter.to_bytes(8, "big"), recipient))
    return kdf.gbcs(z, other_info, 16)


def mac_key(z, message):
    """The message's 16-byte MAC key from the static ECDH secret z (32 bytes)."""
    return _key(z, message.originator, message.cra, message.counter, message.recipient)


def content_key(z, originator, counter, recipient):
    """The 16-byte AES-GCM key for sensitive content from originator to recipient at counter."""
    return _key(z, originator, CRA_ENCRYPTION, counter, recipient)


def content_iv(originator, cra):
    return bytes(originator) + b"\x00\x00\x00" + bytes((cra,))


def encrypt_content(z, cra, counter, originator, recipient, message_code, plaintext):
    """The encrypted payload of the message with these fields: a DER OCTET STRING (meterfw.der) holding
    ciphertext || tag (12 bytes) of plaintext, so it is told from a clear payload (a SEQUENCE) by its
    first byte. The message code is authenticated with it, so content cannot move to another kind of
    message."""
    originator = _check_bytes(originator, ID_SIZE, "originator")
    recipient = _check_bytes(recipient, ID_SIZE, "recipient")
    key = content_key(z, originator, counter, recipient)
    ciphertext, tag = gcm.encrypt(key, content_iv(originator, cra), bytes(plaintext),
                                  bytes((message_code >> 8, message_code & 0xFF)), MAC_SIZE)
    return der.octet_string(ciphertext, tag)


def _check_suite(suite):
    if suite not in _SUITES:
        raise ValueError("unknown MAC suite")


def mac_inputs(z, message):
    """(key, IV, AAD) of the message's MAC: what either suite computes over (the IV is GMAC's)."""
    return mac_key(z, message), bytes(message.originator) + _IV_SUFFIX, _AAD_PREFIX + bytes(message.apdu)


def mac_for(message, z, suite="gbcs"):
    """The 12-byte MAC of message.apdu under suite ("gbcs" or "hmac"); ValueError for another suite."""
    _check_suite(suite)
    key, iv, aad = mac_inputs(z, message)
    if suite == "gbcs":
        return gcm.gmac(key, iv, aad, MAC_SIZE)
    return _hmac.hmac_sha256(key, aad)[:MAC_SIZE]


def verify_mac(message, z, suite="gbcs"):
    """True if the message carries a MAC and it is right for z; ValueError for an unknown suite."""
    _check_suite(suite)
    if message.mac is None:
        return False
    return _hmac.equal(mac_for(message, z, suite), message.mac)


def verify_signature(message, public_key):
    """True if the message carries a signature that public_key (64 bytes x || y) made over signed_part."""
    if message.signature is None:
        return False
    return p256.verify(public_key, message.signed_part, message.signature)
