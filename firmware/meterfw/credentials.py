"""Checking a party's certificates before their keys become a trust anchor (design.md, "Identities" and
"Ownership"). Commissioning installs the initial anchors with it, and the credential-replacement
commands (CS02b) the new owner's: the same checks either way, so no anchor enters a meter any other way.

    party_id, ds_key, ka_key = check_party(role, ca_der, ds_der, ka_der, root_key)

The DS and KA certificates must both be issued by the CA certificate ca_der, which the root anchor's key
must have issued (meterfw.x509.verify_chain); they must be meter-facing organisation certificates (the
SMKI's organisation policy: a DCC-facing certificate chains to another root and is refused anyway),
carry the role they are to anchor in their subject, name the same party (EUI-64), and have the right key
usage: digital signature for DS, key agreement for KA. CredentialError (an x509.CertificateError, with a
reason) for the first check that fails.
"""

from meterfw import x509

# The SMKI's organisation certificate policy, 1.2.826.0.1.8641679.1.2.1.4 (OID content bytes).
ORGANISATION_POLICY = b"\x2a\x86\x3a\x00\x01\x84\x8f\xb9\x0f\x01\x02\x01\x04"


# What a CredentialError is about (its .kind): the pipeline turns each into its own reject reason.
CERTIFICATE = "certificate"
CHAIN = "chain"
USAGE = "usage"
ROLE = "role"


class CredentialError(x509.CertificateError):
    def __init__(self, reason, kind=CERTIFICATE):
        super().__init__(reason)
        self.kind = kind


def _leaf(der, usage, role, what):
    try:
        cert = x509.parse(der)
    except x509.CertificateError as error:
        raise CredentialError(what + " certificate: " + error.reason)
    if cert.is_ca:
        raise CredentialError(what + " certificate is a CA certificate")
    if cert.key_usage != usage:
        raise CredentialError("wrong key usage in the " + what + " certificate", USAGE)
    if cert.role != role:
        raise CredentialError("wrong role in the " + what + " certificate", ROLE)
    if cert.policy != ORGANISATION_POLICY:
        raise CredentialError(what + " certificate is not a meter-facing organisation certificate")
    if cert.entity_id is None:
        raise CredentialError(what + " certificate names no party")
    return cert


def check_party(role, ca_der, ds_der, ka_der, root_key):
    """(party_id, ds_public_key, ka_public_key) from certificates that pass every check; else
    CredentialError. The cheap field checks of both leaves come before any signature work."""
    ds = _leaf(ds_der, x509.KU_DIGITAL_SIGNATURE, role, "DS")
    ka = _leaf(ka_der, x509.KU_KEY_AGREEMENT, role, "KA")
    if ds.entity_id != ka.entity_id:
        raise CredentialError("the DS and KA certificates name different parties")
    try:
        ca = x509.parse(ca_der)
        x509.verify_chain(ds, [ca], root_key)
        x509.verify_chain(ka, [ca], root_key)
    except x509.CertificateError as error:
        raise CredentialError("certificate chain: " + error.reason, CHAIN)
    return bytes(ds.entity_id), bytes(ds.public_key), bytes(ka.public_key)
