# Tests of meterfw.crypto.gcm and meterfw.crypto.aes that run unchanged under pytest and on MicroPython (a
# runner calls every test_* function): plain functions and asserts, no pytest, no files, no f-strings.
# Properties only; tests/test_crypto_symmetric_vectors.py holds the implementation to published vectors
# and tests/test_crypto_symmetric_properties.py to two other implementations. Each test stays within a
# few hundred milliseconds on the virtual board's MicroPython.
from meterfw.crypto import aes, gcm
from mpcheck import flip, pseudo_random_bytes, raised


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


KEY = pseudo_random_bytes(16, 1)
IV = pseudo_random_bytes(12, 2)


def test_round_trip_every_length_0_to_50():
    for n in range(51):
        plaintext = pseudo_random_bytes(n, 100 + n)
        aad = pseudo_random_bytes(n % 19, 300 + n)
        ciphertext, tag = gcm.encrypt(KEY, IV, plaintext, aad)
        assert isinstance(ciphertext, bytes) and isinstance(tag, bytes)
        assert len(ciphertext) == n and len(tag) == 16
        if n >= 8:
            assert ciphertext != plaintext
        assert gcm.decrypt(KEY, IV, ciphertext, aad, tag) == plaintext


def test_round_trip_longer_texts_other_iv_and_tag_lengths():
    cases = ((63, 1), (64, 8), (65, 16), (200, 17), (255, 60), (1000, 12))
    for i, (n, iv_length) in enumerate(cases):
        key = pseudo_random_bytes(16, 10 + i)
        iv = pseudo_random_bytes(iv_length, 20 + i)
        plaintext = pseudo_random_bytes(n, 30 + i)
        aad = pseudo_random_bytes(i * 7, 40 + i)
        tag_length = gcm.TAG_LENGTHS[i % len(gcm.TAG_LENGTHS)]
        ciphertext, tag = gcm.encrypt(key, iv, plaintext, aad, tag_length)
        assert len(ciphertext) == n and len(tag) == tag_length
        assert gcm.decrypt(key, iv, ciphertext, aad, tag) == plaintext


def test_ciphertext_is_plaintext_xor_a_keystream_of_key_and_iv():
    # CTR mode: the keystream does not depend on the plaintext, so ciphertexts of two plaintexts differ
    # by the plaintexts' difference, and a prefix of the plaintext encrypts to a prefix of the ciphertext.
    p1 = pseudo_random_bytes(40, 5)
    p2 = pseudo_random_bytes(40, 6)
    c1, _ = gcm.encrypt(KEY, IV, p1, b"")
    c2, _ = gcm.encrypt(KEY, IV, p2, b"aad does not matter")
    assert xor(c1, c2) == xor(p1, p2)
    for n in (1, 15, 16, 17, 33):
        assert gcm.encrypt(KEY, IV, p1[:n], b"")[0] == c1[:n]
    other_iv, _ = gcm.encrypt(KEY, flip(IV, 11), p1, b"")
    assert other_iv != c1


def test_tags_are_affine_in_ciphertext_and_aad():
    # GHASH is linear, and the tag is GHASH xor E(J0): so for texts of equal lengths, the xor of three
    # tags is the tag of the xor of the three texts (E(J0) and the length block appear an odd number of
    # times). A wrong multiplication in GF(2^128) would still pass a round trip, not this.
    p = [pseudo_random_bytes(37, 50 + i) for i in range(3)]
    a = [pseudo_random_bytes(21, 60 + i) for i in range(3)]
    p_sum = xor(xor(p[0], p[1]), p[2])
    a_sum = xor(xor(a[0], a[1]), a[2])
    tags = [gcm.encrypt(KEY, IV, p[i], a[0], 16)[1] for i in range(3)]
    assert xor(xor(tags[0], tags[1]), tags[2]) == gcm.encrypt(KEY, IV, p_sum, a[0], 16)[1]
    tags = [gcm.gmac(KEY, IV, a[i], 16) for i in range(3)]
    assert xor(xor(tags[0], tags[1]), tags[2]) == gcm.gmac(KEY, IV, a_sum, 16)


def test_shorter_tags_are_prefixes_of_the_full_tag():
    plaintext = pseudo_random_bytes(30, 7)
    aad = pseudo_random_bytes(5, 8)
    ciphertext, full = gcm.encrypt(KEY, IV, plaintext, aad, 16)
    for tag_length in gcm.TAG_LENGTHS:
        assert gcm.encrypt(KEY, IV, plaintext, aad, tag_length) == (ciphertext, full[:tag_length])
        assert gcm.decrypt(KEY, IV, ciphertext, aad, full[:tag_length]) == plaintext
        assert gcm.gmac(KEY, IV, aad, tag_length) == gcm.gmac(KEY, IV, aad, 16)[:tag_length]


def test_tampering_with_any_byte_is_rejected():
    plaintext = pseudo_random_bytes(21, 9)
    aad = pseudo_random_bytes(9, 10)
    ciphertext, tag = gcm.encrypt(KEY, IV, plaintext, aad, 12)
    for i in range(len(ciphertext)):
        raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, flip(ciphertext, i, 1 << (i % 8)), aad, tag)
    for i in range(len(aad)):
        raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext, flip(aad, i, 0x80 >> (i % 8)), tag)
    for i in range(len(tag)):
        raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext, aad, flip(tag, i, 1 << (i % 8)))
    # Bytes added or removed, the parts swapped, and another key or IV.
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext[:-1], aad, tag)
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext + b"\x00", aad, tag)
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext, aad + b"\x00", tag)
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, aad, ciphertext, tag)
    raised(gcm.InvalidTag, gcm.decrypt, flip(KEY, 0), IV, ciphertext, aad, tag)
    raised(gcm.InvalidTag, gcm.decrypt, KEY, flip(IV, 0), ciphertext, aad, tag)
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV + b"\x00", ciphertext, aad, tag)
    # The tag of the empty message does not pass for a message, nor the other way round.
    empty_tag = gcm.encrypt(KEY, IV, b"", aad, 12)[1]
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext, aad, empty_tag)
    raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, b"", aad, tag)
    assert gcm.decrypt(KEY, IV, ciphertext, aad, tag) == plaintext


def test_invalid_tag_is_a_value_error_with_a_message():
    assert issubclass(gcm.InvalidTag, ValueError)
    ciphertext, tag = gcm.encrypt(KEY, IV, b"reading", b"", 12)
    error = raised(gcm.InvalidTag, gcm.decrypt, KEY, IV, ciphertext, b"", flip(tag, 11))
    assert "tag" in str(error)


def test_gmac_is_the_tag_of_an_empty_plaintext():
    for i, aad_length in enumerate((0, 1, 15, 16, 17, 40, 200)):
        aad = pseudo_random_bytes(aad_length, 70 + i)
        iv = pseudo_random_bytes(12 if i % 3 else 8 + i, 80 + i)
        tag_length = gcm.TAG_LENGTHS[i % len(gcm.TAG_LENGTHS)]
        assert gcm.gmac(KEY, iv, aad, tag_length) == gcm.encrypt(KEY, iv, b"", aad, tag_length)[1]
        assert gcm.encrypt(KEY, iv, b"", aad, tag_length)[0] == b""
    aad = pseudo_random_bytes(50, 90)
    assert gcm.gmac(KEY, IV, aad) == gcm.encrypt(KEY, IV, b"", aad, 12)[1]  # GBCS: 12 bytes by default
    assert len(gcm.gmac(KEY, IV, aad)) == 12
    assert gcm.gmac(KEY, IV, aad) != gcm.gmac(KEY, IV, flip(aad, 49))
    assert gcm.decrypt(KEY, IV, b"", aad, gcm.gmac(KEY, IV, aad)) == b""


def test_counter_wraps_in_its_last_32_bits():
    # inc32 (SP 800-38D 6.2): the counter block's last 32 bits count modulo 2^32, the first 96 never
    # change. Reached here through J0 directly, as no short search finds an IV whose GHASH ends so.
    encrypt_block = aes.block_encryptor(KEY)
    prefix = pseudo_random_bytes(12, 11)
    data = pseudo_random_bytes(40, 12)
    out = gcm._gctr(encrypt_block, prefix + b"\xff\xff\xff\xfe", data)
    stream = (
        encrypt_block(prefix + b"\xff\xff\xff\xff")
        + encrypt_block(prefix + b"\x00\x00\x00\x00")
        + encrypt_block(prefix + b"\x00\x00\x00\x01")
    )
    assert out == xor(data, stream)


def test_pure_aes_and_the_default_path_agree():
    # On a board with cryptolib the default path is the board's AES; on CPython and the virtual board it
    # is the pure one, and tests/test_crypto_symmetric_vectors.py runs both.
    for i in range(8):
        key = pseudo_random_bytes(16, 200 + i)
        block = pseudo_random_bytes(16, 300 + i)
        assert aes.AES128(key).encrypt(block) == aes.block_encryptor(key)(block)
    plaintext = pseudo_random_bytes(45, 13)
    aad = pseudo_random_bytes(20, 14)
    default = (gcm.encrypt(KEY, IV, plaintext, aad, 12), gcm.gmac(KEY, IV[:8], aad))
    saved = aes.cryptolib
    aes.cryptolib = None
    try:
        pure = (gcm.encrypt(KEY, IV, plaintext, aad, 12), gcm.gmac(KEY, IV[:8], aad))
    finally:
        aes.cryptolib = saved
    assert pure == default


def test_aes_is_a_permutation_that_depends_on_every_key_byte():
    cipher = aes.AES128(KEY)
    outputs = [cipher.encrypt(pseudo_random_bytes(16, 400 + i)) for i in range(8)]
    outputs.append(cipher.encrypt(bytes(16)))
    assert len(set(outputs)) == len(outputs)
    block = bytes(16)
    reference = cipher.encrypt(block)
    for i in range(16):
        assert aes.AES128(flip(KEY, i, 0x80)).encrypt(block) != reference


def test_inputs_may_be_bytes_bytearray_or_memoryview():
    plaintext = pseudo_random_bytes(33, 15)
    aad = pseudo_random_bytes(17, 16)
    ciphertext, tag = gcm.encrypt(KEY, IV, plaintext, aad)
    for kind in (bytearray, memoryview):
        assert gcm.encrypt(kind(KEY), kind(IV), kind(plaintext), kind(aad)) == (ciphertext, tag)
        assert gcm.decrypt(kind(KEY), kind(IV), kind(ciphertext), kind(aad), kind(tag)) == plaintext
        assert gcm.gmac(kind(KEY), kind(IV), kind(aad)) == gcm.gmac(KEY, IV, aad)
        assert aes.AES128(kind(KEY)).encrypt(kind(IV + IV[:4])) == aes.AES128(KEY).encrypt(IV + IV[:4])


def test_bad_arguments_raise_value_error_saying_which():
    ciphertext, tag = gcm.encrypt(KEY, IV, b"x", b"")
    for length in (0, 15, 17, 24, 32):
        key = pseudo_random_bytes(length, 17)
        for error in (
            raised(ValueError, gcm.encrypt, key, IV, b"x", b""),
            raised(ValueError, gcm.decrypt, key, IV, ciphertext, b"", tag),
            raised(ValueError, gcm.gmac, key, IV, b""),
            raised(ValueError, aes.AES128, key),
            raised(ValueError, aes.block_encryptor, key),
        ):
            assert not isinstance(error, gcm.InvalidTag)
            assert "key" in str(error) and "16" in str(error)
    for error in (
        raised(ValueError, gcm.encrypt, KEY, b"", b"x", b""),
        raised(ValueError, gcm.decrypt, KEY, b"", ciphertext, b"", tag),
        raised(ValueError, gcm.gmac, KEY, b"", b""),
    ):
        assert not isinstance(error, gcm.InvalidTag)
        assert "IV" in str(error)
    for tag_length in (0, 1, 3, 5, 6, 7, 9, 10, 11, 17, 32):
        for error in (
            raised(ValueError, gcm.encrypt, KEY, IV, b"x", b"", tag_length),
            raised(ValueError, gcm.gmac, KEY, IV, b"", tag_length),
            raised(ValueError, gcm.decrypt, KEY, IV, ciphertext, b"", (tag * 2)[:tag_length]),
        ):
            assert not isinstance(error, gcm.InvalidTag)
            assert "tag length" in str(error)
    cipher = aes.AES128(KEY)
    for length in (0, 15, 17, 32):
        error = raised(ValueError, cipher.encrypt, bytes(length))
        assert "block" in str(error)
