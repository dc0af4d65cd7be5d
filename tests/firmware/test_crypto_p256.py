# Tests of meterfw.crypto.p256 that run unchanged under pytest and on MicroPython (a runner calls every
# test_* function): plain functions and asserts, no pytest, no files, no f-strings, no copied vectors.
# Only properties and relations that any correct P-256 must satisfy; tests/test_crypto_p256_vectors.py
# holds the implementation to published vectors, tests/test_crypto_p256_properties.py to two other
# implementations. The curve's own constants (SEC 2) are the only numbers written here. Each test stays
# well under a second on the virtual board's MicroPython.
import hashlib

from meterfw.crypto import p256, p256_tables

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5


def be32(value):
    return value.to_bytes(32, "big")


def point(x, y):
    return be32(x) + be32(y)


G = point(GX, GY)


def scalar(i):
    # A deterministic private key in [1, n-1] for each i: the same keys on every port.
    d = int.from_bytes(hashlib.sha256(b"meterlab p256 test key" + bytes([i])).digest(), "big") % (N - 1) + 1
    return be32(d)


def x_of(public):
    return public[:32]


def on_curve(x, y):
    return (y * y - (x * x * x - 3 * x + B)) % P == 0


def sqrt_mod_p(v):
    # p = 3 (mod 4): a square root is v^((p + 1) / 4) when v is a square.
    root = pow(v, (P + 1) // 4, P)
    return root if root * root % P == v % P else None


def flip(data, index, bit=1):
    changed = bytearray(data)
    changed[index] ^= bit
    return bytes(changed)


def raised(exception, function, *args):
    try:
        function(*args)
    except exception as error:
        return error
    raise AssertionError("expected " + exception.__name__)


def test_the_generator_and_its_negation():
    assert on_curve(GX, GY)
    assert p256.public_key(be32(1)) == G
    # (n - 1)G = -G, so nG is the point at infinity: its x is G's, its y is p - Gy.
    assert p256.public_key(be32(N - 1)) == point(GX, P - GY)
    # Two independent paths to 2G and 3G: the comb (public_key) and the variable-base ladder (ecdh).
    for k in (2, 3, N - 2):
        public = p256.public_key(be32(k))
        assert on_curve(int.from_bytes(public[:32], "big"), int.from_bytes(public[32:], "big"))
        assert p256.ecdh(be32(k), G) == x_of(public)
    assert p256.public_key(be32(N - 2))[:32] == p256.public_key(be32(2))[:32]


def test_public_keys_are_points_on_the_curve():
    seen = set()
    for i in range(4):
        public = p256.public_key(scalar(i))
        assert len(public) == 64
        x = int.from_bytes(public[:32], "big")
        y = int.from_bytes(public[32:], "big")
        assert x < P and y < P and on_curve(x, y)
        seen.add(public)
    assert len(seen) == 4


def test_ecdh_is_symmetric():
    for i in range(3):
        a, b = scalar(10 + i), scalar(20 + i)
        shared = p256.ecdh(a, p256.public_key(b))
        assert len(shared) == 32
        assert shared == p256.ecdh(b, p256.public_key(a))
        assert shared == p256.ecdh(b, b"\x04" + p256.public_key(a))  # the 65-byte form too
        assert shared == p256.ecdh(bytearray(b), memoryview(p256.public_key(a)))


def test_ecdh_relations_with_small_and_large_scalars():
    q = p256.public_key(scalar(30))
    assert p256.ecdh(be32(1), q) == x_of(q)
    assert p256.ecdh(be32(N - 1), q) == x_of(q)  # -Q has the same x
    d = scalar(31)
    assert p256.ecdh(d, G) == x_of(p256.public_key(d))
    # 2(dQ) = (2d)Q. dQ is known by its x alone; both square roots give a point whose double has the
    # same x (2(x, -y) = -2(x, y)).
    x = int.from_bytes(p256.ecdh(d, q), "big")
    y = sqrt_mod_p(x * x * x - 3 * x + B)
    assert y is not None
    twice = be32(int.from_bytes(d, "big") * 2 % N)
    assert p256.ecdh(be32(2), point(x, y)) == p256.ecdh(twice, q)
    assert p256.ecdh(be32(2), point(x, P - y)) == p256.ecdh(twice, q)


def test_sign_and_verify_round_trip():
    messages = (b"", b"a", b"meterlab " * 30)
    for i in range(3):
        d = scalar(40 + i)
        public = p256.public_key(d)
        for message in messages:
            signature = p256.sign(d, message)
            assert len(signature) == 64
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            assert 0 < r < N and 0 < s < N
            assert p256.verify(public, message, signature) is True
            assert p256.verify(b"\x04" + public, message, signature) is True
            assert p256.verify(public, bytearray(message), bytearray(signature)) is True
            assert p256.verify(memoryview(public), memoryview(message), memoryview(signature)) is True
            assert p256.verify(public, message + b"!", signature) is False
            other = p256.public_key(scalar(50 + i))
            assert p256.verify(other, message, signature) is False


def test_sign_is_deterministic_and_depends_on_key_and_message():
    d, e = scalar(60), scalar(61)
    assert p256.sign(d, b"tariff") == p256.sign(d, b"tariff")
    signatures = {p256.sign(d, b"tariff"), p256.sign(d, b"tariff!"), p256.sign(e, b"tariff")}
    assert len(signatures) == 3
    # Different messages never share a nonce: their r values differ.
    assert len({s[:32] for s in signatures}) == 3


def test_a_signature_built_by_hand_verifies():
    # s = k^-1 (e + r d) mod n with r = x(kG) mod n, computed here from public_key alone: verify must
    # accept it, and also its twin (r, n - s) (ECDSA accepts both; low-s is not required).
    d = int.from_bytes(scalar(70), "big")
    k = int.from_bytes(scalar(71), "big")
    message = b"a hand-made ECDSA signature"
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    r = int.from_bytes(p256.public_key(be32(k))[:32], "big") % N
    s = pow(k, N - 2, N) * (e + r * d) % N
    public = p256.public_key(be32(d))
    assert p256.verify(public, message, be32(r) + be32(s)) is True
    assert p256.verify(public, message, be32(r) + be32(N - s)) is True
    assert p256.verify(public, message, be32(r) + be32((s + 1) % N)) is False
    assert p256.verify_digest(public, hashlib.sha256(message).digest(), be32(r) + be32(s)) is True


def test_every_single_bit_flip_is_rejected():
    d = scalar(80)
    public = p256.public_key(d)
    message = b"GCS32 valve close"
    signature = p256.sign(d, message)
    for i in range(64):
        assert p256.verify(public, message, flip(signature, i, 1 << (i % 8))) is False
    for i in range(0, 64, 4):
        assert p256.verify(flip(public, i, 1 << (i % 8)), message, signature) is False
    for i in range(len(message)):
        assert p256.verify(public, flip(message, i, 1 << (i % 8)), signature) is False


def test_r_or_s_out_of_range_is_rejected():
    d = scalar(90)
    public = p256.public_key(d)
    message = b"supply disconnect"
    signature = p256.sign(d, message)
    r, s = signature[:32], signature[32:]
    for bad in (0, N, N + 1, (1 << 256) - 1):
        assert p256.verify(public, message, be32(bad) + s) is False
        assert p256.verify(public, message, r + be32(bad)) is False
    assert p256.verify(public, message, bytes(64)) is False
    assert p256.verify(public, message, be32(1) + be32(1)) is False


def test_malformed_inputs_are_false_from_verify_and_valueerror_from_ecdh():
    d = scalar(100)
    public = p256.public_key(d)
    message = b"credential replacement"
    signature = p256.sign(d, message)
    assert p256.verify(public, message, signature) is True
    # A point whose x is a small number: then x + p still fits in 32 bytes, and (x + p, y) is the same
    # point mod p, which must be refused all the same (coordinates must be < p).
    x = 1
    y = sqrt_mod_p(x * x * x - 3 * x + B)
    while y is None:
        x += 1
        y = sqrt_mod_p(x * x * x - 3 * x + B)
    small = point(x, y)
    assert len(p256.ecdh(d, small)) == 32  # the point itself is fine
    bad_keys = [
        None, "", "04" + "00" * 64, 12345, [4] + [0] * 64, (), public.hex(),
        b"", b"\x04", bytes(64), b"\x04" + bytes(64), b"\x00", public[:63], public + b"\x00",
        b"\x02" + public[:32], b"\x03" + public[:32],  # compressed points: not accepted
        b"\x05" + public, b"\x02" + public, b"\x06" + public, b"\x00" + public,
        point(GX, (GY + 1) % P),  # not on the curve
        point(GX, GY ^ 1),
        point(P, GY), point(GX, P), point(GX, P + 1), b"\xff" * 64,  # coordinates >= p
        point(x + P, y), b"\x04" + point(x + P, y),  # on the curve mod p, but x >= p
    ]
    for key in bad_keys:
        assert p256.verify(key, message, signature) is False
        assert p256.verify_digest(key, hashlib.sha256(message).digest(), signature) is False
        raised(ValueError, p256.ecdh, d, key)
    bad_signatures = [None, "", signature.hex(), 7, b"", signature[:63], signature + b"\x00",
                      b"\x30" + signature, list(signature)]
    for bad in bad_signatures:
        assert p256.verify(public, message, bad) is False
    for bad in (None, "credential replacement", 42, [1, 2]):
        assert p256.verify(public, bad, signature) is False
    for bad in (None, "", b"", 5):
        assert p256.verify_digest(public, bad, signature) is False


def test_private_keys_outside_the_range_are_refused():
    public = p256.public_key(scalar(110))
    for bad in (be32(0), be32(N), be32(N + 1), b"\xff" * 32, b"\x01" * 31, b"\x01" * 33, b"",
                None, "01" * 32, 1, bytearray(32)):
        raised(ValueError, p256.public_key, bad)
        raised(ValueError, p256.sign, bad, b"message")
        raised(ValueError, p256.ecdh, bad, public)
    raised(TypeError, p256.sign, scalar(111), "a str is not a message")
    raised(TypeError, p256.sign, scalar(111), None)


def test_verify_digest_takes_the_leftmost_256_bits():
    d = scalar(120)
    public = p256.public_key(d)
    message = b"ECS01a tariff"
    digest = hashlib.sha256(message).digest()
    signature = p256.sign(d, message)
    assert p256.verify_digest(public, digest, signature) is True
    assert p256.verify_digest(public, bytearray(digest), signature) is True
    assert p256.verify_digest(public, digest + b"\x55" * 16, signature) is True  # longer: truncated
    assert p256.verify_digest(public, digest[:31], signature) is False  # shorter: a different number
    assert p256.verify_digest(public, flip(digest, 31), signature) is False


def test_verify_steps_yields_several_times_then_the_verdict():
    d = scalar(130)
    public = p256.public_key(d)
    message = b"step by step"
    signature = p256.sign(d, message)
    for sig, expected in ((signature, True), (flip(signature, 40), False)):
        outputs = list(p256.verify_steps(public, message, sig))
        assert len(outputs) > 2
        assert outputs[-1] is expected
        assert all(o is None for o in outputs[:-1])
        assert p256.verify(public, message, sig) is expected
    digest_outputs = list(p256.verify_digest_steps(public, hashlib.sha256(message).digest(), signature))
    assert digest_outputs[-1] is True and len(digest_outputs) > 2
    # Malformed input: the verdict at once, nothing before it.
    assert list(p256.verify_steps(None, message, signature)) == [False]
    assert list(p256.verify_steps(public, message, b"")) == [False]
    # Dropping a generator half-way is fine.
    steps = p256.verify_steps(public, message, signature)
    next(steps)
    next(steps)
    steps = None
    assert p256.verify(public, message, signature) is True


def test_tables_agree_with_the_independent_paths():
    # Each precomputed point of the generator, against ecdh (variable-base, no tables) for x and
    # public_key (the comb) for the whole point.
    table = p256_tables.G_ODD_MULTIPLES
    for j in range(0, len(table) // 64, 5):
        entry = table[64 * j:64 * j + 64]
        k = be32(2 * j + 1)
        assert p256.ecdh(k, G) == entry[:32]
        assert p256.public_key(k) == entry
    comb = p256_tables.G_COMB
    for u in range(8):
        k = 1 << 195
        for t in range(3):
            k += (1 if (u >> t) & 1 else -1) << (65 * t)
        entry = comb[64 * u:64 * u + 64]
        assert p256.ecdh(be32(k % N), G) == entry[:32]
        assert p256.public_key(be32(k % N)) == entry
        assert on_curve(int.from_bytes(entry[:32], "big"), int.from_bytes(entry[32:], "big"))


def test_anchor_table_verify_agrees_with_the_plain_verify():
    d = scalar(140)
    public = p256.public_key(d)
    table = p256.precompute(public)
    assert isinstance(table, bytes) and table[0] == 1
    assert table[1:65] == public  # the first point of the table is the key itself
    assert p256.precompute(b"\x04" + public) == table
    assert p256.precompute(bytearray(public)) == table
    message = b"anchor: valve open"
    signature = p256.sign(d, message)
    digest = hashlib.sha256(message).digest()
    cases = [(public, message, signature), (b"\x04" + public, message, signature),
             (public, message + b"!", signature), (public, message, flip(signature, 5)),
             (public, message, flip(signature, 40)), (public, b"", p256.sign(d, b""))]
    for key, m, sig in cases:
        expected = p256.verify(key, m, sig)
        assert p256.verify(key, m, sig, table) is expected
        assert p256.verify(key, m, sig, bytearray(table)) is expected
        assert p256.verify(key, m, sig, memoryview(table)) is expected
        outputs = list(p256.verify_steps(key, m, sig, table))
        assert outputs[-1] is expected and all(o is None for o in outputs[:-1])
    assert p256.verify(public, message, signature, table) is True
    assert p256.verify_digest(public, digest, signature, table) is True
    assert p256.verify_digest(public, flip(digest, 3), signature, table) is False
    steps = list(p256.verify_digest_steps(public, digest, signature, table))
    assert steps[-1] is True and len(steps) > 2
    # A hand-made signature and its twin (r, n - s), and a wrong s.
    k = int.from_bytes(scalar(142), "big")
    e = int.from_bytes(digest, "big")
    r = int.from_bytes(p256.public_key(be32(k))[:32], "big") % N
    s = pow(k, N - 2, N) * (e + r * int.from_bytes(d, "big")) % N
    for sig, expected in ((be32(r) + be32(s), True), (be32(r) + be32(N - s), True),
                          (be32(r) + be32((s + 1) % N), False)):
        assert p256.verify(public, message, sig, table) is expected
        assert p256.verify(public, message, sig) is expected
    # Malformed input stays False with a table.
    assert p256.verify(public, message, bytes(64), table) is False
    assert p256.verify(public, None, signature, table) is False
    assert p256.verify(None, message, signature, table) is False


def test_a_table_that_does_not_belong_to_the_key_gives_false():
    d = scalar(150)
    public = p256.public_key(d)
    message = b"anchor: tariff"
    signature = p256.sign(d, message)
    table = p256.precompute(public)
    other = p256.precompute(p256.public_key(scalar(151)))
    assert p256.verify(public, message, signature, table) is True
    assert p256.verify(public, message, signature, other) is False  # another key's table
    assert p256.precompute(point(GX, GY)) != table
    wrong_version = bytes([table[0] ^ 1]) + table[1:]
    later = len(table) // 2
    bad_tables = [
        b"", b"\x01", table[:-1], table[:65], table[:len(table) // 2], table + b"\x00",  # truncated, longer
        wrong_version, bytes([0]) + table[1:], bytes([2]) + table[1:],
        flip(table, 7), flip(table, 100), flip(table, later), flip(table, len(table) - 1),  # corrupted
        bytes(len(table)), b"\xff" * len(table), b"\x01" + bytes(len(table) - 1),  # garbage
        "01" * 10, table.hex(), 7, [1, 2, 3], True, list(table),  # not bytes at all
    ]
    for bad in bad_tables:
        assert p256.verify(public, message, signature, bad) is False
        assert p256.verify_digest(public, hashlib.sha256(message).digest(), signature, bad) is False
        assert list(p256.verify_steps(public, message, signature, bad)) == [False]
    # The table passed by keyword, and None meaning no table.
    assert p256.verify(public, message, signature, table=table) is True
    assert p256.verify(public, message, signature, table=None) is True


def test_precompute_refuses_invalid_keys():
    x = 1
    y = sqrt_mod_p(x * x * x - 3 * x + B)
    while y is None:
        x += 1
        y = sqrt_mod_p(x * x * x - 3 * x + B)
    assert p256.precompute(point(x, y))[1:65] == point(x, y)
    bad_keys = [None, "", 12345, b"", bytes(64), b"\x04" + bytes(64), G[:63], G + b"\x00",
                b"\x02" + G[:32], b"\x05" + G, point(GX, (GY + 1) % P), point(P, GY), point(GX, P),
                b"\xff" * 64, point(x + P, y), G.hex()]
    for key in bad_keys:
        raised(ValueError, p256.precompute, key)


def test_is_valid_public_key_says_what_ecdh_accepts():
    good = p256.public_key(b"\x00" * 31 + b"\x07")
    assert p256.is_valid_public_key(good)
    assert p256.is_valid_public_key(b"\x04" + good)
    for bad in (None, "text", b"", good[:63], b"\x05" + good, good[:32] + bytes(32), b"\xff" * 64):
        assert not p256.is_valid_public_key(bad)
