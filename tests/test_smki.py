"""The SMKI on the host: keystores (file, and PKCS#11 on SoftHSM2), split authority over the root, the
certificate profile, and device CAs that destroy their key after their quota."""
import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from meterlab.smki import certificates
from meterlab.smki.authority import QuotaExhausted, Smki, SmkiError
from meterlab.smki.custodians import SplitAuthorityError
from meterlab.smki.keystore import (FileKeystore, KeyNotFound, KeystoreError, Pkcs11Keystore, find_pkcs11_module,
                                    load_public, verify)

SUPPLIER = bytes.fromhex("90b3d51f30010000")


def device_id(n):
    return bytes.fromhex("00db1234567890%02x" % n)


def verifies(issuer_der, der):
    issuer = x509.load_der_x509_certificate(issuer_der)
    certificate = x509.load_der_x509_certificate(der)
    try:
        certificate.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, Exception):
        return False


def fresh_key():
    return _public(ec.generate_private_key(ec.SECP256R1()))


def _public(private_key):
    numbers = private_key.public_key().public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


# ------------------------------------------------------------------------------------ keystores

def check_keystore(keystore):
    public = keystore.generate("k1")
    assert keystore.public_key("k1") == public and keystore.has("k1") and "k1" in keystore.labels()
    with pytest.raises(KeystoreError, match="exists"):
        keystore.generate("k1")
    signature = keystore.sign("k1", b"message")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    load_public(public).verify(der, b"message", ec.ECDSA(hashes.SHA256()))
    assert verify(public, b"message", signature) and not verify(public, b"messagE", signature)
    for bad in (None, signature[:63], bytes(64), bytes(32) + signature[32:]):
        assert not verify(public, b"message", bad)
    assert not verify(bytes(64), b"message", signature)
    peer = ec.generate_private_key(ec.SECP256R1())
    assert keystore.exchange("k1", _public(peer)) == peer.exchange(ec.ECDH(), load_public(public))
    with pytest.raises(KeystoreError, match="not a point"):
        keystore.exchange("k1", bytes(64))
    with pytest.raises(KeystoreError, match="label"):
        keystore.generate("../escape")
    keystore.destroy("k1")
    assert not keystore.has("k1")
    for operation in (lambda: keystore.sign("k1", b"x"), lambda: keystore.public_key("k1"),
                      lambda: keystore.destroy("k1")):
        with pytest.raises(KeyNotFound):
            operation()


def test_file_keystore(tmp_path):
    keystore = FileKeystore(tmp_path / "keys", "correct horse")
    check_keystore(keystore)
    keystore.generate("k2")
    assert (tmp_path / "keys" / "k2.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct((tmp_path / "keys" / "k2.key").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(KeystoreError, match="passphrase"):
        FileKeystore(tmp_path / "keys", "wrong").sign("k2", b"x")
    with pytest.raises(KeystoreError, match="passphrase"):
        FileKeystore(tmp_path / "other", "")


SOFTHSM_REASON = "SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)"
needs_softhsm = pytest.mark.skipif(not (shutil.which("softhsm2-util") and find_pkcs11_module()), reason=SOFTHSM_REASON)


@pytest.fixture(scope="session")
def softhsm_conf(tmp_path_factory):
    # One SoftHSM2 configuration for the whole run: the PKCS#11 library reads it once per process.
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


@pytest.fixture
def softhsm(softhsm_conf, request):
    """init_token(label, pin) -> the label made unique to this test, on a fresh token."""
    import pkcs11

    def init_token(label, pin):
        label = f"{label}-{request.node.name}"[:32]
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                        "--so-pin", "so-" + pin], check=True, capture_output=True)
        pkcs11.lib(find_pkcs11_module()).reinitialize()  # see the new token
        return label

    return init_token


@needs_softhsm
def test_pkcs11_keystore_on_softhsm(softhsm):
    lab = softhsm("lab", "1234")
    keystore = Pkcs11Keystore(find_pkcs11_module(), lab, "1234")
    try:
        check_keystore(keystore)
    finally:
        keystore.close()
    with pytest.raises(KeystoreError, match="PIN"):
        Pkcs11Keystore(find_pkcs11_module(), lab, "9999")
    with pytest.raises(KeystoreError, match="token"):
        Pkcs11Keystore(find_pkcs11_module(), "no-such-token", "1234")


# ------------------------------------------------------------------------------------- the SMKI

def check_smki(smki, shares):
    root = smki.certificate("root")
    organisation = smki.certificate("organisation-ca")
    infrastructure = smki.certificate("infrastructure-ca")
    assert verifies(root, root) and verifies(root, organisation)
    assert not verifies(root, infrastructure) and verifies(infrastructure, infrastructure)
    assert certificates.describe(root)["usage"] == "ca"

    # parties: meter-facing DS and KA from the organisation CA, DCC-facing from the infrastructure CA
    ds, ka, dcc = fresh_key(), fresh_key(), fresh_key()
    ds_der, ka_der = smki.certify_party("SUPPLIER A", 2, SUPPLIER, ds, ka)
    assert verifies(organisation, ds_der) and verifies(organisation, ka_der)
    for der, usage, key in ((ds_der, "ds", ds), (ka_der, "ka", ka)):
        described = certificates.describe(der)
        assert (described["usage"], described["role"], described["eui64"], described["public_key"]) == (
            usage, 2, SUPPLIER, key)
    dcc_der = smki.certify_dcc_facing("SUPPLIER A", 2, SUPPLIER, dcc)
    assert verifies(infrastructure, dcc_der) and not verifies(organisation, dcc_der)

    # split authority: fewer than the threshold, a share twice, a forged share: nothing happens
    threshold = smki.config["custodians"]["threshold"]
    forged = shares[0][:-2] + ("01" if shares[0].endswith("00") else "00")  # always a changed last byte
    for bad, message in ((shares[:threshold - 1], "needs"), ([shares[0]] * threshold, "twice"),
                         ([forged] + shares[1:threshold], "not custodian")):
        with pytest.raises(SplitAuthorityError, match=message):
            smki.create_device_ca("batch-1", 3, bad)
        assert not (smki.home / "device-cas" / "batch-1.json").exists()

    # a device CA with quota 3: three devices, then the key is gone and the fourth fails
    ca = smki.create_device_ca("batch-1", 3, shares[-threshold:])
    assert verifies(root, ca.certificate)
    for n in range(1, 4):
        assert ca.key_present
        ds_der, ka_der = ca.certify(device_id(n), fresh_key(), fresh_key())
        assert verifies(ca.certificate, ds_der) and verifies(ca.certificate, ka_der)
        assert certificates.describe(ds_der)["eui64"] == device_id(n)
        assert x509.load_der_x509_certificate(ds_der).subject == x509.Name([])
    assert not ca.key_present and ca.record == {"quota": 3, "devices": [device_id(n).hex() for n in (1, 2, 3)],
                                                "destroyed": True}
    assert "device-ca-batch-1" not in smki.keys.labels()
    with pytest.raises(QuotaExhausted, match="quota of 3 devices"):
        smki.device_ca("batch-1").certify(device_id(4), fresh_key(), fresh_key())
    with pytest.raises(SmkiError, match="exists"):
        smki.create_device_ca("batch-1", 3, shares[:threshold])


def test_file_smki(tmp_path):
    smki, shares = Smki.create(tmp_path / "smki", "operator secret", threshold=2, custodian_count=3)
    assert len(shares) == 3 and len(set(shares)) == 3
    check_smki(Smki.open(tmp_path / "smki", "operator secret"), shares)
    # no share is stored, and the root's key does not open with the operator's passphrase
    stored = b"".join(p.read_bytes() for p in (tmp_path / "smki").rglob("*") if p.is_file())
    assert not any(share.split(":")[-1].encode() in stored for share in shares)
    with pytest.raises(KeystoreError):
        FileKeystore(tmp_path / "smki" / "root-keys", "operator secret").sign("root-ca", b"x")
    with pytest.raises(SmkiError, match="holds an SMKI"):
        Smki.create(tmp_path / "smki", "x")
    with pytest.raises(SmkiError, match="no SMKI"):
        Smki.open(tmp_path / "nothing", "x")


@needs_softhsm
def test_pkcs11_smki_on_softhsm(tmp_path, softhsm):
    operator = softhsm("ca", "operator-pin")
    root = softhsm("root", "initial-root-pin")
    smki, shares = Smki.create(tmp_path / "smki", "operator-pin", threshold=3, custodian_count=5, backend="pkcs11",
                               pkcs11_module=find_pkcs11_module(), operator_token=operator,
                               root_token=root, root_token_pin="initial-root-pin")
    # the root token's PIN is now the custodians' secret: the initial one no longer opens it
    with pytest.raises(KeystoreError, match="PIN"):
        Pkcs11Keystore(find_pkcs11_module(), root, "initial-root-pin")
    assert not list((tmp_path / "smki").glob("keys")) and not list((tmp_path / "smki").glob("root-keys"))
    check_smki(Smki.open(tmp_path / "smki", "operator-pin"), shares)
