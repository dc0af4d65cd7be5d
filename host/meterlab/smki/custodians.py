"""Split authority over the root CA (design.md, "Identities"): the secret that opens the root's keystore
(a file keystore's passphrase, or a PKCS#11 token's PIN) exists only as n custodians' shares, any k of
which rebuild it (Shamir's secret sharing, pycryptodome's). With fewer than k, no root operation can
happen: not by policy, but because nobody holds the secret.

A share is one line a custodian keeps, on paper or a token:

    meterlab-root-share:INDEX:FINGERPRINT:SHARE

FINGERPRINT names the root the share belongs to (the first 8 bytes of SHA-256 of the secret, in hex),
so a share of another SMKI is refused by name; the record kept beside the root (custodians.json) holds
the threshold, the count and a hash of each share, never a share.
"""
import hashlib
import hmac
import os

from Crypto.Protocol.SecretSharing import Shamir

PREFIX = "meterlab-root-share"
SECRET_BYTES = 16  # what pycryptodome's Shamir splits


class SplitAuthorityError(Exception):
    pass


def _fingerprint(secret):
    return hashlib.sha256(b"meterlab root secret" + secret).hexdigest()[:16]


def _share_hash(index, share):
    return hashlib.sha256(b"%d:" % index + share).hexdigest()


def split(threshold, custodians):
    """(secret, record, shares): a fresh secret, the record to keep, one share line per custodian."""
    if not 1 <= threshold <= custodians <= 255:
        raise SplitAuthorityError(f"need 1 <= threshold <= custodians <= 255, got {threshold} of {custodians}")
    secret = os.urandom(SECRET_BYTES)
    fingerprint = _fingerprint(secret)
    if threshold == 1:  # Shamir with k = 1 is every custodian holding the secret itself
        parts = [(i, secret) for i in range(1, custodians + 1)]
    else:
        parts = Shamir.split(threshold, custodians, secret, ssss=False)
    shares = [f"{PREFIX}:{index}:{fingerprint}:{share.hex()}" for index, share in parts]
    record = {"threshold": threshold, "custodians": custodians, "fingerprint": fingerprint,
              "share_hashes": {str(index): _share_hash(index, share) for index, share in parts}}
    return secret, record, shares


def parse_share(text):
    """(index, fingerprint, share bytes) of a share line; SplitAuthorityError if it is not one."""
    parts = text.strip().split(":")
    if len(parts) != 4 or parts[0] != PREFIX:
        raise SplitAuthorityError(f"not a meterlab root share (expected {PREFIX}:INDEX:FINGERPRINT:SHARE)")
    try:
        index = int(parts[1])
        share = bytes.fromhex(parts[3])
    except ValueError:
        raise SplitAuthorityError("a root share's index or value is malformed") from None
    if len(share) != SECRET_BYTES:
        raise SplitAuthorityError("a root share's value is not 16 bytes")
    return index, parts[2], share


def combine(record, share_lines):
    """The secret rebuilt from share_lines; SplitAuthorityError naming what is wrong: a share of another
    root, a share that does not match its custodian's record, the same custodian twice, or fewer than
    the threshold."""
    threshold = record["threshold"]
    valid = {}
    for line in share_lines:
        index, fingerprint, share = parse_share(line)
        if fingerprint != record["fingerprint"]:
            raise SplitAuthorityError(f"share {index} belongs to another root (fingerprint {fingerprint})")
        expected = record["share_hashes"].get(str(index))
        if expected is None or not hmac.compare_digest(expected, _share_hash(index, share)):
            raise SplitAuthorityError(f"share {index} is not custodian {index}'s share of this root")
        if index in valid:
            raise SplitAuthorityError(f"custodian {index}'s share was given twice")
        valid[index] = share
    if len(valid) < threshold:
        raise SplitAuthorityError(
            f"a root operation needs {threshold} of the {record['custodians']} custodians' shares; "
            f"{len(valid)} given")
    chosen = sorted(valid.items())[:threshold]
    secret = chosen[0][1] if threshold == 1 else Shamir.combine(chosen, ssss=False)
    if _fingerprint(secret) != record["fingerprint"]:
        raise SplitAuthorityError("the shares do not rebuild this root's secret")
    return secret
