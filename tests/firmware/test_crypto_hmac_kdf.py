# HMAC-SHA256, tag comparison and the GBCS KDF: properties that hold on CPython and on MicroPython.
# The external vectors (RFC 4231, the GBCS worked example) are checked in tests/test_crypto_*_vectors.py.
import hashlib

from meterfw.crypto import hmac, kdf
from mpcheck import raised


def test_a_key_longer_than_a_block_is_hashed_first():
    long_key = bytes(range(100))
    assert hmac.hmac_sha256(long_key, b"data") == hmac.hmac_sha256(hashlib.sha256(long_key).digest(), b"data")


def test_hmac_depends_on_key_and_data_and_is_32_bytes():
    tags = set()
    for key in (b"", b"k", b"k" * 64, b"k" * 65):
        for data in (b"", b"d", b"d" * 1000):
            tag = hmac.hmac_sha256(key, data)
            assert len(tag) == 32
            tags.add(tag)
    assert len(tags) == 12
    assert hmac.hmac_sha256(b"", b"d") == hmac.hmac_sha256(bytes(64), b"d")  # keys are zero-padded


def test_equal_compares_whole_values():
    assert hmac.equal(b"", b"")
    assert hmac.equal(b"\x01\x02", bytearray(b"\x01\x02"))
    assert not hmac.equal(b"\x01\x02", b"\x01\x03")
    assert not hmac.equal(b"\x01\x02", b"\x01")
    for i in range(12):
        tag = bytearray(12)
        tag[i] = 0x80
        assert not hmac.equal(bytes(12), tag)


def test_kdf_is_sha256_of_counter_z_and_other_info():
    z, info = bytes(range(32)), b"\x60\x85\x74\x06\x08\x03\x00" + bytes(20)
    first = hashlib.sha256(b"\x00\x00\x00\x01" + z + info).digest()
    second = hashlib.sha256(b"\x00\x00\x00\x02" + z + info).digest()
    assert kdf.gbcs(z, info) == first[:16]
    assert kdf.gbcs(z, info, 32) == first
    assert kdf.gbcs(z, info, 40) == first + second[:8]


def test_kdf_refuses_impossible_lengths():
    raised(ValueError, kdf.gbcs, b"z", b"", 0)
    raised(ValueError, kdf.gbcs, b"z", b"", 255 * 32 + 1)
