"""Where the SMKI's and the parties' private keys live: a folder of encrypted files (the default) or a
PKCS#11 token (SoftHSM in a lab, a real HSM in production). Both offer the same few operations, and
none of them hands a private key out:

    generate(label) -> public key        a new P-256 key pair under label (KeystoreError if taken)
    public_key(label) -> public key      64 bytes x || y, the firmware's form
    sign(label, data) -> signature       ECDSA P-256 / SHA-256, 64 bytes r || s
    exchange(label, peer) -> Z           static ECDH with a 64-byte peer public key, 32 bytes
    destroy(label)                       wipe the key; later use raises KeyNotFound
    has(label), labels()

Labels are short names ([A-Za-z0-9._-], at most 64 characters).
"""
import hashlib
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CURVE = ec.SECP256R1()


class KeystoreError(Exception):
    pass


class KeyNotFound(KeystoreError):
    pass


def check_label(label):
    if not isinstance(label, str) or not _LABEL.match(label):
        raise KeystoreError(f"bad key label {label!r}: use 1 to 64 of A-Z a-z 0-9 . _ -")
    return label


def public_bytes(public_key):
    """A cryptography public key as 64 bytes x || y."""
    numbers = public_key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def verify(public_key, data, signature):
    """True if signature (64 bytes r || s) is an ECDSA P-256 / SHA-256 signature of data by public_key
    (64 bytes x || y); OpenSSL does the work (the host's crypto: design.md)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if signature is None or len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r and 0 < s):
        return False
    try:
        key = _loaded_public(bytes(public_key))
        key.verify(encode_dss_signature(r, s), bytes(data), _ECDSA_SHA256)
    except (InvalidSignature, KeystoreError):
        return False
    return True


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_LOADED = {}  # public key bytes -> OpenSSL key object: the DCC checks the same few users' keys all day


def _loaded_public(public_key):
    key = _LOADED.get(public_key)
    if key is None:
        key = load_public(public_key)
        if len(_LOADED) >= 4096:
            _LOADED.clear()
        _LOADED[public_key] = key
    return key


def load_public(public_key):
    """64 bytes x || y as a cryptography public key; KeystoreError if it is not a P-256 point."""
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != 64:
        raise KeystoreError("a public key is 64 bytes x || y")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, b"\x04" + bytes(public_key))
    except ValueError:
        raise KeystoreError("the public key is not a point on P-256") from None


class FileKeystore:
    """Keys in folder, one PKCS#8 file a key, encrypted with the passphrase (at rest: a copied folder
    without the passphrase is useless), and its public key beside it in the clear."""

    def __init__(self, folder, passphrase):
        if not passphrase:
            raise KeystoreError("a file keystore needs a passphrase")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self._passphrase = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)
        self._opened = {}  # label -> key object: opening an encrypted key costs a deliberate KDF
        self._public = {}

    def _paths(self, label):
        check_label(label)
        return self.folder / f"{label}.key", self.folder / f"{label}.pub"

    def has(self, label):
        return self._paths(label)[0].is_file()

    def labels(self):
        return sorted(path.name[:-4] for path in self.folder.glob("*.key"))

    def generate(self, label):
        key_path, pub_path = self._paths(label)
        if key_path.exists():
            raise KeystoreError(f"key {label!r} exists already")
        private_key = ec.generate_private_key(CURVE)
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(self._passphrase))
        public = public_bytes(private_key.public_key())
        _write_new(pub_path, public.hex().encode() + b"\n", 0o644)
        _write_new(key_path, pem, 0o600)
        return public

    def _private(self, label):
        cached = self._opened.get(label)
        if cached is not None:  # destroy() forgets it; nothing else removes a key
            return cached
        key_path, _ = self._paths(label)
        try:
            data = key_path.read_bytes()
        except FileNotFoundError:
            self._opened.pop(label, None)
            raise KeyNotFound(f"no key {label!r} in {self.folder}") from None
        try:
            key = serialization.load_pem_private_key(data, self._passphrase)
        except (ValueError, TypeError):
            raise KeystoreError(f"key {label!r} does not open with this passphrase") from None
        self._opened[label] = key
        return key

    def public_key(self, label):
        cached = self._public.get(label)
        if cached is not None:  # destroy() forgets it; nothing else removes a key
            return cached
        _, pub_path = self._paths(label)
        try:
            public = bytes.fromhex(pub_path.read_text().strip())
        except FileNotFoundError:
            self._public.pop(label, None)
            raise KeyNotFound(f"no key {label!r} in {self.folder}") from None
        self._public[label] = public
        return public

    def sign(self, label, data):
        der = self._private(label).sign(bytes(data), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def exchange(self, label, peer_public_key):
        return self._private(label).exchange(ec.ECDH(), load_public(peer_public_key))

    def destroy(self, label):
        """Overwrite the key file, then remove it (and its public half)."""
        key_path, pub_path = self._paths(label)
        if not key_path.exists():
            raise KeyNotFound(f"no key {label!r} in {self.folder}")
        size = key_path.stat().st_size
        with open(key_path, "r+b") as f:
            f.write(os.urandom(size))
            f.flush()
            os.fsync(f.fileno())
        key_path.unlink()
        pub_path.unlink(missing_ok=True)
        self._opened.pop(label, None)
        self._public.pop(label, None)


def _write_new(path, data, mode):
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


DEFAULT_PKCS11_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                          "/usr/local/lib/softhsm/libsofthsm2.so")


def find_pkcs11_module():
    """The first SoftHSM2 module found on this machine, or None."""
    for candidate in DEFAULT_PKCS11_MODULES:
        if Path(candidate).is_file():
            return candidate
    return None


class Pkcs11Keystore:
    """Keys on a PKCS#11 token: they are made on the token, marked sensitive and not extractable, and
    used there (CKM_ECDSA over a SHA-256 digest, CKM_ECDH1_DERIVE); destroy() deletes the objects."""

    def __init__(self, module, token_label, pin):
        import pkcs11

        self._pkcs11 = pkcs11
        try:
            lib = pkcs11.lib(str(module))
            token = lib.get_token(token_label=token_label)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as error:
            raise KeystoreError(f"PKCS#11 token {token_label!r} in {module}: {type(error).__name__} {error}") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.UserAlreadyLoggedIn:
            # PKCS#11 logs in per application and token: another session of this process already did
            self._session = token.open(rw=True)
        except pkcs11.PKCS11Error as error:
            raise KeystoreError(f"PKCS#11 token {token_label!r} refused the PIN: {type(error).__name__}") from None
        self.token_label = token_label

    def close(self):
        self._session.close()

    def _key(self, label, object_class):
        check_label(label)
        keys = list(self._session.get_objects({self._pkcs11.Attribute.LABEL: label,
                                               self._pkcs11.Attribute.CLASS: object_class}))
        if not keys:
            raise KeyNotFound(f"no key {label!r} on token {self.token_label!r}")
        return keys[0]

    def has(self, label):
        try:
            self._key(label, self._pkcs11.ObjectClass.PRIVATE_KEY)
            return True
        except KeyNotFound:
            return False

    def labels(self):
        from pkcs11 import Attribute, ObjectClass

        return sorted({obj[Attribute.LABEL] for obj in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})})

    def generate(self, label):
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        if self.has(label):
            raise KeystoreError(f"key {label!r} exists already")
        parameters = self._session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        parameters.generate_keypair(store=True, label=label, private_template={
            Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
        return self.public_key(label)

    def public_key(self, label):
        from asn1crypto.core import OctetString
        from pkcs11 import Attribute

        point = OctetString.load(self._key(label, self._pkcs11.ObjectClass.PUBLIC_KEY)[Attribute.EC_POINT]).native
        if len(point) != 65 or point[0] != 4:
            raise KeystoreError(f"key {label!r}: unexpected EC point encoding on the token")
        return point[1:]

    def sign(self, label, data):
        from pkcs11 import Mechanism

        digest = hashlib.sha256(bytes(data)).digest()
        return self._key(label, self._pkcs11.ObjectClass.PRIVATE_KEY).sign(digest, mechanism=Mechanism.ECDSA)

    def exchange(self, label, peer_public_key):
        from pkcs11 import KDF, Attribute, KeyType

        load_public(peer_public_key)  # refuse a point off the curve before the token sees it
        secret = self._key(label, self._pkcs11.ObjectClass.PRIVATE_KEY).derive_key(
            KeyType.GENERIC_SECRET, 256, mechanism_param=(KDF.NULL, None, b"\x04" + bytes(peer_public_key)),
            template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True, Attribute.TOKEN: False})
        return secret[Attribute.VALUE]

    def destroy(self, label):
        private = self._key(label, self._pkcs11.ObjectClass.PRIVATE_KEY)
        public = self._key(label, self._pkcs11.ObjectClass.PUBLIC_KEY)
        private.destroy()
        public.destroy()
