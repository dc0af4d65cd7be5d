"""The firmware's symmetric crypto against two independent implementations, on inputs hypothesis draws.

- meterfw.crypto.gcm (encrypt, decrypt, gmac) against pyca/cryptography (OpenSSL) and pycryptodome, for
  random keys, 12-byte and other IV lengths, texts and AAD of 0 to 300 bytes, 12- and 16-byte tags; with
  the pure AES and with the emulated cryptolib path, as in test_crypto_symmetric_vectors.py.
- meterfw.crypto.aes.AES128 against pycryptodome's AES.
- meterfw.crypto.hmac.hmac_sha256 against the standard library's hmac.
- meterfw.crypto.kdf.gbcs against cryptography's ConcatKDFHash (the same SP 800-56A single-step KDF).
"""
import contextlib
import hashlib
import hmac as std_hmac
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterfw.crypto import aes, gcm, hmac, kdf

AES_ECB = pytest.importorskip("Crypto.Cipher.AES", reason="pycryptodome is not installed: nothing to compare")
aead = pytest.importorskip(
    "cryptography.hazmat.primitives.ciphers.aead", reason="cryptography is not installed: nothing to compare"
)
from cryptography.hazmat.primitives import hashes  # noqa: E402 - once cryptography is known present
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash  # noqa: E402

EXAMPLES = settings(max_examples=150, deadline=None)

keys = st.binary(min_size=16, max_size=16)
# 12 bytes is what GBCS and nearly everyone uses; other lengths go through GHASH (SP 800-38D 7.1).
ivs = st.one_of(st.binary(min_size=12, max_size=12), st.binary(min_size=1, max_size=64))
texts = st.binary(max_size=300)
tag_lengths = st.sampled_from([12, 16])


@contextlib.contextmanager
def aes_path(name):
    """AES from the pure implementation, or from a cryptolib stand-in on pycryptodome (ECB, as on a board)."""
    if name == "pure":
        lib = None
    else:
        lib = types.ModuleType("cryptolib")

        class aes_cipher:
            def __init__(self, key, mode):
                assert mode == 1 and len(key) == 16
                self.encrypt = AES_ECB.new(bytes(key), AES_ECB.MODE_ECB).encrypt

        lib.aes = aes_cipher
    saved = aes.cryptolib
    aes.cryptolib = lib
    try:
        yield
    finally:
        aes.cryptolib = saved


def pycryptodome_gcm(key, iv, tag_length):
    return AES_ECB.new(key, AES_ECB.MODE_GCM, nonce=iv, mac_len=tag_length)


def pyca_encrypt(key, iv, plaintext, aad):
    """(ciphertext, 16-byte tag) from OpenSSL, or None for IV lengths AESGCM does not take (8-128 bytes)."""
    if not 8 <= len(iv) <= 128:
        return None
    sealed = aead.AESGCM(key).encrypt(iv, plaintext, aad)
    return sealed[:-16], sealed[-16:]


paths = pytest.mark.parametrize("path", ["pure", "cryptolib"])


@paths
@EXAMPLES
@given(key=keys, iv=ivs, plaintext=texts, aad=texts, tag_length=tag_lengths)
def test_gcm_encrypt_agrees(path, key, iv, plaintext, aad, tag_length):
    with aes_path(path):
        ciphertext, tag = gcm.encrypt(key, iv, plaintext, aad, tag_length)
        assert gcm.decrypt(key, iv, ciphertext, aad, tag) == plaintext
    cipher = pycryptodome_gcm(key, iv, tag_length)
    cipher.update(aad)
    assert (ciphertext, tag) == cipher.encrypt_and_digest(plaintext)
    sealed = pyca_encrypt(key, iv, plaintext, aad)
    if sealed is not None:
        assert (ciphertext, tag) == (sealed[0], sealed[1][:tag_length])  # a short tag is a prefix


@paths
@EXAMPLES
@given(
    key=keys, iv=ivs, plaintext=texts, aad=texts, tag_length=tag_lengths,
    where=st.sampled_from(["ciphertext", "aad", "tag"]),
    position=st.integers(0, 10**6),
    bit=st.integers(0, 7),
)
def test_gcm_decrypt_agrees_and_rejects_what_the_others_reject(
    path, key, iv, plaintext, aad, tag_length, where, position, bit
):
    cipher = pycryptodome_gcm(key, iv, tag_length)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    with aes_path(path):
        assert gcm.decrypt(key, iv, ciphertext, aad, tag) == plaintext
        parts = {"ciphertext": bytearray(ciphertext), "aad": bytearray(aad), "tag": bytearray(tag)}
        if not parts[where]:
            return  # nothing to change in an empty part
        parts[where][position % len(parts[where])] ^= 1 << bit
        forged = {name: bytes(value) for name, value in parts.items()}
        with pytest.raises(gcm.InvalidTag):
            gcm.decrypt(key, iv, forged["ciphertext"], forged["aad"], forged["tag"])
    check = pycryptodome_gcm(key, iv, tag_length)
    check.update(forged["aad"])
    with pytest.raises(ValueError):  # pycryptodome: "MAC check failed"
        check.decrypt_and_verify(forged["ciphertext"], forged["tag"])


@paths
@EXAMPLES
@given(key=keys, iv=ivs, aad=texts, tag_length=tag_lengths)
def test_gmac_agrees(path, key, iv, aad, tag_length):
    with aes_path(path):
        tag = gcm.gmac(key, iv, aad, tag_length)
    cipher = pycryptodome_gcm(key, iv, tag_length)
    cipher.update(aad)
    assert tag == cipher.digest()
    sealed = pyca_encrypt(key, iv, b"", aad)
    if sealed is not None:
        assert sealed[0] == b"" and tag == sealed[1][:tag_length]


@settings(max_examples=200, deadline=None)
@given(key=keys, block=st.binary(min_size=16, max_size=16))
def test_pure_aes_agrees_with_pycryptodome(key, block):
    assert aes.AES128(key).encrypt(block) == AES_ECB.new(key, AES_ECB.MODE_ECB).encrypt(block)


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=200), data=st.binary(max_size=300))
def test_hmac_sha256_agrees_with_the_standard_library(key, data):
    # Keys of 0 to 200 bytes: shorter than, equal to and longer than SHA-256's 64-byte block.
    assert hmac.hmac_sha256(key, data) == std_hmac.new(key, data, hashlib.sha256).digest()


@settings(max_examples=200, deadline=None)
@given(z=st.binary(min_size=1, max_size=66), other_info=st.binary(max_size=100), length=st.integers(1, 200))
def test_kdf_gbcs_agrees_with_concat_kdf(z, other_info, length):
    # GBCS uses 32-byte Z and 16-byte keys; longer outputs take more than one hash (counter 2, 3, ...).
    expected = ConcatKDFHash(algorithm=hashes.SHA256(), length=length, otherinfo=other_info).derive(z)
    assert kdf.gbcs(z, other_info, length) == expected


def test_kdf_gbcs_longest_output_agrees_and_the_bounds_hold():
    z = bytes(range(32))
    expected = ConcatKDFHash(algorithm=hashes.SHA256(), length=8160, otherinfo=b"info").derive(z)
    assert kdf.gbcs(z, b"info", 8160) == expected
    for length in (0, 8161):
        with pytest.raises(ValueError):
            kdf.gbcs(z, b"info", length)
