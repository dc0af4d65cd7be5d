# A plain ECDSA P-256 / SHA-256 verify: the baseline that meterfw.crypto.p256.verify is measured
# against on the virtual board (host/meterlab/bench/crypto.py copies this file onto its flash).
#
# Plain means the textbook construction in its three layers and no optimisation in any of them:
#   field   its own operations mod p (add, subtract, multiply, invert), each result reduced mod p,
#           inverses by Fermat, pow(x, p - 2, p);
#   points  Jacobian coordinates with the general doubling and addition formulas (no a = -3
#           doubling, no mixed addition: the base point is added as a Jacobian point with Z = 1);
#   scalars u1*G and then u2*Q, each by left-to-right double-and-add over the bits of the scalar, no
#           windows, no precomputed tables, no shared doublings; the sum converted to affine with
#           one inversion, s^-1 mod n by Fermat too.
# The optimisations that meterfw.crypto.p256 makes are exactly what is left out: Straus/Shamir with
# wNAF and tables, the a = -3 and mixed-addition formulas, lazy reduction and field arithmetic
# written out inside the loops, no final inversion, a Euclid for s^-1. Nothing is slowed down on
# purpose: each operation is written once, the way the textbook gives it.
#
# It shares nothing with meterfw.crypto.p256 (own constants, own field and point operations), so
# that a mistake or a speed-up there cannot leak into the baseline. MicroPython-compatible: it runs
# inside the virtual board. Public data only, so variable time is fine.
import hashlib

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = -3  # the curve's a = p - 3, as the small integer it is congruent to
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

INFINITY = (1, 1, 0)  # Jacobian: any point with Z = 0


# The field: integers mod p.


def fadd(a, b):
    return (a + b) % P


def fsub(a, b):
    return (a - b) % P


def fmul(a, b):
    return a * b % P


def finv(a):
    return pow(a, P - 2, P)


# The group: Jacobian points (X, Y, Z), x = X/Z^2, y = Y/Z^3.


def point_double(point):
    x, y, z = point
    if z == 0 or y == 0:
        return INFINITY
    yy = fmul(y, y)
    s = fmul(fmul(4, x), yy)
    zz = fmul(z, z)
    m = fadd(fmul(3, fmul(x, x)), fmul(A, fmul(zz, zz)))
    x3 = fsub(fmul(m, m), fmul(2, s))
    y3 = fsub(fmul(m, fsub(s, x3)), fmul(8, fmul(yy, yy)))
    z3 = fmul(fmul(2, y), z)
    return (x3, y3, z3)


def point_add(p1, p2):
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = fmul(z1, z1)
    z2z2 = fmul(z2, z2)
    u1 = fmul(x1, z2z2)
    u2 = fmul(x2, z1z1)
    s1 = fmul(fmul(y1, z2), z2z2)
    s2 = fmul(fmul(y2, z1), z1z1)
    if u1 == u2:
        if s1 == s2:
            return point_double(p1)
        return INFINITY
    h = fsub(u2, u1)
    r = fsub(s2, s1)
    hh = fmul(h, h)
    hhh = fmul(h, hh)
    v = fmul(u1, hh)
    x3 = fsub(fsub(fmul(r, r), hhh), fmul(2, v))
    y3 = fsub(fmul(r, fsub(v, x3)), fmul(s1, hhh))
    z3 = fmul(fmul(z1, z2), h)
    return (x3, y3, z3)


def scalar_multiply(k, point):
    result = INFINITY
    for i in range(255, -1, -1):  # leading zero bits double the point at infinity: no work
        result = point_double(result)
        if (k >> i) & 1:
            result = point_add(result, point)
    return result


def to_affine(point):
    x, y, z = point
    zi = finv(z)
    zi2 = fmul(zi, zi)
    return (fmul(x, zi2), fmul(y, fmul(zi2, zi)))


def on_curve(x, y):
    return fmul(y, y) == fadd(fadd(fmul(fmul(x, x), x), fmul(A, x)), B)


def verify(public_key, message, signature):
    """True if signature (r || s) is a valid ECDSA P-256 SHA-256 signature of message under public_key
    (64 bytes x || y or 65 bytes 04 || x || y)."""
    if not isinstance(public_key, (bytes, bytearray)) or not isinstance(signature, (bytes, bytearray)):
        return False
    if len(public_key) == 65 and public_key[0] == 4:
        public_key = public_key[1:]
    if len(public_key) != 64 or len(signature) != 64:
        return False
    qx = int.from_bytes(public_key[:32], "big")
    qy = int.from_bytes(public_key[32:], "big")
    if qx >= P or qy >= P or not on_curve(qx, qy):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return False
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    first = scalar_multiply(u1, (GX, GY, 1))
    second = scalar_multiply(u2, (qx, qy, 1))
    total = point_add(first, second)
    if total[2] == 0:
        return False
    x, _ = to_affine(total)
    return x % N == r
