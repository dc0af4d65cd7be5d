"""meterfw.x509 under CPython, held to pyca/cryptography.

- The DCC's RTDS 4.5.0 test certificates (416 PEM certificates in ../shared/gbcs/keystore, see SOURCE.md
  there; skipped, saying so, when that folder is absent; nothing is copied into this repository) all
  parse, to the fields cryptography reads from them. Their issuers' certificates are not published, so
  only parsing is checked there.
- Certificates that cryptography builds within the profile (random keys, serials, names, each optional
  extension present or not) parse to the same fields, and verify_chain accepts the right chains and
  rejects wrong ones.
- Random bytes and mutated certificates make parse() raise CertificateError and nothing else.

make_certificate() below also made the fixed certificates of tests/firmware/test_x509.py (once, in a
throwaway script; they are embedded there as hex).
"""
import datetime

import pytest
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterfw import x509
from meterlab.paths import REPO_ROOT
from mpcheck import flip

KEYSTORE = REPO_ROOT.parent / "shared" / "gbcs" / "keystore"
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
HW_MODULE_NAME = cx.ObjectIdentifier("1.3.6.1.5.5.7.8.4")
HW_TYPE = cx.ObjectIdentifier("1.2.826.0.1.8641679.1.2.2.1")  # as in the RTDS device certificates
GBCS_POLICY = cx.ObjectIdentifier("1.2.826.0.1.8641679.1.2.1.4")
KU_NAMES = (("digital_signature", 0), ("content_commitment", 1), ("key_encipherment", 2),
            ("data_encipherment", 3), ("key_agreement", 4), ("key_cert_sign", 5), ("crl_sign", 6),
            ("encipher_only", 7), ("decipher_only", 8))


# --- building certificates within the profile -------------------------------------------------------

def private_key(scalar):
    return ec.derive_private_key(scalar, ec.SECP256R1())


def raw_public_key(key):
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return point[1:]


def name(cn=None, ou=None, uid=None, cn_type=_ASN1Type.UTF8String, ou_type=_ASN1Type.UTF8String):
    """A Name in the RTDS order: commonName, organizationalUnitName (the role, two hex digits),
    x500UniqueIdentifier (the EUI-64 as a BIT STRING); each optional; all absent: the empty Name."""
    attributes = []
    if cn is not None:
        attributes.append(cx.NameAttribute(NameOID.COMMON_NAME, cn, _type=cn_type))
    if ou is not None:
        attributes.append(cx.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "%02X" % ou, _type=ou_type))
    if uid is not None:
        # cryptography takes a BIT STRING's raw content: the unused-bits byte (00), then the bits.
        attributes.append(cx.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + uid,
                                           _type=_ASN1Type.BitString))
    return cx.Name([cx.RelativeDistinguishedName([a]) for a in attributes])


def key_usage(mask):
    flags = {attribute: bool(mask >> bit & 1) for attribute, bit in KU_NAMES}
    if not flags["key_agreement"]:  # cryptography allows these two only with keyAgreement
        flags["encipher_only"] = flags["decipher_only"] = False
    return cx.KeyUsage(**flags)


def hardware_module_name(eui):
    # cryptography takes an otherName's value as DER: SEQUENCE { hwType OID, hwSerialNum OCTET STRING }
    body = _der_oid(HW_TYPE.dotted_string) + b"\x04\x08" + eui
    return cx.OtherName(HW_MODULE_NAME, b"\x30" + bytes([len(body)]) + body)


def _der_oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    arcs = [parts[0] * 40 + parts[1]] + parts[2:]
    out = bytearray()
    for arc in arcs:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | arc & 0x7F)
            arc >>= 7
        out += bytes(reversed(chunk))
    return b"\x06" + bytes([len(out)]) + bytes(out)


def make_certificate(subject_key, issuer_key, issuer, subject, serial, not_before=None, not_after=None,
                     ku=None, ski=None, aki=None, hw_id=None, ca=None, policy=True, extra=()):
    """DER of a certificate within the profile. ku: RFC 5280 bit mask or None (absent); ski, aki:
    key identifier bytes or None; hw_id: the EUI-64 for subjectAltName's hardwareModuleName, or None;
    ca: None (no basicConstraints) or (cA, pathLen); extra: (extension value, critical) pairs."""
    builder = (cx.CertificateBuilder().issuer_name(issuer).subject_name(subject)
               .public_key(subject_key.public_key()).serial_number(serial)
               .not_valid_before(not_before or datetime.datetime(2020, 1, 1))
               .not_valid_after(not_after or datetime.datetime(2040, 12, 31, 23, 59, 59)))
    if ku is not None:
        builder = builder.add_extension(key_usage(ku), critical=True)
    if ski is not None:
        builder = builder.add_extension(cx.SubjectKeyIdentifier(ski), critical=False)
    if hw_id is not None:
        builder = builder.add_extension(cx.SubjectAlternativeName([hardware_module_name(hw_id)]),
                                        critical=True)
    if ca is not None:
        builder = builder.add_extension(cx.BasicConstraints(ca=ca[0], path_length=ca[1]), critical=True)
    if policy:
        builder = builder.add_extension(
            cx.CertificatePolicies([cx.PolicyInformation(GBCS_POLICY, None)]), critical=True)
    if aki is not None:
        builder = builder.add_extension(cx.AuthorityKeyIdentifier(aki, None, None), critical=False)
    for value, critical in extra:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


# --- what cryptography reads -------------------------------------------------------------------------

def _extension(cert, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except cx.ExtensionNotFound:
        return None


def _raw_time(when, size):
    return when.strftime("%y%m%d%H%M%SZ" if size == 13 else "%Y%m%d%H%M%SZ").encode()


def _signature_integers(value):
    # decode_dss_signature, but tolerating a superfluous leading zero as x509 does (two RTDS
    # certificates carry one: cryptography's strict DER parser refuses them).
    try:
        return decode_dss_signature(value)
    except ValueError:
        pass
    assert value[0] == 0x30 and value[1] == len(value) - 2 and value[2] == 0x02
    r_end = 4 + value[3]
    assert value[r_end] == 0x02 and r_end + 2 + value[r_end + 1] == len(value)
    return int.from_bytes(value[4:r_end], "big"), int.from_bytes(value[r_end + 2:], "big")


def assert_same_fields(der, ours):
    cert = cx.load_der_x509_certificate(der)
    assert ours.der == der
    assert ours.tbs == cert.tbs_certificate_bytes
    assert int.from_bytes(ours.serial, "big") == cert.serial_number
    assert ours.issuer == cert.issuer.public_bytes()
    assert ours.subject == cert.subject.public_bytes()
    assert ours.not_before == _raw_time(cert.not_valid_before_utc, len(ours.not_before))
    assert ours.not_after == _raw_time(cert.not_valid_after_utc, len(ours.not_after))
    assert ours.public_key == cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)[1:]
    r, s = _signature_integers(cert.signature)
    assert ours.signature == r.to_bytes(32, "big") + s.to_bytes(32, "big")

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert ours.common_name == (cns[0].value if cns else None)
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert ours.role == (int(ous[0].value, 16) if ous else None)
    uids = cert.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER)
    entity_id = None
    if uids:
        assert len(uids) == 1 and len(uids[0].value) == 9 and uids[0].value[0] == 0  # BIT STRING content
        entity_id = uids[0].value[1:]

    usage = _extension(cert, cx.oid.ExtensionOID.KEY_USAGE)
    mask = 0
    if usage is not None:
        for attribute, bit in KU_NAMES:
            if attribute in ("encipher_only", "decipher_only") and not usage.key_agreement:
                continue
            if getattr(usage, attribute):
                mask |= 1 << bit
    assert ours.key_usage == mask
    ski = _extension(cert, cx.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert ours.subject_key_id == (ski.digest if ski is not None else None)
    aki = _extension(cert, cx.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    assert ours.authority_key_id == (aki.key_identifier if aki is not None else None)
    constraints = _extension(cert, cx.oid.ExtensionOID.BASIC_CONSTRAINTS)
    assert ours.is_ca == (constraints is not None and constraints.ca)
    assert ours.path_length == (constraints.path_length if constraints is not None else None)
    san = _extension(cert, cx.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if san is not None and entity_id is None:
        for general_name in san:
            if isinstance(general_name, cx.OtherName) and general_name.type_id == HW_MODULE_NAME:
                value = general_name.value  # SEQUENCE { hwType OID, hwSerialNum OCTET STRING (8) }
                assert value[-10:-8] == b"\x04\x08"
                entity_id = value[-8:]
    assert ours.entity_id == entity_id
    policies = _extension(cert, cx.oid.ExtensionOID.CERTIFICATE_POLICIES)
    if policies is not None:
        assert ours.policy == _der_oid(policies[0].policy_identifier.dotted_string)[2:]
    else:
        assert ours.policy is None


# --- the RTDS certificates ---------------------------------------------------------------------------

def _rtds_certificates():
    if not KEYSTORE.is_dir():
        return []
    found = []
    for path in sorted(KEYSTORE.glob("*.pem")):
        text = path.read_bytes()
        if b"BEGIN CERTIFICATE" in text:  # one file holds a bare public key
            found.append(path)
    return found


@pytest.mark.skipif(not KEYSTORE.is_dir(),
                    reason="RTDS keystore not found at %s (see ../shared/gbcs/SOURCE.md)" % KEYSTORE)
def test_every_rtds_certificate_parses_to_cryptographys_fields():
    paths = _rtds_certificates()
    assert len(paths) == 416
    roles = set()
    devices = 0
    for path in paths:
        der = cx.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)
        ours = x509.parse(der)
        assert_same_fields(der, ours)
        assert ours.entity_id is not None, path.name
        # The file is named after the certificate's entity and key: <EUI-64>-ds|ka|pp-ka.pem. One
        # exception in the data set: 90b3d51f30000007-ka.pem (the WAN provider's KA) holds a copy of
        # supplier 90b3d51f30030000's KA certificate, byte for byte.
        owner = path.name.split("-")[0]
        if path.name == "90b3d51f30000007-ka.pem":
            owner = "90b3d51f30030000"
        assert ours.entity_id.hex() == owner, path.name
        expected = x509.KU_DIGITAL_SIGNATURE if path.name.endswith("-ds.pem") else x509.KU_KEY_AGREEMENT
        assert ours.key_usage == expected, path.name
        if ours.subject == b"\x30\x00":
            devices += 1
        else:
            roles.add(ours.role)
    assert devices == 400
    assert 2 in roles


# --- differential: certificates cryptography builds --------------------------------------------------

scalars = st.integers(min_value=1, max_value=N - 1)
euis = st.binary(min_size=8, max_size=8)
key_ids = st.binary(min_size=1, max_size=20)
printable = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?",
                    min_size=1, max_size=32)
utf8 = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=("Cs",)),
               min_size=1, max_size=24)


@st.composite
def names(draw, allow_empty=True):
    cn = draw(st.one_of(st.none(), st.tuples(printable, st.just(_ASN1Type.PrintableString)),
                        st.tuples(utf8, st.just(_ASN1Type.UTF8String))))
    ou = draw(st.one_of(st.none(), st.integers(0, 255)))
    uid = draw(st.one_of(st.none(), euis))
    if not allow_empty and cn is None and ou is None and uid is None:
        ou = 7
    return name(cn=cn and cn[0], cn_type=cn[1] if cn else _ASN1Type.UTF8String, ou=ou, uid=uid), uid


@st.composite
def leaves(draw):
    subject, uid = draw(names())
    hw_id = draw(st.one_of(st.none(), euis))
    if uid is not None and hw_id is not None:
        hw_id = uid  # two different entity ids are rejected (tested apart)
    fields = dict(subject=subject, serial=draw(st.integers(1, 2 ** 159 - 1)),
                  ku=draw(st.one_of(st.none(), st.integers(1, 0x1FF).filter(lambda m: m & 0x7F))),
                  ski=draw(st.one_of(st.none(), key_ids)), hw_id=hw_id,
                  ca=draw(st.one_of(st.none(), st.just((False, None)),
                                    st.tuples(st.just(True), st.one_of(st.none(), st.integers(0, 3))))),
                  policy=draw(st.booleans()),
                  not_after=draw(st.sampled_from([datetime.datetime(2049, 12, 31), datetime.datetime(2050, 1, 1),
                                                  datetime.datetime(9999, 12, 31, 23, 59, 59)])))
    if fields["ku"] is fields["ski"] is fields["hw_id"] is fields["ca"] is None:
        fields["policy"] = True  # the profile requires extensions: at least one
    return fields


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaves(), scalars, scalars, st.one_of(st.none(), key_ids))
def test_built_certificates_parse_to_cryptographys_fields(fields, subject_scalar, issuer_scalar, aki):
    issuer = name(cn="Issuer", ou=7)
    der = make_certificate(private_key(subject_scalar), private_key(issuer_scalar), issuer, aki=aki, **fields)
    ours = x509.parse(der)
    assert_same_fields(der, ours)
    assert x509.verify_signed_by(ours, raw_public_key(private_key(issuer_scalar)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scalars, min_size=5, max_size=5, unique=True), st.integers(0, 2), leaves(),
       st.lists(key_ids, min_size=3, max_size=3), st.data())
def test_verify_chain_against_cryptography_built_chains(scalars_, length, leaf_fields, ids, data):
    root_key, *keys = [private_key(s) for s in scalars_]
    root_name = name(cn="Root", ou=7, cn_type=_ASN1Type.PrintableString)
    # From the top: intermediates[length - 1] is issued by the root, intermediates[0] issues the leaf.
    issuer_key, issuer_name, issuer_id = root_key, root_name, ids[2]
    above = []
    for depth in range(length):
        key = keys[depth]
        subject = name(cn="CA %d" % depth, ou=7)
        der = make_certificate(key, issuer_key, issuer_name, subject, serial=100 + depth,
                               ku=x509.KU_KEY_CERT_SIGN | x509.KU_CRL_SIGN, ski=ids[depth],
                               aki=issuer_id, ca=(True, data.draw(st.one_of(st.none(), st.integers(2, 5)))))
        above.append(x509.parse(der))
        issuer_key, issuer_name, issuer_id = key, subject, ids[depth]
    leaf_der = make_certificate(keys[2], issuer_key, issuer_name, aki=issuer_id, **leaf_fields)
    leaf = x509.parse(leaf_der)
    intermediates = list(reversed(above))
    root_public = raw_public_key(root_key)
    assert x509.verify_chain(leaf, intermediates, root_public) is None

    # The wrong anchor, a chain with a link left out, a leaf signed by the wrong key: all rejected.
    error = pytest.raises(x509.CertificateError, x509.verify_chain, leaf, intermediates, raw_public_key(keys[3]))
    assert error.value.reason == "bad signature"
    if intermediates:
        error = pytest.raises(x509.CertificateError, x509.verify_chain, leaf, intermediates[1:], root_public)
        assert error.value.reason in ("issuer name does not match", "bad signature",
                                      "key identifier does not match")
    forged = x509.parse(make_certificate(keys[2], keys[3], issuer_name, aki=issuer_id, **leaf_fields))
    error = pytest.raises(x509.CertificateError, x509.verify_chain, forged, intermediates, root_public)
    assert error.value.reason == "bad signature"


def test_a_certificate_without_extensions_is_rejected():
    key = private_key(99)
    der = make_certificate(key, key, name(cn="CA"), name(), 5, policy=False)
    assert pytest.raises(x509.CertificateError, x509.parse, der).value.reason == "missing extensions"


def test_two_different_entity_ids_are_rejected():
    key = private_key(12345)
    der = make_certificate(key, key, name(cn="CA"), name(ou=2, uid=b"\x01" * 8), 5, hw_id=b"\x02" * 8)
    assert pytest.raises(x509.CertificateError, x509.parse, der).value.reason == "entity ids differ"
    der = make_certificate(key, key, name(cn="CA"), name(ou=2, uid=b"\x01" * 8), 5, hw_id=b"\x01" * 8)
    assert x509.parse(der).entity_id == b"\x01" * 8


def test_unknown_critical_extension_is_rejected_unknown_non_critical_ignored():
    key = private_key(777)
    unknown = cx.UnrecognizedExtension(cx.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00")
    der = make_certificate(key, key, name(cn="CA"), name(), 9, ku=1, extra=[(unknown, True)])
    assert pytest.raises(x509.CertificateError, x509.parse, der).value.reason == "unsupported critical extension"
    der = make_certificate(key, key, name(cn="CA"), name(), 9, ku=1, extra=[(unknown, False)])
    assert_same_fields(der, x509.parse(der))


# --- fuzz: nothing but CertificateError ---------------------------------------------------------------

_SEED = make_certificate(private_key(31337), private_key(4242), name(cn="E357", cn_type=_ASN1Type.PrintableString),
                         name(), 0x8000000000000001, ku=x509.KU_DIGITAL_SIGNATURE, ski=b"\x11" * 8,
                         aki=b"\x22" * 8, hw_id=b"\x00\xdb\x12\x34\x56\x78\x90\x01")
_CA_SEED = make_certificate(private_key(4242), private_key(4242), name(cn="E357", cn_type=_ASN1Type.PrintableString),
                            name(cn="E357", cn_type=_ASN1Type.PrintableString), 3,
                            ku=x509.KU_KEY_CERT_SIGN, ski=b"\x22" * 8, ca=(True, 0))


def _parse_or_certificate_error(data):
    try:
        x509.parse(data)
    except x509.CertificateError as error:
        assert isinstance(error.reason, str) and error.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1300))
def test_random_bytes_raise_only_certificate_error(data):
    _parse_or_certificate_error(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_after_a_certificate_header_raise_only_certificate_error(tail):
    _parse_or_certificate_error(_SEED[:4 + len(tail) % 40] + tail)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([_SEED, _CA_SEED]),
       st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255), st.sampled_from("xid")), min_size=1, max_size=4))
def test_mutated_certificates_raise_only_certificate_error(seed, edits):
    data = bytearray(seed)
    for position, value, kind in edits:
        position %= len(data) + 1
        if kind == "x" and position < len(data):
            data[position] = value
        elif kind == "i":
            data[position:position] = bytes([value])
        else:
            del data[position:position + 1 + value % 8]
    _parse_or_certificate_error(bytes(data))


def test_every_single_bit_flip_of_a_leaf_is_rejected_by_parse_or_by_the_chain():
    root = x509.parse(_CA_SEED)
    root_key = raw_public_key(private_key(4242))
    assert x509.verify_chain(x509.parse(_SEED), [root], root_key) is None
    for index in range(len(_SEED)):
        for bit in range(8):
            try:
                leaf = x509.parse(flip(_SEED, index, 1 << bit))
            except x509.CertificateError:
                continue
            with pytest.raises(x509.CertificateError):
                x509.verify_chain(leaf, [root], root_key)


def test_non_bytes_inputs_raise_certificate_error():
    for value in (None, 5, "30820100", [0x30, 0x00], 3.5, object()):
        assert pytest.raises(x509.CertificateError, x509.parse, value).value.reason == "not bytes"
    assert x509.parse(bytearray(_SEED)).der == _SEED
    assert x509.parse(memoryview(_SEED)).der == _SEED
