# AES-128 block encryption (FIPS 197), pure Python, for boards whose MicroPython has no cryptolib, and
# block_encryptor(key): the one place the rest of the firmware gets "encrypt one 16-byte block under key",
# from cryptolib when the board has it, from AES128 otherwise. Only encryption: GCM and GMAC never run
# the block cipher backwards.
#
# The pure implementation works on bytes, so every value stays a MicroPython small int (32-bit T-tables
# would not: entries of 2^30 and more are heap-allocated big ints on a 32-bit port). The state is sixteen
# local variables; a round is, for each output byte, four lookups in three 256-byte tables that merge
# SubBytes with the MixColumns coefficients (_SBOX = S, _S2 = 2*S, _S3 = 3*S in GF(2^8)) and one round-key
# byte: ShiftRows is only the choice of which locals each line reads. Tables: 768 bytes; a key: 11 round
# keys of 16 bytes, expanded once.
#
# Timing: the lookups are indexed by secret bytes. On the ESP32 and RP2040 the tables sit in SRAM, which
# has no data cache, so a lookup takes the same time whatever its index (frozen into flash, they would be
# read through the XIP cache instead). On a CPU with data caches, such as a host running CPython, table
# lookups can leak through cache timing: the host does its own AES through OpenSSL, and a board with
# cryptolib uses that.

try:
    from micropython import const
except ImportError:

    def const(value):
        return value


try:
    import cryptolib  # the board's AES (mbedTLS or axTLS in C); absent on CPython and the virtual board
except ImportError:
    cryptolib = None
# Tests swap the module attribute above (a fake cryptolib, or None for the pure path): block_encryptor()
# reads it on every call.

KEY_SIZE = const(16)
BLOCK_SIZE = const(16)
_ROUNDS = const(10)
_MODE_ECB = const(1)  # cryptolib.aes(key, 1): ECB, the bare block cipher

_SBOX = (
    b"\x63\x7c\x77\x7b\xf2\x6b\x6f\xc5\x30\x01\x67\x2b\xfe\xd7\xab\x76"
    b"\xca\x82\xc9\x7d\xfa\x59\x47\xf0\xad\xd4\xa2\xaf\x9c\xa4\x72\xc0"
    b"\xb7\xfd\x93\x26\x36\x3f\xf7\xcc\x34\xa5\xe5\xf1\x71\xd8\x31\x15"
    b"\x04\xc7\x23\xc3\x18\x96\x05\x9a\x07\x12\x80\xe2\xeb\x27\xb2\x75"
    b"\x09\x83\x2c\x1a\x1b\x6e\x5a\xa0\x52\x3b\xd6\xb3\x29\xe3\x2f\x84"
    b"\x53\xd1\x00\xed\x20\xfc\xb1\x5b\x6a\xcb\xbe\x39\x4a\x4c\x58\xcf"
    b"\xd0\xef\xaa\xfb\x43\x4d\x33\x85\x45\xf9\x02\x7f\x50\x3c\x9f\xa8"
    b"\x51\xa3\x40\x8f\x92\x9d\x38\xf5\xbc\xb6\xda\x21\x10\xff\xf3\xd2"
    b"\xcd\x0c\x13\xec\x5f\x97\x44\x17\xc4\xa7\x7e\x3d\x64\x5d\x19\x73"
    b"\x60\x81\x4f\xdc\x22\x2a\x90\x88\x46\xee\xb8\x14\xde\x5e\x0b\xdb"
    b"\xe0\x32\x3a\x0a\x49\x06\x24\x5c\xc2\xd3\xac\x62\x91\x95\xe4\x79"
    b"\xe7\xc8\x37\x6d\x8d\xd5\x4e\xa9\x6c\x56\xf4\xea\x65\x7a\xae\x08"
    b"\xba\x78\x25\x2e\x1c\xa6\xb4\xc6\xe8\xdd\x74\x1f\x4b\xbd\x8b\x8a"
    b"\x70\x3e\xb5\x66\x48\x03\xf6\x0e\x61\x35\x57\xb9\x86\xc1\x1d\x9e"
    b"\xe1\xf8\x98\x11\x69\xd9\x8e\x94\x9b\x1e\x87\xe9\xce\x55\x28\xdf"
    b"\x8c\xa1\x89\x0d\xbf\xe6\x42\x68\x41\x99\x2d\x0f\xb0\x54\xbb\x16"
)


def _xtime(a):
    # a * x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1
    a <<= 1
    if a & 0x100:
        a ^= 0x11B
    return a


def _mixed_tables():
    s2 = bytearray(256)
    s3 = bytearray(256)
    for i in range(256):
        s = _SBOX[i]
        d = _xtime(s)
        s2[i] = d
        s3[i] = d ^ s
    return bytes(s2), bytes(s3)


_S2, _S3 = _mixed_tables()

_RCON = b"\x01\x02\x04\x08\x10\x20\x40\x80\x1b\x36"


def _check_key(key):
    if len(key) != KEY_SIZE:
        raise ValueError("AES key must be 16 bytes (AES-128), got %d" % len(key))


class AES128:
    """AES-128 encryption of single blocks: AES128(key).encrypt(block) -> 16 bytes."""

    def __init__(self, key):
        _check_key(key)
        w = bytearray(16 * (_ROUNDS + 1))
        for i in range(16):
            w[i] = key[i]
        S = _SBOX
        for i in range(16, 16 * (_ROUNDS + 1), 4):
            a = w[i - 4]
            b = w[i - 3]
            c = w[i - 2]
            d = w[i - 1]
            if i % 16 == 0:  # RotWord, SubWord, Rcon
                a, b, c, d = S[b] ^ _RCON[i // 16 - 1], S[c], S[d], S[a]
            w[i] = w[i - 16] ^ a
            w[i + 1] = w[i - 15] ^ b
            w[i + 2] = w[i - 14] ^ c
            w[i + 3] = w[i - 13] ^ d
        self._round_keys = tuple(bytes(w[16 * r:16 * r + 16]) for r in range(_ROUNDS + 1))

    def encrypt(self, block):
        if len(block) != BLOCK_SIZE:
            raise ValueError("AES block must be 16 bytes, got %d" % len(block))
        S = _SBOX
        S2 = _S2
        S3 = _S3
        rk = self._round_keys
        k = rk[0]
        s0 = block[0] ^ k[0]
        s1 = block[1] ^ k[1]
        s2 = block[2] ^ k[2]
        s3 = block[3] ^ k[3]
        s4 = block[4] ^ k[4]
        s5 = block[5] ^ k[5]
        s6 = block[6] ^ k[6]
        s7 = block[7] ^ k[7]
        s8 = block[8] ^ k[8]
        s9 = block[9] ^ k[9]
        s10 = block[10] ^ k[10]
        s11 = block[11] ^ k[11]
        s12 = block[12] ^ k[12]
        s13 = block[13] ^ k[13]
        s14 = block[14] ^ k[14]
        s15 = block[15] ^ k[15]
        # Rounds 1 to 8, two per pass (s -> t -> s); then round 9 (s -> t) and the final round, which
        # has no MixColumns (t -> output). State byte n is row n % 4, column n // 4.
        for r in range(1, 9, 2):
            k = rk[r]
            t0 = S2[s0] ^ S3[s5] ^ S[s10] ^ S[s15] ^ k[0]
            t1 = S[s0] ^ S2[s5] ^ S3[s10] ^ S[s15] ^ k[1]
            t2 = S[s0] ^ S[s5] ^ S2[s10] ^ S3[s15] ^ k[2]
            t3 = S3[s0] ^ S[s5] ^ S[s10] ^ S2[s15] ^ k[3]
            t4 = S2[s4] ^ S3[s9] ^ S[s14] ^ S[s3] ^ k[4]
            t5 = S[s4] ^ S2[s9] ^ S3[s14] ^ S[s3] ^ k[5]
            t6 = S[s4] ^ S[s9] ^ S2[s14] ^ S3[s3] ^ k[6]
            t7 = S3[s4] ^ S[s9] ^ S[s14] ^ S2[s3] ^ k[7]
            t8 = S2[s8] ^ S3[s13] ^ S[s2] ^ S[s7] ^ k[8]
            t9 = S[s8] ^ S2[s13] ^ S3[s2] ^ S[s7] ^ k[9]
            t10 = S[s8] ^ S[s13] ^ S2[s2] ^ S3[s7] ^ k[10]
            t11 = S3[s8] ^ S[s13] ^ S[s2] ^ S2[s7] ^ k[11]
            t12 = S2[s12] ^ S3[s1] ^ S[s6] ^ S[s11] ^ k[12]
            t13 = S[s12] ^ S2[s1] ^ S3[s6] ^ S[s11] ^ k[13]
            t14 = S[s12] ^ S[s1] ^ S2[s6] ^ S3[s11] ^ k[14]
            t15 = S3[s12] ^ S[s1] ^ S[s6] ^ S2[s11] ^ k[15]
            k = rk[r + 1]
            s0 = S2[t0] ^ S3[t5] ^ S[t10] ^ S[t15] ^ k[0]
            s1 = S[t0] ^ S2[t5] ^ S3[t10] ^ S[t15] ^ k[1]
            s2 = S[t0] ^ S[t5] ^ S2[t10] ^ S3[t15] ^ k[2]
            s3 = S3[t0] ^ S[t5] ^ S[t10] ^ S2[t15] ^ k[3]
            s4 = S2[t4] ^ S3[t9] ^ S[t14] ^ S[t3] ^ k[4]
            s5 = S[t4] ^ S2[t9] ^ S3[t14] ^ S[t3] ^ k[5]
            s6 = S[t4] ^ S[t9] ^ S2[t14] ^ S3[t3] ^ k[6]
            s7 = S3[t4] ^ S[t9] ^ S[t14] ^ S2[t3] ^ k[7]
            s8 = S2[t8] ^ S3[t13] ^ S[t2] ^ S[t7] ^ k[8]
            s9 = S[t8] ^ S2[t13] ^ S3[t2] ^ S[t7] ^ k[9]
            s10 = S[t8] ^ S[t13] ^ S2[t2] ^ S3[t7] ^ k[10]
            s11 = S3[t8] ^ S[t13] ^ S[t2] ^ S2[t7] ^ k[11]
            s12 = S2[t12] ^ S3[t1] ^ S[t6] ^ S[t11] ^ k[12]
            s13 = S[t12] ^ S2[t1] ^ S3[t6] ^ S[t11] ^ k[13]
            s14 = S[t12] ^ S[t1] ^ S2[t6] ^ S3[t11] ^ k[14]
            s15 = S3[t12] ^ S[t1] ^ S[t6] ^ S2[t11] ^ k[15]
        k = rk[9]
        t0 = S2[s0] ^ S3[s5] ^ S[s10] ^ S[s15] ^ k[0]
        t1 = S[s0] ^ S2[s5] ^ S3[s10] ^ S[s15] ^ k[1]
        t2 = S[s0] ^ S[s5] ^ S2[s10] ^ S3[s15] ^ k[2]
        t3 = S3[s0] ^ S[s5] ^ S[s10] ^ S2[s15] ^ k[3]
        t4 = S2[s4] ^ S3[s9] ^ S[s14] ^ S[s3] ^ k[4]
        t5 = S[s4] ^ S2[s9] ^ S3[s14] ^ S[s3] ^ k[5]
        t6 = S[s4] ^ S[s9] ^ S2[s14] ^ S3[s3] ^ k[6]
        t7 = S3[s4] ^ S[s9] ^ S[s14] ^ S2[s3] ^ k[7]
        t8 = S2[s8] ^ S3[s13] ^ S[s2] ^ S[s7] ^ k[8]
        t9 = S[s8] ^ S2[s13] ^ S3[s2] ^ S[s7] ^ k[9]
        t10 = S[s8] ^ S[s13] ^ S2[s2] ^ S3[s7] ^ k[10]
        t11 = S3[s8] ^ S[s13] ^ S[s2] ^ S2[s7] ^ k[11]
        t12 = S2[s12] ^ S3[s1] ^ S[s6] ^ S[s11] ^ k[12]
        t13 = S[s12] ^ S2[s1] ^ S3[s6] ^ S[s11] ^ k[13]
        t14 = S[s12] ^ S[s1] ^ S2[s6] ^ S3[s11] ^ k[14]
        t15 = S3[s12] ^ S[s1] ^ S[s6] ^ S2[s11] ^ k[15]
        k = rk[10]
        return bytes(
            (
                S[t0] ^ k[0],
                S[t5] ^ k[1],
                S[t10] ^ k[2],
                S[t15] ^ k[3],
                S[t4] ^ k[4],
                S[t9] ^ k[5],
                S[t14] ^ k[6],
                S[t3] ^ k[7],
                S[t8] ^ k[8],
                S[t13] ^ k[9],
                S[t2] ^ k[10],
                S[t7] ^ k[11],
                S[t12] ^ k[12],
                S[t1] ^ k[13],
                S[t6] ^ k[14],
                S[t11] ^ k[15],
            )
        )


def block_encryptor(key):
    """A function block -> E_key(block) for 16-byte blocks: the board's cryptolib if it has one, else AES128.

    Raises ValueError unless key is 16 bytes."""
    _check_key(key)
    lib = cryptolib
    if lib is not None:
        return lib.aes(bytes(key), _MODE_ECB).encrypt
    return AES128(key).encrypt
