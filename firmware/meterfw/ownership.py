"""Credential replacement (GBCS CS02b): how a meter changes whom it trusts (design.md, "Ownership: change
of supplier"; property 10). Sans-I/O.

The commands reach this module only through the security pipeline: MAC'd by the ACB, fresh, signed by
the originating role's DS anchor and allowed to that role by the authorisation table. What the table
cannot say is checked here, as the pipeline's validator, before anything is written:

    code    name                                 originator          may replace
    0x0102  supplierBySupplier                   supplier (owner)    supplier
    0x0103  networkOperatorByNetworkOperator     network operator    network operator
    0x0105  WANProviderByWANProvider             WAN provider        WAN provider
    0x0106  transCoSByTransCoS                   transitional CoS    transitional CoS
    0x0107  supplierByTransCoS                   transitional CoS    supplier
    0x0108  anyExceptAbnormalRootByRecovery      recovery            any role but the root

Payload (our compact encoding, one encoding per value):

    target role (1) || counter floor (8, big endian) || CA certificate || DS certificate || KA certificate

each certificate as length (2, big endian) || DER. The new party's certificates must pass
meterfw.credentials against the root anchor: chain, key usage, role (the target), meter-facing policy.
The target's anchor is then replaced in one atomic write that carries the counter floor (meterfw.store):
a power cut leaves the old party or the new one anchored, never neither. The response is signed by the
device (the table marks these codes critical): STATUS_OK || target role.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


import meterfw
from meterfw import authorisation, der, endpoint, pipeline, roles

_ALL_BUT_ROOT = (roles.RECOVERY, roles.SUPPLIER, roles.NETWORK_OPERATOR, roles.ACCESS_CONTROL_BROKER,
                 roles.TRANSITIONAL_COS, roles.WAN_PROVIDER, roles.ISSUING_AUTHORITY, roles.OTHER)

# message code -> the roles its payload may name as target
TARGETS = {
    authorisation.CREDENTIALS_SUPPLIER_BY_SUPPLIER: (roles.SUPPLIER,),
    authorisation.CREDENTIALS_NO_BY_NO: (roles.NETWORK_OPERATOR,),
    authorisation.CREDENTIALS_WAN_BY_WAN: (roles.WAN_PROVIDER,),
    authorisation.CREDENTIALS_TRANSCOS_BY_TRANSCOS: (roles.TRANSITIONAL_COS,),
    authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS: (roles.SUPPLIER,),
    authorisation.CREDENTIALS_ANY_BY_RECOVERY: _ALL_BUT_ROOT,
}

_FLOOR_LIMIT = 1 << 64  # counters are 8 bytes


def encode_payload(target_role, floor, ca_der, ds_der, ka_der):
    """The CS02b payload, in DER (meterfw.der): SEQUENCE { target role, counter floor, the organisation
    CA's certificate, the new party's DS and KA certificates (each an OCTET STRING of its DER) }. The host
    builds commands with it."""
    return der.encode((target_role, floor, bytes(ca_der), bytes(ds_der), bytes(ka_der)))


def decode_payload(payload):
    """(target role, floor, ca, ds, ka), or None when the payload is not exactly that."""
    try:
        fields = meterfw.decoded(payload, int, int, bytes, bytes, bytes)
    except ValueError:
        return None
    if not 0 <= fields[0] <= 0xFF or not 0 <= fields[1] < _FLOOR_LIMIT:
        return None
    return tuple(fields)


_REASONS = {
    "certificate": pipeline.REJECT_CERTIFICATE,
    "chain": pipeline.REJECT_CERTIFICATE_CHAIN,
    "usage": pipeline.REJECT_KEY_USAGE,
    "role": pipeline.REJECT_CERTIFICATE_ROLE,
}


class CredentialUpdater:
    """validate() is the pipeline's validator; execute() replaces the anchor for an accepted command."""

    def __init__(self, anchors, counters):
        self.anchors = anchors
        self.counters = counters
        self.replaced = 0

    def handles(self, message_code):
        return message_code in TARGETS

    def validate(self, message, role, rule):
        """(pipeline.ACCEPT, plan) or (a reject reason, None). Not a CS02b code: (ACCEPT, None)."""
        targets = TARGETS.get(message.message_code)
        if targets is None:
            return pipeline.ACCEPT, None
        fields = decode_payload(message.payload)
        if fields is None:
            return pipeline.REJECT_BAD_PAYLOAD, None
        target, floor, ca, ds, ka = fields
        if target not in targets:
            return pipeline.REJECT_BAD_PAYLOAD, None
        root = self.anchors.anchor(roles.ROOT)
        if root is None:
            return pipeline.REJECT_CERTIFICATE_CHAIN, None
        from meterfw import credentials

        try:
            party_id, ds_key, ka_key = credentials.check_party(target, ca, ds, ka, root[1])
        except credentials.CredentialError as error:
            return _REASONS.get(error.kind, pipeline.REJECT_CERTIFICATE), None
        finally:
            credentials = None
            meterfw.unload("credentials", "x509")  # rare; their RAM is wanted back at once
        holder = self.anchors.role_of(party_id)
        if holder is not None and holder != target:  # one party, one role
            return pipeline.REJECT_BAD_PAYLOAD, None
        return pipeline.ACCEPT, (target, party_id, ds_key, ka_key, floor)

    def execute(self, decision):
        target, party_id, ds_key, ka_key, floor = decision.plan
        self.anchors.install(target, party_id, ds_key, ka_key, floor, self.counters)
        self.replaced += 1
        return endpoint.answer(endpoint.STATUS_OK, target)
