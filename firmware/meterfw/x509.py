"""A compact X.509 reader for exactly one certificate profile: the SMKI profile of GB smart metering.

A meter learns who may command it from certificates (design.md, "Identities: SMKI and commissioning"):
an organisation's DS or KA certificate issued by the organisation CA, a device's issued by a device CA,
both under the SMKI root, whose public key the meter holds as its trust anchor. A general X.509 and
ASN.1 library is far too big for a meter and accepts far more than it needs to, so this module reads
that one profile and rejects everything else (fail closed):

    Certificate    SEQUENCE { tbsCertificate, ecdsa-with-SHA256 (no parameters),
                              BIT STRING (0 unused bits) { SEQUENCE { r INTEGER, s INTEGER } } }
    tbsCertificate version [0] EXPLICIT 2 (v3), serialNumber (positive, at most 20 bytes),
                   ecdsa-with-SHA256, issuer Name, validity (UTCTime or GeneralizedTime, kept raw),
                   subject Name (empty for a device), subjectPublicKeyInfo (id-ecPublicKey, prime256v1,
                   uncompressed point on the curve), extensions [3] (required)
    Name           SEQUENCE OF SET of exactly one attribute. Read: commonName (PrintableString or
                   UTF8String), organizationalUnitName (the GBCS RemotePartyRole as two hex digits,
                   "02" supplier, "07" issuing authority), x500UniqueIdentifier (BIT STRING, 0 unused
                   bits, the 8-byte EUI-64). Other attributes are checked for form and ignored.
    Extensions     keyUsage, subjectKeyIdentifier, authorityKeyIdentifier ([0] keyIdentifier),
                   subjectAltName (otherName hardwareModuleName: hwSerialNum is the device's EUI-64),
                   basicConstraints, certificatePolicies. Any other critical extension: rejected
                   (RFC 5280); other non-critical ones: ignored; any extension twice: rejected.

Fail closed within the profile too: an organizationalUnitName that is not two hex digits, an
x500UniqueIdentifier or hwSerialNum that is not 8 bytes, a repeated name attribute, two different
EUI-64s (x500UniqueIdentifier and hardwareModuleName), a second hardwareModuleName, a pathLen without
cA, an empty issuer: all rejected, in the issuer's Name as in the subject's.

Everything must be DER: one-byte tags, definite and minimal lengths of at most two bytes, every length
checked against its container, no trailing bytes anywhere, BOOLEAN TRUE as FF, DEFAULT values omitted,
minimal INTEGERs and OIDs, named bit strings without trailing zero bits. So a certificate has exactly
one encoding, and a child's issuer can be compared with its parent's subject byte for byte. One
tolerance: r and s of the signature may carry a superfluous leading 00 (two RTDS 4.5.0 device
certificates do); the signature is not part of what it signs, so this opens nothing.

Bounds: a certificate over MAX_CERTIFICATE bytes is rejected before any parsing. parse() reads by index
arithmetic into the one bytes object it keeps (the input itself when it is bytes); the fields are small
slices of it. tbs (what the signature covers) is sliced only when asked for, so a kept Certificate costs
its DER and its small fields, not twice its size.

parse() raises CertificateError and nothing else, for any input; reason says why. Validity dates are
kept but never checked here: a meter may not know the time (it has no trusted clock until the DCC has
told it one), and a certificate check that depended on it would fail open or fail everything. The
caller checks not_before and not_after where it has a trusted time.

verify_chain() checks the cheap things first (names, CA flags, key usage, path lengths, key
identifiers) for every link, then the signatures from the leaf upwards, then the topmost certificate's
signature against the root public key (the device's trust anchor). Reasons:

    "chain too long", "not a certificate", "issuer name does not match", "issuer is not a CA",
    "issuer may not sign certificates", "path length exceeded", "key identifier does not match",
    "bad root key", "bad signature"
"""

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


from meterfw.crypto import p256

MAX_CERTIFICATE = const(1200)
MAX_INTERMEDIATES = const(2)

# keyUsage in RFC 5280 bit numbering: bit n is 1 << n (BIT STRING bit 0 is the first byte's MSB).
KU_DIGITAL_SIGNATURE = const(0x01)
KU_KEY_AGREEMENT = const(0x10)
KU_KEY_CERT_SIGN = const(0x20)
KU_CRL_SIGN = const(0x40)

_SEQUENCE = const(0x30)
_SET = const(0x31)
_INTEGER = const(0x02)
_BIT_STRING = const(0x03)
_OCTET_STRING = const(0x04)
_OID = const(0x06)
_BOOLEAN = const(0x01)
_UTF8_STRING = const(0x0C)
_PRINTABLE_STRING = const(0x13)
_UTC_TIME = const(0x17)
_GENERALIZED_TIME = const(0x18)
_EXTENSIONS_TAG = const(0xA3)
_OTHER_NAME = const(0xA0)
_EXPLICIT_0 = const(0xA0)
_KEY_ID = const(0x80)  # authorityKeyIdentifier [0] IMPLICIT
_AKI_ISSUER = const(0xA1)
_AKI_SERIAL = const(0x82)
_MAX_SERIAL = const(20)
_ID_SIZE = const(8)
_KEY_SIZE = const(64)
_HALF = const(32)

# Known extensions, one bit each (duplicate detection).
_X_KU = const(1)
_X_SKI = const(2)
_X_AKI = const(4)
_X_SAN = const(8)
_X_BC = const(16)
_X_CP = const(32)

# Name attributes read, one bit each (a repeated one is ambiguous: rejected).
_A_CN = const(1)
_A_OU = const(2)
_A_UID = const(4)

_VERSION_3 = b"\xa0\x03\x02\x01\x02"
_ECDSA_SHA256 = b"\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"
_SPKI_PREFIX = (b"\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"
                b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00\x04")
_OID_CN = b"\x55\x04\x03"
_OID_OU = b"\x55\x04\x0b"
_OID_UID = b"\x55\x04\x2d"
_OID_KU = b"\x55\x1d\x0f"
_OID_SKI = b"\x55\x1d\x0e"
_OID_AKI = b"\x55\x1d\x23"
_OID_SAN = b"\x55\x1d\x11"
_OID_BC = b"\x55\x1d\x13"
_OID_CP = b"\x55\x1d\x20"
_OID_HW_MODULE_NAME = b"\x2b\x06\x01\x05\x05\x07\x08\x04"
_PRINTABLE_EXTRA = (0x20, 0x27, 0x28, 0x29, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x3A, 0x3D, 0x3F)  # ' ()+,-./:=?


class CertificateError(ValueError):
    """A certificate that is not well-formed within the profile, or a chain that does not verify;
    reason says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Certificate:
    """One parsed certificate. der: the certificate; tbs: the DER of tbsCertificate (what the signature
    covers); serial: the serial number INTEGER's content; issuer, subject: raw Name DER; not_before,
    not_after: raw time content (13 bytes UTCTime or 15 bytes GeneralizedTime, ending in Z);
    common_name: str or None; role: the GBCS RemotePartyRole from the subject's OU, or None; entity_id:
    the 8-byte EUI-64 from x500UniqueIdentifier, else from the SAN's hardwareModuleName, or None;
    public_key: 64 bytes x || y; key_usage: RFC 5280 bit mask (KU_*), 0 when absent; subject_key_id,
    authority_key_id: bytes or None; is_ca, path_length: from basicConstraints (False, None when
    absent); policy: the first certificate policy's OID content bytes, or None; signature: 64 bytes
    r || s."""

    def __init__(self, der):
        self.der = der
        self._tbs_end = 0
        self.serial = b""
        self.issuer = b""
        self.subject = b""
        self.not_before = b""
        self.not_after = b""
        self.common_name = None
        self.role = None
        self.entity_id = None
        self.public_key = b""
        self.key_usage = 0
        self.subject_key_id = None
        self.authority_key_id = None
        self.is_ca = False
        self.path_length = None
        self.policy = None
        self.signature = b""

    @property
    def tbs(self):
        # The outer SEQUENCE's header is 4 bytes (30 82 nnnn) or 3 (30 81 nn) or 2: tbs starts after it.
        der = self.der
        start = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
        return der[start:self._tbs_end]


def _fail(reason):
    raise CertificateError(reason)


def _header(der, pos, end):
    # (tag, content start, content end) of the element at pos, which must end by end.
    if end - pos < 2:
        _fail("truncated")
    tag = der[pos]
    if tag & 0x1F == 0x1F:
        _fail("multi-byte tag")
    n = der[pos + 1]
    pos += 2
    if n & 0x80:
        if n == 0x81:
            if pos >= end:
                _fail("truncated")
            n = der[pos]
            pos += 1
            if n < 0x80:
                _fail("length not minimal")
        elif n == 0x82:
            if end - pos < 2:
                _fail("truncated")
            n = der[pos] << 8 | der[pos + 1]
            pos += 2
            if n < 0x100:
                _fail("length not minimal")
        elif n == 0x80:
            _fail("indefinite length")
        else:
            _fail("length too long")
    if n > end - pos:
        _fail("truncated")
    return tag, pos, pos + n


def _expect(der, pos, end, tag, what):
    # (content start, content end) of the element at pos, which must have tag.
    found, start, stop = _header(der, pos, end)
    if found != tag:
        _fail("expected " + what)
    return start, stop


def _whole(der, pos, end, tag, what):
    # The element at pos must have tag and fill [pos, end) exactly.
    start, stop = _expect(der, pos, end, tag, what)
    if stop != end:
        _fail("trailing bytes after " + what)
    return start, stop


def _check_oid(der, start, stop):
    # DER OBJECT IDENTIFIER content: not empty, every subidentifier minimal, the last one complete.
    if start >= stop or der[stop - 1] & 0x80:
        _fail("malformed OID")
    first = True
    for i in range(start, stop):
        b = der[i]
        if first and b == 0x80:
            _fail("malformed OID")
        first = not b & 0x80


def _check_true(der, pos, end):
    # A DER BOOLEAN that must be TRUE (FALSE is the DEFAULT and so never encoded); its end.
    start, stop = _expect(der, pos, end, _BOOLEAN, "BOOLEAN")
    if stop - start != 1 or der[start] != 0xFF:
        _fail("BOOLEAN not DER TRUE")
    return stop


def _unsigned(der, start, stop, what):
    # Check a non-negative minimal INTEGER content; (first significant byte, stop) without a leading 00.
    if start >= stop:
        _fail("empty " + what)
    if der[start] & 0x80:
        _fail("negative " + what)
    if der[start] == 0 and stop - start > 1:
        if der[start + 1] < 0x80:
            _fail(what + " not minimal")
        start += 1
    return start


def _text(der, start, stop, tag):
    if start >= stop:
        _fail("empty string")
    if tag == _PRINTABLE_STRING:
        for i in range(start, stop):
            b = der[i]
            if not (0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A
                    or b in _PRINTABLE_EXTRA):
                _fail("bad PrintableString")
    elif tag != _UTF8_STRING:
        _fail("unsupported string type")
    try:
        return str(der[start:stop], "utf-8")
    except (UnicodeError, ValueError):
        _fail("bad UTF8String")


def _hex_digit(b):
    if 0x30 <= b <= 0x39:
        return b - 0x30
    b |= 0x20
    if 0x61 <= b <= 0x66:
        return b - 0x57
    _fail("role is not two hex digits")


def _name(der, pos, end, cert):
    # Check a Name's content [pos, end); with cert, keep the attributes read into it. Returns the
    # x500UniqueIdentifier (8 bytes) or None.
    seen = 0
    uid = None
    while pos < end:
        set_start, set_end = _expect(der, pos, end, _SET, "RDN")
        start, stop = _whole(der, set_start, set_end, _SEQUENCE, "attribute")
        oid_start, oid_end = _expect(der, start, stop, _OID, "attribute type")
        _check_oid(der, oid_start, oid_end)
        tag, value, value_end = _header(der, oid_end, stop)
        if value_end != stop:
            _fail("trailing bytes after attribute")
        oid = der[oid_start:oid_end]
        bit = 0
        if oid == _OID_CN:
            bit = _A_CN
            text = _text(der, value, value_end, tag)
            if cert is not None:
                cert.common_name = text
        elif oid == _OID_OU:
            bit = _A_OU
            _text(der, value, value_end, tag)
            if value_end - value != 2:
                _fail("role is not two hex digits")
            role = _hex_digit(der[value]) << 4 | _hex_digit(der[value + 1])
            if cert is not None:
                cert.role = role
        elif oid == _OID_UID:
            bit = _A_UID
            if tag != _BIT_STRING or value_end - value != _ID_SIZE + 1 or der[value] != 0:
                _fail("x500UniqueIdentifier is not an 8-byte BIT STRING")
            uid = der[value + 1:value_end]
        if seen & bit:
            _fail("duplicate name attribute")
        seen |= bit
        pos = set_end
    return uid


def _time(der, pos, end):
    # (start, stop) of a UTCTime or GeneralizedTime's content: digits then Z, no fractions.
    tag, start, stop = _header(der, pos, end)
    if tag == _UTC_TIME:
        size = 13
    elif tag == _GENERALIZED_TIME:
        size = 15
    else:
        _fail("expected time")
    if stop - start != size or der[stop - 1] != 0x5A:
        _fail("malformed time")
    for i in range(start, stop - 1):
        if not 0x30 <= der[i] <= 0x39:
            _fail("malformed time")
    return start, stop


def _key_usage(cert, der, pos, end):
    start, stop = _whole(der, pos, end, _BIT_STRING, "keyUsage")
    size = stop - start
    if size < 2 or size > 3:
        _fail("malformed keyUsage")
    unused = der[start]
    last = der[stop - 1]
    # DER: unused bits zero, and no trailing zero bits (so the last used bit is set, and some bit is).
    if unused > 7 or last & ((1 << unused) - 1) or not last & (1 << unused):
        _fail("keyUsage not DER")
    mask = 0
    for i in range((size - 1) * 8 - unused):
        if der[start + 1 + (i >> 3)] & (0x80 >> (i & 7)):
            mask |= 1 << i
    cert.key_usage = mask


def _subject_key_id(cert, der, pos, end):
    start, stop = _whole(der, pos, end, _OCTET_STRING, "subjectKeyIdentifier")
    if start == stop:
        _fail("empty subjectKeyIdentifier")
    cert.subject_key_id = der[start:stop]


def _authority_key_id(cert, der, pos, end):
    start, stop = _whole(der, pos, end, _SEQUENCE, "authorityKeyIdentifier")
    last = -1
    while start < stop:
        tag, value, value_end = _header(der, start, stop)
        if tag == _KEY_ID:
            index = 0
            if value == value_end:
                _fail("empty keyIdentifier")
            cert.authority_key_id = der[value:value_end]
        elif tag == _AKI_ISSUER:
            index = 1
        elif tag == _AKI_SERIAL:
            index = 2
        else:
            _fail("malformed authorityKeyIdentifier")
        if index <= last:
            _fail("malformed authorityKeyIdentifier")
        last = index
        start = value_end


def _hardware_module_name(der, pos, end):
    # otherName's [0] EXPLICIT HardwareModuleName { hwType OID, hwSerialNum OCTET STRING }: the serial.
    start, stop = _whole(der, pos, end, _EXPLICIT_0, "otherName value")
    start, stop = _whole(der, start, stop, _SEQUENCE, "hardwareModuleName")
    oid_start, oid_end = _expect(der, start, stop, _OID, "hwType")
    _check_oid(der, oid_start, oid_end)
    serial, serial_end = _whole(der, oid_end, stop, _OCTET_STRING, "hwSerialNum")
    if serial_end - serial != _ID_SIZE:
        _fail("hwSerialNum is not 8 bytes")
    return der[serial:serial_end]


def _subject_alt_name(cert, der, pos, end):
    # Returns the hardwareModuleName's serial, or None.
    start, stop = _whole(der, pos, end, _SEQUENCE, "subjectAltName")
    if start == stop:
        _fail("empty subjectAltName")
    found = None
    while start < stop:
        tag, value, value_end = _header(der, start, stop)
        if tag & 0xC0 != 0x80:
            _fail("malformed GeneralName")
        if tag == _OTHER_NAME:
            oid_start, oid_end = _expect(der, value, value_end, _OID, "otherName type")
            _check_oid(der, oid_start, oid_end)
            if der[oid_start:oid_end] == _OID_HW_MODULE_NAME:
                if found is not None:
                    _fail("duplicate hardwareModuleName")
                found = _hardware_module_name(der, oid_end, value_end)
            else:
                _whole(der, oid_end, value_end, _EXPLICIT_0, "otherName value")
        start = value_end
    return found


def _basic_constraints(cert, der, pos, end):
    start, stop = _whole(der, pos, end, _SEQUENCE, "basicConstraints")
    if start < stop and der[start] == _BOOLEAN:
        start = _check_true(der, start, stop)
        cert.is_ca = True
    if start < stop:
        value, value_end = _whole(der, start, stop, _INTEGER, "pathLenConstraint")
        if value_end - value > 2:
            _fail("pathLenConstraint too large")
        first = _unsigned(der, value, value_end, "pathLenConstraint")
        if not cert.is_ca:
            _fail("pathLenConstraint without cA")
        cert.path_length = int.from_bytes(der[first:value_end], "big")


def _certificate_policies(cert, der, pos, end):
    start, stop = _whole(der, pos, end, _SEQUENCE, "certificatePolicies")
    if start == stop:
        _fail("empty certificatePolicies")
    while start < stop:
        info, info_end = _expect(der, start, stop, _SEQUENCE, "policyInformation")
        oid_start, oid_end = _expect(der, info, info_end, _OID, "policy OID")
        _check_oid(der, oid_start, oid_end)
        if cert.policy is None:
            cert.policy = der[oid_start:oid_end]
        if oid_end < info_end:
            _whole(der, oid_end, info_end, _SEQUENCE, "policyQualifiers")
        start = info_end


def _extensions(cert, der, pos, end):
    # Returns the SAN's hardwareModuleName serial, or None.
    known = 0
    others = []  # OIDs of the ignored extensions, for duplicates; bounded by the certificate's size
    hardware_id = None
    if pos == end:
        _fail("empty extensions")
    while pos < end:
        start, stop = _expect(der, pos, end, _SEQUENCE, "extension")
        oid_start, oid_end = _expect(der, start, stop, _OID, "extension id")
        _check_oid(der, oid_start, oid_end)
        critical = False
        value = oid_end
        if value < stop and der[value] == _BOOLEAN:
            value = _check_true(der, value, stop)
            critical = True
        value, value_end = _whole(der, value, stop, _OCTET_STRING, "extension value")
        oid = der[oid_start:oid_end]
        bit = 0
        if oid == _OID_KU:
            bit = _X_KU
            _key_usage(cert, der, value, value_end)
        elif oid == _OID_SKI:
            bit = _X_SKI
            _subject_key_id(cert, der, value, value_end)
        elif oid == _OID_AKI:
            bit = _X_AKI
            _authority_key_id(cert, der, value, value_end)
        elif oid == _OID_SAN:
            bit = _X_SAN
            hardware_id = _subject_alt_name(cert, der, value, value_end)
        elif oid == _OID_BC:
            bit = _X_BC
            _basic_constraints(cert, der, value, value_end)
        elif oid == _OID_CP:
            bit = _X_CP
            _certificate_policies(cert, der, value, value_end)
        else:
            if critical:
                _fail("unsupported critical extension")
            if oid in others:
                _fail("duplicate extension")
            others.append(oid)
        if known & bit:
            _fail("duplicate extension")
        known |= bit
        pos = stop
    return hardware_id


def _signature_integer(der, pos, end):
    # r or s, left-padded to 32 bytes; its end. Positive, nonzero, at most 32 bytes after a leading 00.
    # The one place where a non-minimal INTEGER is tolerated: two RTDS 4.5.0 device certificates
    # (00db123456789023-ka, 00db12345678909b-ds) encode s as 00 1e ..., and the signature is not part
    # of what it signs, so tolerating it opens nothing.
    start, stop = _expect(der, pos, end, _INTEGER, "signature INTEGER")
    if start == stop or der[start] & 0x80:
        _fail("signature INTEGER not positive")
    if stop - start > _HALF and der[start] == 0:
        start += 1
    if stop - start > _HALF:
        _fail("signature INTEGER too long")
    value = der[start:stop]
    if not int.from_bytes(value, "big"):
        _fail("signature INTEGER is zero")
    return b"\x00" * (_HALF - len(value)) + value, stop


def _tbs(cert, der, pos, end):
    # tbsCertificate's content [pos, end).
    if der[pos:pos + 5] != _VERSION_3:
        _fail("not a v3 certificate")
    pos += 5
    start, stop = _expect(der, pos, end, _INTEGER, "serial number")
    first = _unsigned(der, start, stop, "serial number")
    if stop - start > _MAX_SERIAL:
        _fail("serial number too long")
    if stop - first == 1 and der[first] == 0:
        _fail("serial number is zero")
    cert.serial = der[start:stop]
    pos = stop
    if der[pos:pos + 12] != _ECDSA_SHA256:
        _fail("signature algorithm is not ecdsa-with-SHA256")
    pos += 12
    start, stop = _expect(der, pos, end, _SEQUENCE, "issuer")
    if start == stop:
        _fail("empty issuer")
    _name(der, start, stop, None)
    cert.issuer = der[pos:stop]
    start, pos = _expect(der, stop, end, _SEQUENCE, "validity")
    start, stop = _time(der, start, pos)
    cert.not_before = der[start:stop]
    start, stop = _time(der, stop, pos)
    cert.not_after = der[start:stop]
    if stop != pos:
        _fail("trailing bytes after validity")
    start, stop = _expect(der, pos, end, _SEQUENCE, "subject")
    uid = _name(der, start, stop, cert)
    cert.subject = der[pos:stop]
    pos = stop
    if der[pos:pos + 27] != _SPKI_PREFIX:
        _fail("public key is not an uncompressed P-256 key")
    key = der[pos + 27:pos + 27 + _KEY_SIZE]
    if len(key) != _KEY_SIZE or pos + 27 + _KEY_SIZE > end:
        _fail("truncated")
    if not p256.is_valid_public_key(key):
        _fail("public key not on the curve")
    cert.public_key = key
    pos += 27 + _KEY_SIZE
    if pos == end:
        _fail("missing extensions")
    start, stop = _whole(der, pos, end, _EXTENSIONS_TAG, "extensions")
    start, stop = _whole(der, start, stop, _SEQUENCE, "extensions")
    hardware_id = _extensions(cert, der, start, stop)
    if uid is not None and hardware_id is not None and uid != hardware_id:
        _fail("entity ids differ")
    cert.entity_id = uid if uid is not None else hardware_id


def _parse(der):
    cert = Certificate(der)
    end = len(der)
    start, stop = _whole(der, 0, end, _SEQUENCE, "certificate")
    tbs_start, tbs_end = _expect(der, start, stop, _SEQUENCE, "tbsCertificate")
    _tbs(cert, der, tbs_start, tbs_end)
    cert._tbs_end = tbs_end
    if der[tbs_end:tbs_end + 12] != _ECDSA_SHA256:
        _fail("signature algorithm is not ecdsa-with-SHA256")
    start, stop = _whole(der, tbs_end + 12, stop, _BIT_STRING, "signature")
    if start == stop or der[start] != 0:
        _fail("signature has unused bits")
    start, stop = _whole(der, start + 1, stop, _SEQUENCE, "ECDSA-Sig-Value")
    r, start = _signature_integer(der, start, stop)
    s, start = _signature_integer(der, start, stop)
    if start != stop:
        _fail("trailing bytes after ECDSA-Sig-Value")
    cert.signature = r + s
    return cert


def parse(der):
    """The Certificate that der (bytes-like, at most MAX_CERTIFICATE bytes) encodes. Raises
    CertificateError, and only that, for anything else."""
    if not isinstance(der, (bytes, bytearray, memoryview)):
        _fail("not bytes")
    if len(der) > MAX_CERTIFICATE:
        _fail("certificate too large")
    try:
        der = bytes(der)
    except (TypeError, ValueError):
        _fail("not bytes")
    if len(der) > MAX_CERTIFICATE:
        _fail("certificate too large")
    try:
        return _parse(der)
    except CertificateError:
        raise
    except (IndexError, ValueError, TypeError):
        _fail("malformed")


def verify_signed_by(cert, issuer_public_key):
    """Whether cert's signature is a valid ECDSA-SHA256 signature of cert.tbs under issuer_public_key
    (64 bytes x || y). Never raises."""
    if not isinstance(cert, Certificate):
        return False
    return p256.verify(issuer_public_key, cert.tbs, cert.signature)


def _check_link(child, issuer, depth):
    # depth: how many CA certificates lie between issuer and the leaf (0 for the leaf's issuer).
    if child.issuer != issuer.subject:
        _fail("issuer name does not match")
    if not issuer.is_ca:
        _fail("issuer is not a CA")
    if not issuer.key_usage & KU_KEY_CERT_SIGN:
        _fail("issuer may not sign certificates")
    if issuer.path_length is not None and depth > issuer.path_length:
        _fail("path length exceeded")
    if (child.authority_key_id is not None and issuer.subject_key_id is not None
            and child.authority_key_id != issuer.subject_key_id):
        _fail("key identifier does not match")


def verify_chain(leaf, intermediates, root_public_key):
    """Check that leaf chains to root_public_key (64 bytes, the trust anchor) through intermediates
    (a list of 0 to 2 Certificates, from the leaf's issuer upwards). Returns None; raises
    CertificateError with the first failure's reason (see the module doc). Dates are not checked."""
    if not isinstance(leaf, Certificate):
        _fail("not a certificate")
    try:
        count = len(intermediates)
    except TypeError:
        _fail("not a certificate")
    if count > MAX_INTERMEDIATES:
        _fail("chain too long")
    child = leaf
    for depth in range(count):
        issuer = intermediates[depth]
        if not isinstance(issuer, Certificate):
            _fail("not a certificate")
        _check_link(child, issuer, depth)
        child = issuer
    if not p256.is_valid_public_key(root_public_key):
        _fail("bad root key")
    child = leaf
    for depth in range(count):
        issuer = intermediates[depth]
        if not p256.verify(issuer.public_key, child.tbs, child.signature):
            _fail("bad signature")
        child = issuer
    if not p256.verify(root_public_key, child.tbs, child.signature):
        _fail("bad signature")
