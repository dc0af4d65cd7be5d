"""meterfw.crypto.p256 against two independent implementations, pyca/cryptography (OpenSSL) and
pycryptodome, on random keys and messages (hypothesis). The vectors are in test_crypto_p256_vectors.py;
the properties that must also hold on MicroPython in tests/firmware/test_crypto_p256.py."""
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterfw.crypto import p256
from reference_p256 import be32, pyca_verifies  # noqa: E402

ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec", reason="cryptography is not installed")
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

ECC = pytest.importorskip("Crypto.PublicKey.ECC", reason="pycryptodome is not installed")
from Crypto.Hash import SHA256  # noqa: E402
from Crypto.Signature import DSS  # noqa: E402

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

private_scalars = st.integers(min_value=1, max_value=N - 1)
messages = st.binary(max_size=300)
EXAMPLES = settings(max_examples=50, deadline=None)


def pyca_key(d):
    return ec.derive_private_key(d, ec.SECP256R1())


def pyca_public(d):
    numbers = pyca_key(d).public_key().public_numbers()
    return be32(numbers.x) + be32(numbers.y)


def pycryptodome_key(d):
    return ECC.construct(curve="P-256", d=d)


def pycryptodome_verifies(public, message, signature):
    key = ECC.construct(curve="P-256", point_x=int.from_bytes(public[:32], "big"),
                        point_y=int.from_bytes(public[32:], "big"))
    try:
        DSS.new(key, "fips-186-3").verify(SHA256.new(message), signature)
        return True
    except ValueError:
        return False


@EXAMPLES
@given(private_scalars)
def test_public_key_agrees_with_pyca_and_pycryptodome(d):
    ours = p256.public_key(be32(d))
    assert ours == pyca_public(d)
    point = pycryptodome_key(d).pointQ
    assert ours == be32(int(point.x)) + be32(int(point.y))


@EXAMPLES
@given(private_scalars, messages)
def test_our_signatures_verify_elsewhere_and_match_pycryptodome_rfc6979(d, message):
    signature = p256.sign(be32(d), message)
    public = pyca_public(d)
    assert pyca_verifies(public, message, signature)
    assert pycryptodome_verifies(public, message, signature)
    assert p256.verify(public, message, signature)
    # pycryptodome implements RFC 6979 too (HMAC-SHA256 with SHA-256): the same bytes.
    assert DSS.new(pycryptodome_key(d), "deterministic-rfc6979").sign(SHA256.new(message)) == signature


@EXAMPLES
@given(private_scalars, messages)
def test_their_signatures_verify_here(d, message):
    public = pyca_public(d)
    r, s = decode_dss_signature(pyca_key(d).sign(message, ec.ECDSA(hashes.SHA256())))
    assert p256.verify(public, message, be32(r) + be32(s))
    assert p256.verify_digest(public, hashlib.sha256(message).digest(), be32(r) + be32(s))
    theirs = DSS.new(pycryptodome_key(d), "fips-186-3").sign(SHA256.new(message))
    assert p256.verify(b"\x04" + public, message, theirs)


@EXAMPLES
@given(private_scalars, messages, st.integers(min_value=0, max_value=2 * 512), st.data())
def test_the_anchor_table_path_agrees(d, message, bit, data):
    # verify with precompute's table gives the table-less answer, on valid and on altered signatures.
    public = pyca_public(d)
    table = p256.precompute(public)
    r, s = decode_dss_signature(pyca_key(d).sign(message, ec.ECDSA(hashes.SHA256())))
    signature = be32(r) + be32(s)
    altered = bytearray(signature)
    if bit < 512:
        altered[bit // 8] ^= 1 << (bit % 8)
    altered = bytes(altered)
    other = data.draw(private_scalars)
    assert p256.verify(public, message, signature, table) is True
    assert p256.verify(public, message, altered, table) is p256.verify(public, message, altered) \
        is pyca_verifies(public, message, altered)
    assert p256.verify_digest(public, hashlib.sha256(message).digest(), signature, table) is True
    # A table for another key: always False.
    assert p256.verify(public, message, signature, p256.precompute(pyca_public(other))) is (other == d)


@EXAMPLES
@given(private_scalars, private_scalars)
def test_ecdh_agrees_with_pyca(a, b):
    peer = pyca_key(b)
    shared = pyca_key(a).exchange(ec.ECDH(), peer.public_key())
    assert p256.ecdh(be32(a), pyca_public(b)) == shared
    assert p256.ecdh(be32(b), pyca_public(a)) == shared


@EXAMPLES
@given(private_scalars, messages, st.data())
def test_any_flipped_bit_is_rejected(d, message, data):
    public = pyca_public(d)
    r, s = decode_dss_signature(pyca_key(d).sign(message, ec.ECDSA(hashes.SHA256())))
    signature = be32(r) + be32(s)
    where = data.draw(st.sampled_from(["signature", "message", "key"] if message else ["signature", "key"]))
    target = {"signature": signature, "message": message, "key": public}[where]
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(target) - 1))
    flipped = bytearray(target)
    flipped[bit // 8] ^= 1 << (bit % 8)
    flipped = bytes(flipped)
    args = {"signature": signature, "message": message, "key": public, where: flipped}
    assert p256.verify(args["key"], args["message"], args["signature"]) is False
    steps = list(p256.verify_steps(args["key"], args["message"], args["signature"]))
    assert steps[-1] is False
