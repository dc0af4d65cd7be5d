# NIST P-256 (secp256r1): ECDSA with SHA-256 and ECDH, in portable Python for MicroPython boards that
# have no ECC module (and for CPython, where the host uses the same code to check the firmware).
#
#   verify(public_key, message, signature, table=None) -> bool   ECDSA-SHA256; never raises
#   verify_digest(public_key, digest, signature, table=None)     the same over a given hash (leftmost 256 bits)
#   verify_steps(public_key, message, signature, table=None)     verify, driven step by step (a generator)
#   verify_digest_steps(public_key, digest, signature, table=None)   the same over a given hash
#   precompute(public_key) -> bytes                       an anchor table for verify's table argument
#   sign(private_key, message) -> 64 bytes r || s         deterministic nonce (RFC 6979, HMAC-SHA256)
#   public_key(private_key) -> 64 bytes x || y
#   ecdh(private_key, public_key) -> 32 bytes             the shared x-coordinate
#   is_valid_public_key(public_key) -> bool               on the curve, coordinates < p; never raises
#
# Keys and signatures are bytes: a private key is 32 bytes big-endian in [1, n-1]; a public key is 64
# bytes x || y or 65 bytes 04 || x || y (uncompressed, SEC1); a signature is r || s, 32 bytes each.
#
# How the work is done, and why. Figures measured on the virtual board (MicroPython 1.27, WebAssembly)
# and under CPython 3.11 (host/meterlab/bench/crypto.py measures them again):
#
# - Field elements are plain ints reduced with `%`. On MicroPython a big-int operation costs mostly its
#   allocation and dispatch: `x % p` of a 512-bit x takes about 2.5 multiplications, and any Solinas
#   or Montgomery reduction written in Python takes more (several operations). Reductions are lazy
#   where operand sizes allow it (an unreduced 512-bit product feeds one more product, then a `%`).
# - Points are Jacobian (X, Y, Z), x = X/Z^2, y = Y/Z^3, with the a = -3 doubling (3M + 5S) and, for
#   points from an affine table, the mixed addition. Doubling and additions are written out inside
#   the loops: on MicroPython a function call costs about as much as a field multiplication.
# - verify (public data only, so variable time is fine): u1*G + u2*Q by Straus/Shamir, one chain of
#   256 doublings shared by both scalars, each scalar in width-w NAF. G: w = 8, from the precomputed
#   odd multiples 1G..127G (p256_tables.G_ODD_MULTIPLES, 4 KB of bytes read one point at a time, so
#   frozen firmware keeps it in flash): about 28 mixed additions. Q: w = 5, from 1Q..15Q built per
#   call with co-Z additions (8 Jacobian points with their Z^2 and Z^3): about 43 additions. The sum
#   is never made affine: x(R) mod n == r is checked as r*Z^2 == X (mod p), or (r + n)*Z^2 == X when
#   r + n < p. The one inversion, s^-1 mod n, is an extended Euclid: faster than pow on MicroPython,
#   where pow(x, -1, m) returns 0 instead of raising. About 5.3 ms on the virtual board (the plain
#   double-and-add of host/meterlab/bench/plain_p256.py: about 23 ms), 1.2 ms under CPython
#   (python-ecdsa: 1.7 ms); about 7.5 KB of live heap at most.
# - verify with an anchor table (table=precompute(Q)): a meter verifies only against its few trust
#   anchors, known long before a command arrives (design.md), so the work that depends on Q alone is
#   done once, when the anchor is installed, and kept in flash: the blob holds the affine odd multiples
#   1Q..127Q and 1Q'..127Q' of Q' = 2^128 Q (the layout of the G tables, read one point at a time by
#   the same code), after a version byte and before a SHA-256 of the rest (8225 bytes). u1 and u2 are
#   split into 128-bit halves: four wNAF-8 streams (G, 2^128 G from p256_tables.G128_ODD_MULTIPLES, Q,
#   Q') over one chain of 128 doublings, about 56 mixed additions and nothing built per call. About
#   3.3 ms on the virtual board (table-less: 5.5 ms in the same run), 0.7 ms under CPython; about
#   4.4 KB of live heap beside the table. precompute: about 5.7 ms on the virtual board, 1.2 ms under
#   CPython. A table is
#   checked on every call (length, version, checksum, its first point equal to the key: cheap, a hash
#   in C and one comparison); one that does not match makes the answer False.
# - sign and public_key (secret scalar k): k*G by a fixed-base comb with 4 teeth 65 bits apart over
#   the signed-digit form of k (every digit +1 or -1, so no column is ever zero): exactly 64 doublings
#   and 64 mixed additions whatever k is, each point taken from an 8-entry table (p256_tables.G_COMB)
#   by a masked scan of all 8 entries, its sign applied arithmetically. Inverses of secrets use Fermat
#   (pow(x, m - 2, m): square-and-multiply over a public exponent).
# - ecdh (secret scalar, public point): fixed windows of 4 bits with odd signed digits, never zero, so
#   always an addition: 256 doublings and 64 mixed additions whatever the scalar is, from the odd
#   multiples 1Q..15Q (made affine with one batched inversion: they depend only on the public point),
#   again by a masked scan.
# - "Regular" means the sequence of field operations does not depend on the secret. It is not constant
#   time in the strict sense: a big-int operation's time depends a little on its operands' sizes, and
#   the additions branch to the general formula in the exceptional cases (the accumulator at infinity,
#   equal to the point added or to its inverse), which for a random scalar have negligible probability.
#
# RAM: verify keeps about 60 ints alive (the Q table, the accumulator, the digits in two bytearrays;
# with an anchor table, no Q table but four digit arrays and a bytearray of busy positions); everything
# else is garbage after each operation.
#
# The work of verify happens in verify_steps, a generator, so that a cooperative firmware can
# interleave a verify (far slower on a board than on a PC) with its other tasks; verify runs the same
# generator to its end.

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


import hashlib

from meterfw.crypto.hmac import hmac_sha256

# Curve parameters (SEC 2, FIPS 186-4 D.1.2.3); the generator G is the first point of the tables.
# Module globals: const() only takes small ints.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_MASK256 = (1 << 256) - 1
_COMB_OFFSET = (1 << 260) - 1  # signed-digit recoding for the comb: m = (k + 2^260 - 1) / 2

_W_G = const(8)  # wNAF width for G in verify (p256_tables.G_ODD_MULTIPLES holds 2^(8-2) points)
_W_Q = const(5)  # wNAF width for Q in verify without a table: 1Q, 3Q, ..., 15Q
_W_A = const(8)  # wNAF width for Q with an anchor table (precompute): 1Q, 3Q, ..., 127Q
_TABLE_VERSION = const(1)  # first byte of precompute's blob
_TABLE_POINTS = 1 << (_W_A - 2)
_TABLE_HALF = 64 * _TABLE_POINTS  # bytes of one table of odd multiples
_TABLE_LEN = 1 + 2 * _TABLE_HALF + 32  # version, Q's and 2^128 Q's multiples, SHA-256 of what precedes
_MASK128 = (1 << 128) - 1
_NAF_LEN = const(258)  # digit positions 0..257 (a width-w NAF of a 256-bit number has at most 257)
_STEP_EVERY = const(3)  # verify_steps yields after every 4th position with a digit (about 16 times)

# The generator's tables: G_ODD_MULTIPLES || G128_ODD_MULTIPLES || G_COMB of p256_tables, 8704 bytes.
# A deployed board has them as a flash file beside this module (TABLES_FILE, written by the host's
# firmware build) and reads them a point at a time: 8.5 KB the heap does not hold. The file must hash
# to TABLES_SHA256; one that does not (damaged, or absent as under CPython) is ignored and the module's
# own copy is imported instead, so a damaged file costs RAM, never a wrong point.
TABLES_FILE = "p256_tables.bin"
TABLES_SHA256 = b"\x1a\x09\x7a\xe5\x95\x3b\xa5\x0e\xe7\x51\x6a\xce\xfd\x36\x73\x89\x11\xfa\xe9\x48\xf6\xc2\x5b\x32\x6a\x4b\xa8\xb6\x7a\xc7\x54\x82"
_ODD_LEN = const(4096)
_COMB_LEN = const(512)


class _FlashTable:
    """A slice of the open tables file that reads like bytes: table[a:b] is that many bytes from flash."""

    def __init__(self, file, offset, length):
        self._file = file
        self._offset = offset
        self._length = length

    def __len__(self):
        return self._length

    def __getitem__(self, part):
        self._file.seek(self._offset + part.start)
        return self._file.read(part.stop - part.start)


def _open_tables():
    """(G odd multiples, 2^128 G odd multiples, G comb) from the flash file, or None."""
    try:
        file = open(__file__.rsplit("/", 1)[0] + "/" + TABLES_FILE, "rb")
    except (NameError, OSError):
        return None
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = file.read(512)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    if size != 2 * _ODD_LEN + _COMB_LEN or digest.digest() != TABLES_SHA256:
        file.close()
        print("p256: %s does not match; using the tables in RAM" % TABLES_FILE)
        return None
    return (_FlashTable(file, 0, _ODD_LEN), _FlashTable(file, _ODD_LEN, _ODD_LEN),
            _FlashTable(file, 2 * _ODD_LEN, _COMB_LEN))


def tables_bytes():
    """The tables file's contents, from p256_tables (what the host's firmware build writes)."""
    from meterfw.crypto import p256_tables

    if p256_tables.G_WNAF_WIDTH != _W_G:
        raise ImportError("p256_tables does not match p256")
    return p256_tables.G_ODD_MULTIPLES + p256_tables.G128_ODD_MULTIPLES + p256_tables.G_COMB


_tables = _open_tables()
if _tables is None:
    from meterfw.crypto import p256_tables

    if p256_tables.G_WNAF_WIDTH != _W_G:
        raise ImportError("p256_tables does not match p256")
    _tables = (p256_tables.G_ODD_MULTIPLES, p256_tables.G128_ODD_MULTIPLES, p256_tables.G_COMB)
_G_ODD, _G128_ODD, _G_COMB = _tables
del _tables
if len(_G_ODD) != 64 << (_W_G - 2) or len(_G128_ODD) != len(_G_ODD) or len(_G_COMB) != _COMB_LEN:
    raise ImportError("p256_tables does not match p256")

try:  # CPython: an extended Euclid in C. MicroPython accepts the call but returns 0 (no error).
    _FAST_INVERSE = pow(3, -1, 7) == 5
except Exception:
    _FAST_INVERSE = False


# ---------------------------------------------------------------------------------------------------
# Encodings. Each returns None for anything malformed; nothing here raises.


def _as_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def is_valid_public_key(public_key):
    """Whether public_key (64 bytes x || y, or 65 bytes 04 || x || y) is a point of the curve, both
    coordinates below p. Never raises. A store checks anchors with this before keeping them."""
    return _decode_point(public_key) is not None


def _decode_point(public_key):
    """(x, y) for a valid public key: 64 or 65 (04 ||) bytes, both coordinates < p, on the curve."""
    data = _as_bytes(public_key)
    if data is None:
        return None
    if len(data) == 65 and data[0] == 4:
        data = data[1:]
    if len(data) != 64:
        return None
    p = _P
    x = int.from_bytes(data[:32], "big")
    y = int.from_bytes(data[32:], "big")
    if x >= p or y >= p:
        return None
    # y^2 = x^3 - 3x + b; (0, 0), the usual stand-in for infinity, is not on the curve (b != 0).
    if (y * y - (x * x - 3) * x - _B) % p:
        return None
    return x, y


def _decode_signature(signature):
    data = _as_bytes(signature)
    if data is None or len(data) != 64:
        return None
    r = int.from_bytes(data[:32], "big")
    s = int.from_bytes(data[32:], "big")
    if not (0 < r < _N and 0 < s < _N):
        return None
    return r, s


def _digest_to_int(digest):
    """SEC1 4.1.4 step 5: the leftmost 256 bits of the hash as an integer (used mod n)."""
    data = _as_bytes(digest)
    if not data:
        return None
    e = int.from_bytes(data, "big")
    if len(data) > 32:
        e >>= 8 * (len(data) - 32)
    return e


def is_valid_private_key(private_key):
    """True if private_key is 32 bytes holding a scalar in [1, n-1]. No point arithmetic."""
    try:
        _private_scalar(private_key)
    except ValueError:
        return False
    return True


def _private_scalar(private_key):
    data = _as_bytes(private_key)
    if data is None or len(data) != 32:
        raise ValueError("a P-256 private key is 32 bytes")
    d = int.from_bytes(data, "big")
    if not 0 < d < _N:
        raise ValueError("P-256 private key out of range")
    return d


# ---------------------------------------------------------------------------------------------------
# Arithmetic used outside the hot loops: general point operations and inverses.


def _inverse_public(a, m):
    """a^-1 mod m for public a (variable time): an extended Euclid."""
    if _FAST_INVERSE:
        return pow(a, -1, m)
    x0, x1, r0, r1 = 0, 1, m, a
    while r1:
        q, r = divmod(r0, r1)
        r0 = r1
        r1 = r
        x0, x1 = x1, x0 - q * x1
    return x0 % m


def _double(X, Y, Z):
    """2*(X, Y, Z) in Jacobian coordinates, a = -3 (dbl-2001-b). Infinity (Z = 0) stays infinity."""
    p = _P
    d = Z * Z % p
    g = Y * Y % p
    b = X * g % p
    a = (X - d) * (X + d) * 3 % p
    X3 = (a * a - (b << 3)) % p
    Z3 = (Y * Z << 1) % p
    Y3 = (a * ((b << 2) - X3) - (g * g << 3)) % p
    return X3, Y3, Z3


def _add(X1, Y1, Z1, X2, Y2, Z2):
    """(X1, Y1, Z1) + (X2, Y2, Z2), Jacobian, for every case: infinity, equal points, inverses."""
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    p = _P
    z1z1 = Z1 * Z1 % p
    z2z2 = Z2 * Z2 % p
    u1 = X1 * z2z2 % p
    s1 = Y1 * Z2 * z2z2 % p
    h = (X2 * z1z1 - u1) % p
    r = (Y2 * Z1 * z1z1 - s1) % p
    if not h:
        if not r:
            return _double(X1, Y1, Z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    X3 = (r * r - hhh - (v << 1)) % p
    Y3 = (r * (v - X3) - s1 * hhh) % p
    Z3 = Z1 * Z2 % p * h % p
    return X3, Y3, Z3


def _odd_multiples(x, y, count=8):
    """[1P, 3P, ..., (2 count - 1)P] of the affine point P (public), as Jacobian (X, Y, Z) lists.

    Co-Z arithmetic (Meloni; Goundar, Joye, Miyaji): 2P is computed together with P rescaled to the
    same Z, and each (2k+1)P = (2k-1)P + 2P by a co-Z addition that also rescales 2P to the Z of the
    sum: 7 field multiplications per addition instead of 16. Exceptional cases (2P = +-(2k-1)P) cannot
    happen: the group has prime order n."""
    p = _P
    e = y * y % p
    s = (x * e << 2) % p  # x * Z^2, Z = 2y
    a = (x * x - 1) * 3 % p
    dx = (a * a - (s << 1)) % p
    dy = (a * (s - dx) - (e * e << 3)) % p  # 2P = (dx, dy, 2y)
    z = (y << 1) % p
    xs = [s]
    ys = [(e * e << 3) % p]  # y * Z^3
    zs = [z]
    tx = s
    ty = ys[0]
    for _ in range(count - 1):
        # (tx, ty) + (dx, dy), both with Z = z; afterwards (dx, dy) has the new Z too.
        c = dx - tx
        z = z * c % p
        c = c * c % p
        w1 = dx * c % p
        w2 = tx * c
        f = dy - ty
        a1 = dy * (w1 - w2) % p
        tx = (f * f - w1 - w2) % p
        ty = (f * (w1 - tx) - a1) % p
        dx = w1
        dy = a1
        xs.append(tx)
        ys.append(ty)
        zs.append(z)
    return xs, ys, zs


def _batch_affine(xs, ys, zs):
    """The Jacobian points (xs[j], ys[j], zs[j]), none at infinity, as affine lists (x, y), with one
    inversion (Montgomery's trick). For public points only (the inverse is variable time)."""
    p = _P
    count = len(zs)
    acc = [1] * count
    prod = 1
    for j in range(count):
        acc[j] = prod
        prod = prod * zs[j] % p
    inv = _inverse_public(prod, p)
    ax = [0] * count
    ay = [0] * count
    for j in range(count - 1, -1, -1):
        zi = inv * acc[j] % p
        inv = inv * zs[j] % p
        zi2 = zi * zi % p
        ax[j] = xs[j] * zi2 % p
        ay[j] = ys[j] * zi2 % p * zi % p
    return ax, ay


def _wnaf(k, w, busy=None):
    """The width-w NAF of 0 <= k < 2^256 as a bytearray: digit i (0 or odd, |d| < 2^(w-1)) at index i,
    stored as d & 0xFF. If busy (a bytearray) is given, busy[i] is set to 1 where digit i is nonzero."""
    naf = bytearray(_NAF_LEN)
    full = 1 << w
    half = full >> 1
    mask = full - 1
    i = 0
    while k:
        if k & 1:
            d = k & mask
            if d >= half:
                d -= full
            k -= d
            naf[i] = d & 0xFF
            if busy is not None:
                busy[i] = 1
            k >>= w
            i += w
        else:
            k >>= 1
            i += 1
    return naf


def _affine(X, Y, Z):
    """(x, y) of a Jacobian point whose Z may depend on a secret: Fermat's inverse (pow over the public
    exponent p - 2: the same squarings and multiplications whatever Z is)."""
    p = _P
    zi = pow(Z, p - 2, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 % p * zi % p


# ---------------------------------------------------------------------------------------------------
# Verify: public data only (the key, the message, the signature), so it may take variable time.


def precompute(public_key):
    """An anchor table for public_key: bytes to keep (in flash, say) and pass to verify(..., table=...),
    which then takes Q's multiples from it instead of building them on every call. Work that depends
    only on the key, done once when the key is installed. ValueError for an invalid public key (as
    ecdh). The blob is opaque and versioned: byte 0 is the format version (1), then the affine odd
    multiples 1Q, 3Q, ..., 127Q (64 points of 64 bytes x || y big-endian, the layout of
    p256_tables.G_ODD_MULTIPLES, so the first point is Q itself), then those of Q' = 2^128 Q (the
    layout of p256_tables.G128_ODD_MULTIPLES), then the SHA-256 of all that precedes it: 8225 bytes.
    With it, verify splits u2 (as u1) into 128-bit halves: four wNAF streams over one chain of 128
    doublings instead of 256."""
    point = _decode_point(public_key)
    if point is None:
        raise ValueError("invalid P-256 public key")
    x, y = point
    X, Y, Z = x, y, 1
    for _ in range(128):
        X, Y, Z = _double(X, Y, Z)
    x2, y2 = _affine(X, Y, Z)  # never at infinity: 2^128 < n, n prime
    xs, ys, zs = _odd_multiples(x, y, _TABLE_POINTS)
    xs2, ys2, zs2 = _odd_multiples(x2, y2, _TABLE_POINTS)
    xs, ys = _batch_affine(xs + xs2, ys + ys2, zs + zs2)
    xs2 = ys2 = zs = zs2 = None
    out = bytearray(_TABLE_LEN)
    out[0] = _TABLE_VERSION
    o = 1
    for j in range(2 * _TABLE_POINTS):
        out[o:o + 32] = xs[j].to_bytes(32, "big")
        out[o + 32:o + 64] = ys[j].to_bytes(32, "big")
        o += 64
    out[o:] = hashlib.sha256(memoryview(out)[:o]).digest()
    return bytes(out)


def _check_table(table, point):
    """table as bytes if it is precompute's blob for the point (x, y), else None. Checks the length,
    the version, the checksum (so a truncated, corrupted or garbage blob is refused) and that the first
    point is the key itself (so a table for another key is refused). Never raises."""
    try:
        if isinstance(table, bytes):
            data = table
        elif isinstance(table, (bytearray, memoryview)):
            data = bytes(table)
        else:
            return None
        if len(data) != _TABLE_LEN or data[0] != _TABLE_VERSION:
            return None
        end = _TABLE_LEN - 32
        if hashlib.sha256(data[:end]).digest() != data[end:]:
            return None
        if int.from_bytes(data[1:33], "big") != point[0] or int.from_bytes(data[33:65], "big") != point[1]:
            return None
        return data
    except Exception:
        return None


def verify(public_key, message, signature, table=None):
    """True if signature (64 bytes r || s) is a valid ECDSA P-256 signature of SHA-256(message) under
    public_key (64 bytes x || y, or 65 bytes 04 || x || y). Never raises: anything malformed (wrong
    type or length, r or s outside [1, n-1], a point not on the curve or with a coordinate >= p) is
    simply False.

    table: None, or precompute(public_key) (an anchor's table, made once): the same answer, faster. A
    table that is not precompute's blob for this very key (another key's, truncated, another version,
    corrupted) makes the answer False."""
    return _run(verify_steps(public_key, message, signature, table))


def verify_digest(public_key, digest, signature, table=None):
    """verify over a hash computed by the caller: the leftmost 256 bits of digest (SEC1 4.1.4), so a
    32-byte SHA-256 digest gives the same answer as verify over its message. Never raises. table as
    for verify."""
    return _run(verify_digest_steps(public_key, digest, signature, table))


def _run(steps):
    try:
        for result in steps:
            if result is not None:
                return result is True
    except Exception:  # fail closed (MemoryError on a board, say); malformed input never gets here
        pass
    return False


def verify_steps(public_key, message, signature, table=None):
    """verify, as a generator that does the work a slice at a time.

    Protocol: the generator yields None zero or more times while it works (once after setting up, then
    after every 4th bit position that adds a point: about 17 times in all for a well-formed input),
    then yields the verdict, True or False, exactly once, and stops. Anything but None is the verdict.
    Malformed input yields False at once, with no None before it. Driving it to the end gives exactly verify's answer, with the same arithmetic
    (verify runs this generator). For a cooperative firmware:

        for verdict in p256.verify_steps(key, message, signature):
            if verdict is not None:
                break
            await asyncio.sleep(0)

    The generator holds no resources: dropping it half-way is fine. It never raises on malformed
    input. table as for verify (a table that does not match is malformed input: False at once)."""
    digest = None
    if isinstance(message, (bytes, bytearray, memoryview)):
        try:
            digest = hashlib.sha256(message).digest()
        except Exception:
            digest = None
    return _verify_gen(public_key, digest, signature, table)


def verify_digest_steps(public_key, digest, signature, table=None):
    """verify_digest as a generator, with verify_steps' protocol."""
    return _verify_gen(public_key, digest, signature, table)


def _verify_gen(public_key, digest, signature, table):
    point = rs = e = None
    try:
        point = _decode_point(public_key)
        rs = _decode_signature(signature)
        e = None if digest is None else _digest_to_int(digest)
        if point is not None and table is not None:
            table = _check_table(table, point)
            if table is None:
                point = None
    except Exception:
        point = None
    if point is None or rs is None or e is None:
        yield False
        return
    p = _P
    n = _N
    r, s = rs
    w = _inverse_public(s, n)
    u1 = e * w % n
    u2 = r * w % n
    if table is None:
        naf_g = _wnaf(u1, _W_G)
        naf_q = _wnaf(u2, _W_Q)
        busy = None
        # 1Q, 3Q, ..., 15Q with Z^2 and Z^3 of each, for the full additions in the loop.
        qx, qy, qz = _odd_multiples(point[0], point[1])
        qzz = [z * z % p for z in qz]
        qzzz = [zz * z % p for zz, z in zip(qzz, qz)]
        # The affine streams, each (digits, table, offset of the first point): G only.
        streams = ((naf_g, _G_ODD, 0),)
    else:
        # u1 = a + b 2^128, u2 = c + d 2^128: u1 G + u2 Q = a G + b (2^128 G) + c Q + d (2^128 Q), four
        # 128-bit scalars over one chain of 128 doublings. busy marks positions with any digit.
        busy = bytearray(_NAF_LEN)
        naf_g = _wnaf(u1 & _MASK128, _W_G, busy)
        naf_q = _wnaf(u2 & _MASK128, _W_A, busy)
        qx = None
        streams = ((naf_g, _G_ODD, 0), (_wnaf(u1 >> 128, _W_G, busy), _G128_ODD, 0), (naf_q, table, 1),
                   (_wnaf(u2 >> 128, _W_A, busy), table, 1 + _TABLE_HALF))
    point = rs = None
    yield None

    from_bytes = int.from_bytes
    if busy is None:
        busy = naf_g  # no table: the two streams are checked position by position below
    i = _NAF_LEN - 1
    while i >= 0 and not (busy[i] or naf_q[i]):
        i -= 1
    X = Y = Z = 0  # the accumulator, at infinity while Z == 0
    events = 0
    while i >= 0:
        # Position i has a nonzero digit for G, for Q or for both: add those points.
        for naf, odd, base in streams:
            digit = naf[i]
            if not digit:
                continue
            # Mixed addition of the affine table point (x2, y2) = digit*G (or digit*Q from an anchor
            # table), read from the bytes table one point at a time.
            if digit < 128:
                o = base + ((digit >> 1) << 6)
                x2 = from_bytes(odd[o:o + 32], "big")
                y2 = from_bytes(odd[o + 32:o + 64], "big")
            else:
                o = base + (((256 - digit) >> 1) << 6)
                x2 = from_bytes(odd[o:o + 32], "big")
                y2 = p - from_bytes(odd[o + 32:o + 64], "big")
            if Z:
                zz = Z * Z % p
                h = (x2 * zz - X) % p
                t = (y2 * zz * Z - Y) % p
                if h:
                    hh = h * h % p
                    hhh = h * hh
                    v = X * hh % p
                    X = (t * t - hhh - (v << 1)) % p
                    Y = (t * (v - X) - Y * hhh) % p
                    Z = Z * h % p
                else:
                    X, Y, Z = _add(X, Y, Z, x2, y2, 1)
            else:
                X, Y, Z = x2, y2, 1
        digit = 0 if qx is None else naf_q[i]
        if digit:
            # Full addition of the Jacobian table point digit*Q (its Z^2 and Z^3 precomputed).
            if digit < 128:
                j = digit >> 1
                y2 = qy[j]
            else:
                j = (256 - digit) >> 1
                y2 = p - qy[j]
            if Z:
                zz = Z * Z % p
                u = X * qzz[j] % p
                h = (qx[j] * zz - u) % p
                sy = Y * qzzz[j] % p
                t = (y2 * zz * Z - sy) % p
                if h:
                    hh = h * h % p
                    hhh = h * hh
                    v = u * hh % p
                    X = (t * t - hhh - (v << 1)) % p
                    Y = (t * (v - X) - sy * hhh) % p
                    Z = Z * qz[j] * h % p
                else:
                    X, Y, Z = _add(X, Y, Z, qx[j], y2, qz[j])
            else:
                X, Y, Z = qx[j], y2, qz[j]
        # Down to the next position with a digit (or to the end): one doubling per position.
        j = i - 1
        while j >= 0 and not (busy[j] or naf_q[j]):
            j -= 1
        for _ in range(i - j if j >= 0 else i):
            # Doubling, a = -3: delta = Z^2, gamma = Y^2, beta = X*gamma, alpha = 3(X - delta)(X + delta).
            # At infinity (Z = 0) it stays at infinity.
            d = Z * Z % p
            g = Y * Y % p
            b = X * g  # beta, left unreduced: it only feeds a subtraction and one product
            a = (X - d) * (X + d) * 3 % p
            Z = (Y * Z << 1) % p
            X = (a * a - (b << 3)) % p
            Y = (a * ((b << 2) - X) - (g * g << 3)) % p
        i = j
        events += 1
        if not events & _STEP_EVERY:
            yield None
    if not Z:
        yield False  # u1*G + u2*Q is the point at infinity
        return
    # x(R) = X/Z^2 is in [0, p); r = x(R) mod n means x(R) = r or x(R) = r + n (only if r + n < p).
    zz = Z * Z % p
    if (X - r * zz) % p == 0:
        yield True
    elif r + n < p and (X - (r + n) * zz) % p == 0:
        yield True
    else:
        yield False


# ---------------------------------------------------------------------------------------------------
# Secret scalars: sign, public_key, ecdh. Regular algorithms (see the top of this file).


def _select(table, index):
    """table[index] by a masked scan of every entry (8 packed ints x << 256 | y): the same operations
    for every index; ((j ^ index) - 1) >> 8 is -1 for j == index and 0 otherwise."""
    e = 0
    for j in range(8):
        e |= table[j] & (((j ^ index) - 1) >> 8)
    return e


def _mul_g(k):
    """k*G for a secret 1 <= k < n, Jacobian. Fixed-base comb, regular.

    k is made odd without a branch (k or k + n, the same point), then written with signed digits:
    k = sum s_i 2^i for i < 260, s_i = 2 m_i - 1 (every s_i is +1 or -1), m = (k + 2^260 - 1) / 2.
    Column j (0..64) takes s_j, s_(65+j), s_(130+j), s_(195+j): its point is +-G_COMB[u], never zero,
    where u holds the other three signs relative to s_(195+j). 64 doublings, 64 mixed additions."""
    p = _P
    k += _N * (1 - (k & 1))
    mb = ((k + _COMB_OFFSET) >> 1).to_bytes(34, "little")
    comb = _G_COMB
    table = [int.from_bytes(comb[o:o + 64], "big") for o in range(0, 512, 64)]
    mask = _MASK256
    X = Y = Z = 0
    for j in range(64, -1, -1):
        b = j + 65
        c = j + 130
        t = j + 195
        top = (mb[t >> 3] >> (t & 7)) & 1
        u = (((mb[j >> 3] >> (j & 7)) & 1) | (((mb[b >> 3] >> (b & 7)) & 1) << 1)
             | (((mb[c >> 3] >> (c & 7)) & 1) << 2))
        flip = top ^ 1
        u ^= -flip & 7
        e = 0
        for o in range(8):
            e |= table[o] & (((o ^ u) - 1) >> 8)
        x2 = e >> 256
        y2 = e & mask
        y2 += flip * (p - (y2 << 1))  # y2, or p - y2 when the column's sign is negative
        if j == 64:
            X, Y, Z = x2, y2, 1
            continue
        X, Y, Z = _double_add_affine(X, Y, Z, x2, y2, 1)
    return X, Y, Z


def _double_add_affine(X, Y, Z, x2, y2, doublings):
    """(2^doublings)*(X, Y, Z) + (x2, y2): the step of the regular multiplications. The branch to the
    general addition is taken only in the exceptional cases (the accumulator at infinity, equal to
    the table point or to its inverse), negligibly likely for a random secret."""
    p = _P
    for _ in range(doublings):
        d = Z * Z % p
        g = Y * Y % p
        b = X * g
        a = (X - d) * (X + d) * 3 % p
        Z = (Y * Z << 1) % p
        X = (a * a - (b << 3)) % p
        Y = (a * ((b << 2) - X) - (g * g << 3)) % p
    zz = Z * Z % p
    h = (x2 * zz - X) % p
    t = (y2 * zz * Z - Y) % p
    if not (h and Z):
        return _add(X, Y, Z, x2, y2, 1)
    hh = h * h % p
    hhh = h * hh
    v = X * hh % p
    X = (t * t - hhh - (v << 1)) % p
    Y = (t * (v - X) - Y * hhh) % p
    return X, Y, Z * h % p


def _mul_point(k, x, y):
    """k*(x, y) for a secret 1 <= k < n and a valid public point, Jacobian. Regular: k (made odd:
    k or k + n) is recoded into 64 signed odd digits in [-15, 15] and a top digit in [1, 15], then
    256 doublings and 64 mixed additions from the affine odd multiples 1P..15P."""
    p = _P
    xs, ys = _batch_affine(*_odd_multiples(x, y))
    table = [xs[j] << 256 | ys[j] for j in range(8)]
    xs = ys = None
    k += _N * (1 - (k & 1))
    index = bytearray(64)
    negative = bytearray(64)
    for j in range(64):
        digit = (k & 31) - 16
        k = (k - digit) >> 4
        neg = (digit >> 8) & 1
        index[j] = ((digit ^ -neg) + neg) >> 1
        negative[j] = neg
    mask = _MASK256
    e = _select(table, k >> 1)  # the top digit, 1 or 3
    X = e >> 256
    Y = e & mask
    Z = 1
    for j in range(63, -1, -1):
        e = _select(table, index[j])
        x2 = e >> 256
        y2 = e & mask
        y2 += negative[j] * (p - (y2 << 1))
        X, Y, Z = _double_add_affine(X, Y, Z, x2, y2, 4)
    return X, Y, Z


def _rfc6979(d, h1):
    """The candidate nonces of RFC 6979 section 3.2 for qlen = hlen = 256 (HMAC-SHA256), in order."""
    n = _N
    x = d.to_bytes(32, "big")
    h = (int.from_bytes(h1, "big") % n).to_bytes(32, "big")  # bits2octets
    v = b"\x01" * 32
    k = b"\x00" * 32
    k = hmac_sha256(k, v + b"\x00" + x + h)
    v = hmac_sha256(k, v)
    k = hmac_sha256(k, v + b"\x01" + x + h)
    v = hmac_sha256(k, v)
    while True:
        v = hmac_sha256(k, v)
        candidate = int.from_bytes(v, "big")
        if 0 < candidate < n:
            yield candidate
        k = hmac_sha256(k, v + b"\x00")
        v = hmac_sha256(k, v)


def sign(private_key, message):
    """ECDSA P-256 signature of SHA-256(message), 64 bytes r || s, with the deterministic nonce of
    RFC 6979 (HMAC-SHA256): boards may lack a good random source. s is not normalised (no low-s).
    ValueError for a private key that is not 32 bytes in [1, n-1], TypeError for a message that is
    not bytes-like."""
    d = _private_scalar(private_key)
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise TypeError("the message must be bytes")
    h1 = hashlib.sha256(message).digest()
    e = int.from_bytes(h1, "big")
    n = _N
    for k in _rfc6979(d, h1):
        x, _ = _affine(*_mul_g(k))
        r = x % n
        if not r:
            continue
        s = pow(k, n - 2, n) * (e + r * d) % n
        if s:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def public_key(private_key):
    """The public key of private_key, 64 bytes x || y. ValueError unless 32 bytes in [1, n-1]."""
    x, y = _affine(*_mul_g(_private_scalar(private_key)))
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def ecdh(private_key, public_key):
    """The ECDH shared secret: the x-coordinate of private_key * public_key, 32 bytes. ValueError for
    a private key not 32 bytes in [1, n-1], and for a public key that is not a valid uncompressed
    point (wrong length or prefix, a coordinate >= p, not on the curve, the point at infinity)."""
    d = _private_scalar(private_key)
    point = _decode_point(public_key)
    if point is None:
        raise ValueError("invalid P-256 public key")
    X, Y, Z = _mul_point(d, point[0], point[1])
    if not Z:  # impossible for a valid point (prime order n, 0 < d < n); checked anyway
        raise ValueError("P-256 ECDH result is the point at infinity")
    x, _ = _affine(X, Y, Z)
    return x.to_bytes(32, "big")
