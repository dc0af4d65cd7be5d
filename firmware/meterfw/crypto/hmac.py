# HMAC-SHA256 (RFC 2104) on hashlib.sha256, which every MicroPython board has, and a comparison of MACs
# and tags whose time does not depend on where they differ.
import hashlib

_BLOCK = 64
_IPAD = bytes(0x36 for _ in range(_BLOCK))
_OPAD = bytes(0x5C for _ in range(_BLOCK))


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def hmac_sha256(key, data):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    inner.update(data)
    outer = hashlib.sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """a == b for MACs and tags, in time that depends only on their lengths."""
    if len(a) != len(b):
        return False
    difference = 0
    for x, y in zip(a, b):
        difference |= x ^ y
    return difference == 0
