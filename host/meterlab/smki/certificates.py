"""The SMKI certificate profile, as the GB SMKI and the DCC's test data use it, built with pyca/cryptography
and signed by a keystore (so no CA private key ever leaves its keystore or HSM).

Every certificate: X.509 v3, P-256 key, ECDSA-SHA256, a critical key usage, an 8-byte subject key
identifier and the issuer's as authority key identifier, a critical certificate policy.

    CA (root, organisation, device, IKI)  subject CN + OU "07"; basicConstraints cA; keyCertSign, cRLSign
    party (supplier, DNO, ACB, ...)       subject CN, OU = the GBCS role as two hex digits,
                                          x500UniqueIdentifier = the party's EUI-64; DS or KA
    device                                empty subject; critical subjectAltName otherName
                                          hardwareModuleName carrying the device's EUI-64; DS or KA

The firmware's reader (meterfw.x509) accepts exactly this profile; the tests hold the two together.
"""
import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from meterlab.smki.keystore import load_public, public_bytes

DS = "ds"  # digital signature key
KA = "ka"  # key agreement key
USAGES = (DS, KA)

ISSUING_AUTHORITY_ROLE = 7
HARDWARE_MODULE_NAME = ObjectIdentifier("1.3.6.1.5.5.7.8.4")
# The OIDs the SMKI's certificates carry (seen in the DCC's RTDS test certificates).
HARDWARE_TYPE = ObjectIdentifier("1.2.826.0.1.8641679.1.2.2.1")
ORGANISATION_POLICY = ObjectIdentifier("1.2.826.0.1.8641679.1.2.1.4")
DEVICE_POLICY = ObjectIdentifier("1.2.826.0.1.1800000.1.2.1.4")
# Ours, for the DCC-facing (infrastructure) certificates no meter may ever accept.
INFRASTRUCTURE_POLICY = ObjectIdentifier("2.25.190871183294728104857201174893210648214")

NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)


class CertificateProfileError(ValueError):
    pass


def key_identifier(public_key):
    """The 8-byte key identifier of a 64-byte public key."""
    return hashlib.sha256(b"\x04" + public_key).digest()[:8]


def ca_name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "%02X" % ISSUING_AUTHORITY_ROLE,
                                         _type=_ASN1Type.PrintableString)])


def party_name(common_name, role, eui64):
    if not 0 <= role <= 255:
        raise CertificateProfileError(f"role {role} does not fit the profile")
    if len(eui64) != 8:
        raise CertificateProfileError("an EUI-64 is 8 bytes")
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "%02X" % role, _type=_ASN1Type.PrintableString),
        # cryptography writes a BitString attribute's bytes as the BIT STRING's content: unused-bits first
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes(eui64), _type=_ASN1Type.BitString),
    ])


def _hardware_module_name(eui64):
    # HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }
    oid = HARDWARE_TYPE.dotted_string.split(".")
    body = bytes([40 * int(oid[0]) + int(oid[1])])
    for arc in oid[2:]:
        value = int(arc)
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    content = b"\x06" + bytes([len(body)]) + body + b"\x04\x08" + bytes(eui64)
    return b"\x30" + bytes([len(content)]) + content


def _der_length(n):
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _sign_with_keystore(builder, keystore, label):
    """The DER certificate of builder, signed by keystore's key label. cryptography signs only with a
    key it holds, so the TBSCertificate is made with a throwaway key (the key does not appear in it:
    the algorithm, issuer and every field are fixed by the builder) and signed by the keystore."""
    throwaway = ec.generate_private_key(ec.SECP256R1())
    tbs = builder.sign(throwaway, hashes.SHA256()).tbs_certificate_bytes
    signature = keystore.sign(label, tbs)
    ecdsa = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256, no parameters
    bit_string = b"\x03" + _der_length(len(ecdsa) + 1) + b"\x00" + ecdsa
    body = tbs + algorithm + bit_string
    return b"\x30" + _der_length(len(body)) + body


def build(*, subject, subject_key, issuer_name, issuer_key, keystore, issuer_label, usage=None, ca=False,
          eui64=None, policy, serial=None):
    """A certificate (DER) in the profile. subject_key and issuer_key are 64-byte public keys; the
    signature is made by keystore's issuer_label key, and checked against issuer_key before return."""
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer_name)
               .public_key(load_public(subject_key))
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER))
    if ca:
        key_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    elif usage == DS:
        key_usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    elif usage == KA:
        key_usage = x509.KeyUsage(False, False, False, False, True, False, False, False, False)
    else:
        raise CertificateProfileError(f"usage must be {DS!r} or {KA!r}")
    builder = builder.add_extension(key_usage, critical=True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier(key_identifier(subject_key)), critical=False)
    if eui64 is not None:
        if len(eui64) != 8:
            raise CertificateProfileError("an EUI-64 is 8 bytes")
        san = x509.SubjectAlternativeName([x509.OtherName(HARDWARE_MODULE_NAME, _hardware_module_name(eui64))])
        builder = builder.add_extension(san, critical=True)
    builder = builder.add_extension(x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=True)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier(key_identifier(issuer_key), None, None), critical=False)
    der = _sign_with_keystore(builder, keystore, issuer_label)
    certificate = x509.load_der_x509_certificate(der)
    load_public(issuer_key).verify(certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    return der


def describe(der):
    """What a certificate in the profile says: {public_key, usage ('ds', 'ka' or 'ca'), role, eui64,
    common_name, subject_key_id, authority_key_id}; CertificateProfileError for one outside it."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise CertificateProfileError(f"not a DER certificate: {error}") from None
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
        raise CertificateProfileError("not a P-256 key")
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    kind = "ca" if is_ca else DS if usage.digital_signature else KA if usage.key_agreement else None
    role = eui64 = common_name = None
    for attribute in certificate.subject:
        if attribute.oid == NameOID.ORGANIZATIONAL_UNIT_NAME:
            role = int(attribute.value, 16)
        elif attribute.oid == NameOID.X500_UNIQUE_IDENTIFIER:
            value = bytes(attribute.value)  # the BIT STRING's content: unused-bits byte, then the EUI-64
            if len(value) != 9 or value[0] != 0:
                raise CertificateProfileError("x500UniqueIdentifier is not an 8-byte EUI-64")
            eui64 = value[1:]
        elif attribute.oid == NameOID.COMMON_NAME:
            common_name = attribute.value
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for name in san:
            if isinstance(name, x509.OtherName) and name.type_id == HARDWARE_MODULE_NAME:
                eui64 = name.value[-8:]
    except x509.ExtensionNotFound:
        pass
    return {"public_key": public_bytes(public_key), "usage": kind, "role": role, "eui64": eui64,
            "common_name": common_name,
            "subject_key_id": certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest,
            "authority_key_id": certificate.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier).value.key_identifier}
