# The SP 800-56A single-step KDF with SHA-256 (section 5.8.1, the "concatenation" KDF) that GBCS uses to
# turn a static ECDH secret Z into a per-message key:
#   K = SHA-256(counter || Z || OtherInfo) for counter = 00000001, 00000002, ... truncated to length.
# GBCS derives 16-byte keys, one hash; longer keys are supported for completeness.
import hashlib

_HASH_BYTES = 32


def gbcs(z, other_info, length=16):
    if length < 1 or length > 255 * _HASH_BYTES:
        raise ValueError("KDF output length must be 1 to 8160 bytes")
    out = b""
    counter = 1
    while len(out) < length:
        h = hashlib.sha256(bytes((0, 0, (counter >> 8) & 0xFF, counter & 0xFF)))
        h.update(z)
        h.update(other_info)
        out += h.digest()
        counter += 1
    return out[:length]
