"""The SMKI's certificate authorities (design.md, "Identities: SMKI and commissioning").

    root CA             self-signed; its key opens only with k of n custodians' shares (custodians.py)
    organisation CA     issued by the root; certifies parties' meter-facing DS and KA keys
    device CAs          issued by the root, each with a quota of devices; after the last one its key is
                        destroyed, and any later request fails
    infrastructure CA   a separate self-signed root for the parties' DCC-facing keys: no meter holds it,
                        so a DCC-facing key can never become a meter's trust anchor (property 5)

Everything lives in one folder, the SMKI's home:

    smki.json           backend, custodian record (threshold, count, share hashes, fingerprint)
    root.pem, organisation-ca.pem, infrastructure-ca.pem
    device-cas/NAME.pem, device-cas/NAME.json   quota, devices issued, whether the key is destroyed
    keys/               the operator's file keystore (organisation, infrastructure and device CA keys)
    root-keys/          the root's own file keystore, whose passphrase is the custodians' secret

With the PKCS#11 backend the two keystores are two tokens instead: the operator's (its PIN is the
operator passphrase) and the root's, whose PIN `Smki.create` replaces by the custodians' secret.
"""
import json
import os
from pathlib import Path

from cryptography import x509 as pyca_x509

from meterlab.smki import certificates, custodians
from meterlab.smki.keystore import FileKeystore, KeyNotFound, KeystoreError, Pkcs11Keystore

ROOT_LABEL = "root-ca"
ORGANISATION_LABEL = "organisation-ca"
INFRASTRUCTURE_LABEL = "infrastructure-ca"


class SmkiError(Exception):
    pass


class QuotaExhausted(SmkiError):
    pass


def _write_json(path, value):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_bytes(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def pem(der):
    from cryptography.hazmat.primitives.serialization import Encoding

    return pyca_x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def read_certificate(path):
    data = Path(path).read_bytes()
    if data.startswith(b"-----BEGIN"):
        from cryptography.hazmat.primitives.serialization import Encoding

        return pyca_x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return data


class Smki:
    def __init__(self, home, config, operator_keystore, passphrase):
        self.home = Path(home)
        self.config = config
        self.keys = operator_keystore
        self._passphrase = passphrase

    # --------------------------------------------------------------------------------- create, open

    @classmethod
    def create(cls, home, passphrase, *, threshold=2, custodian_count=3, backend="file", pkcs11_module=None,
               operator_token=None, root_token=None, root_token_pin=None):
        """A new SMKI in home (which must not hold one): root, organisation and infrastructure CAs.
        Returns (smki, shares): hand each custodian one share line; they are not stored anywhere."""
        home = Path(home)
        if (home / "smki.json").exists():
            raise SmkiError(f"{home} holds an SMKI already")
        if backend not in ("file", "pkcs11"):
            raise SmkiError("backend must be 'file' or 'pkcs11'")
        secret, record, shares = custodians.split(threshold, custodian_count)
        home.mkdir(parents=True, exist_ok=True)
        (home / "device-cas").mkdir(exist_ok=True)
        config = {"backend": backend, "custodians": record}
        if backend == "pkcs11":
            if not (pkcs11_module and operator_token and root_token and root_token_pin):
                raise SmkiError("the pkcs11 backend needs the module, the operator and root token labels and the "
                                "root token's initial PIN")
            config["pkcs11"] = {"module": str(pkcs11_module), "operator_token": operator_token,
                                "root_token": root_token}
            # From now on nobody knows the root token's PIN: it is the custodians' secret.
            root = Pkcs11Keystore(pkcs11_module, root_token, root_token_pin)
            root._session.set_pin(root_token_pin, secret.hex())
            root.close()
        smki = cls(home, config, cls._operator_keystore(home, config, passphrase), passphrase)
        with smki._root_keystore(secret) as root_keys:
            root_public = root_keys.generate(ROOT_LABEL)
            root_name = certificates.ca_name("meterlab root CA")
            root_der = certificates.build(subject=root_name, subject_key=root_public, issuer_name=root_name,
                                          issuer_key=root_public, keystore=root_keys, issuer_label=ROOT_LABEL,
                                          ca=True, policy=certificates.ORGANISATION_POLICY)
            _write_bytes(home / "root.pem", pem(root_der))
            organisation = smki.keys.generate(ORGANISATION_LABEL)
            der = certificates.build(subject=certificates.ca_name("meterlab organisation CA"), subject_key=organisation,
                                     issuer_name=root_name, issuer_key=root_public, keystore=root_keys,
                                     issuer_label=ROOT_LABEL, ca=True, policy=certificates.ORGANISATION_POLICY)
            _write_bytes(home / "organisation-ca.pem", pem(der))
        infrastructure = smki.keys.generate(INFRASTRUCTURE_LABEL)
        name = certificates.ca_name("meterlab infrastructure CA")
        der = certificates.build(subject=name, subject_key=infrastructure, issuer_name=name, issuer_key=infrastructure,
                                 keystore=smki.keys, issuer_label=INFRASTRUCTURE_LABEL, ca=True,
                                 policy=certificates.INFRASTRUCTURE_POLICY)
        _write_bytes(home / "infrastructure-ca.pem", pem(der))
        _write_json(home / "smki.json", config)
        return smki, shares

    @classmethod
    def open(cls, home, passphrase):
        home = Path(home)
        try:
            config = json.loads((home / "smki.json").read_text())
        except FileNotFoundError:
            raise SmkiError(f"no SMKI in {home} (create one with `meterlab smki init`)") from None
        return cls(home, config, cls._operator_keystore(home, config, passphrase), passphrase)

    @staticmethod
    def _operator_keystore(home, config, passphrase):
        if config["backend"] == "pkcs11":
            settings = config["pkcs11"]
            return Pkcs11Keystore(settings["module"], settings["operator_token"], passphrase)
        return FileKeystore(Path(home) / "keys", passphrase)

    class _RootSession:
        def __init__(self, keystore):
            self.keystore = keystore

        def __enter__(self):
            return self.keystore

        def __exit__(self, *exc):
            if isinstance(self.keystore, Pkcs11Keystore):
                self.keystore.close()

    def _root_keystore(self, secret):
        if self.config["backend"] == "pkcs11":
            settings = self.config["pkcs11"]
            return self._RootSession(Pkcs11Keystore(settings["module"], settings["root_token"], secret.hex()))
        return self._RootSession(FileKeystore(self.home / "root-keys", secret.hex()))

    def root_operation(self, shares):
        """The root's keystore, opened with the custodians' shares (SplitAuthorityError when fewer than
        the threshold, or a wrong one, are given). Use as a context manager."""
        return self._root_keystore(custodians.combine(self.config["custodians"], shares))

    # ------------------------------------------------------------------------------- certificates

    def certificate(self, name):
        """The DER of root, organisation-ca or infrastructure-ca."""
        return read_certificate(self.home / f"{name}.pem")

    def root_public_key(self):
        return certificates.describe(self.certificate("root"))["public_key"]

    def _issue(self, issuer, label, **fields):
        issuer_der = self.certificate(issuer)
        issuer_certificate = pyca_x509.load_der_x509_certificate(issuer_der)
        return certificates.build(issuer_name=issuer_certificate.subject,
                                  issuer_key=certificates.describe(issuer_der)["public_key"],
                                  keystore=self.keys, issuer_label=label, **fields)

    def certify_party(self, name, role, eui64, ds_public_key, ka_public_key):
        """(DS certificate, KA certificate) for a party's meter-facing keys, by the organisation CA."""
        subject = certificates.party_name(name, role, eui64)
        return tuple(self._issue("organisation-ca", ORGANISATION_LABEL, subject=subject, subject_key=key, usage=usage,
                                 policy=certificates.ORGANISATION_POLICY)
                     for usage, key in ((certificates.DS, ds_public_key), (certificates.KA, ka_public_key)))

    def certify_dcc_facing(self, name, role, eui64, ds_public_key):
        """The certificate of a party's DCC-facing signing key, by the infrastructure CA."""
        return self._issue("infrastructure-ca", INFRASTRUCTURE_LABEL, subject=certificates.party_name(name, role, eui64),
                           subject_key=ds_public_key, usage=certificates.DS, policy=certificates.INFRASTRUCTURE_POLICY)

    # --------------------------------------------------------------------------------- device CAs

    def create_device_ca(self, name, quota, shares):
        """A device CA that may certify quota devices, issued by the root (a root operation)."""
        certificates_dir = self.home / "device-cas"
        if not name or not name.replace("-", "").isalnum():
            raise SmkiError(f"bad device CA name {name!r}: letters, digits and -")
        if (certificates_dir / f"{name}.json").exists():
            raise SmkiError(f"device CA {name!r} exists already")
        if not isinstance(quota, int) or quota < 1:
            raise SmkiError("a device CA's quota is a whole number of devices, at least 1")
        label = f"device-ca-{name}"
        with self.root_operation(shares) as root_keys:
            public = self.keys.generate(label)
            root_der = self.certificate("root")
            der = certificates.build(subject=certificates.ca_name(f"meterlab device CA {name}"), subject_key=public,
                                     issuer_name=pyca_x509.load_der_x509_certificate(root_der).subject,
                                     issuer_key=certificates.describe(root_der)["public_key"], keystore=root_keys,
                                     issuer_label=ROOT_LABEL, ca=True, policy=certificates.DEVICE_POLICY)
        _write_bytes(certificates_dir / f"{name}.pem", pem(der))
        _write_json(certificates_dir / f"{name}.json", {"quota": quota, "devices": [], "destroyed": False})
        return DeviceCA(self, name)

    def device_ca(self, name):
        if not (self.home / "device-cas" / f"{name}.json").exists():
            raise SmkiError(f"no device CA {name!r} in {self.home}")
        return DeviceCA(self, name)


class DeviceCA:
    """One device CA: certifies a device's DS and KA keys, quota devices in all, then destroys its key."""

    def __init__(self, smki, name):
        self.smki = smki
        self.name = name
        self.label = f"device-ca-{name}"
        self._record_path = smki.home / "device-cas" / f"{name}.json"

    @property
    def record(self):
        return json.loads(self._record_path.read_text())

    @property
    def certificate(self):
        return read_certificate(self.smki.home / "device-cas" / f"{self.name}.pem")

    def certify(self, eui64, ds_public_key, ka_public_key):
        """(DS certificate, KA certificate) for device eui64. The quota slot is taken (and recorded)
        before signing, so a crash can lose a slot but never grant one more; after the last slot the
        key is destroyed. QuotaExhausted once it is."""
        return self.certify_many([(eui64, ds_public_key, ka_public_key)])[0]

    def certify_many(self, devices):
        """certify() for each (eui64, DS public key, KA public key) of devices, with their quota slots
        taken in one write of the record: an estate of thousands at once. All or none: QuotaExhausted if
        they do not all fit, SmkiError if one was certified already or is named twice."""
        record = self.record
        wanted = [eui64.hex() for eui64, _, _ in devices]
        if record["destroyed"] or len(record["devices"]) + len(wanted) > record["quota"]:
            raise QuotaExhausted(
                f"device CA {self.name!r} has issued {len(record['devices'])} of its quota of {record['quota']} "
                f"devices{' and its key was destroyed' if record['destroyed'] else ''}: {len(wanted)} more "
                f"{'does' if len(wanted) == 1 else 'do'} not fit; create another device CA (a root operation) "
                f"to commission more")
        issued_before = set(record["devices"])
        for name in wanted:
            if name in issued_before:
                raise SmkiError(f"device {name} was certified by {self.name!r} already")
            issued_before.add(name)
        if len(set(wanted)) != len(wanted):
            raise SmkiError("a device is named twice")
        record["devices"].extend(wanted)
        _write_json(self._record_path, record)
        issuer_der = self.certificate
        issuer_name = pyca_x509.load_der_x509_certificate(issuer_der).subject
        issuer_key = certificates.describe(issuer_der)["public_key"]
        issued = [tuple(
            certificates.build(subject=pyca_x509.Name([]), subject_key=key, issuer_name=issuer_name,
                               issuer_key=issuer_key, keystore=self.smki.keys, issuer_label=self.label, usage=usage,
                               eui64=eui64, policy=certificates.DEVICE_POLICY)
            for usage, key in ((certificates.DS, ds_public_key), (certificates.KA, ka_public_key)))
            for eui64, ds_public_key, ka_public_key in devices]
        if len(record["devices"]) >= record["quota"]:
            self._destroy()
        return issued

    def _destroy(self):
        try:
            self.smki.keys.destroy(self.label)
        except KeyNotFound:
            pass
        record = self.record
        record["destroyed"] = True
        _write_json(self._record_path, record)

    @property
    def key_present(self):
        try:
            return self.smki.keys.has(self.label)
        except KeystoreError:
            return False
