"""P-256 by pyca/cryptography (OpenSSL), for the tests that hold meterfw.crypto.p256 to an independent
implementation. Keys and signatures in the firmware's forms: 64-byte x || y, 64-byte r || s."""
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def be32(value):
    return value.to_bytes(32, "big")


def pyca_verifies(public, message, signature):
    """Whether OpenSSL accepts signature (r || s) of message under public (x || y)."""
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + public)
    except ValueError:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
