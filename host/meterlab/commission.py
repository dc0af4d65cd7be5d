"""Commissioning a board (design.md, "Identities: SMKI and commissioning"; property 7), host side:

    1. IDENTIFY: the board says what it is and whether it can make keys (a random source)
    2. KEYGEN: it makes its own DS and KA key pairs and shows the public halves (a board without a
       usable RNG gets keys made here and sent once: INJECT, the weaker path)
    3. a device CA certifies them (its quota counts down; after the last device its key is destroyed)
    4. ROOT and ANCHOR: the SMKI root, then the recovery, ACB, transitional CoS and WAN provider anchors,
       each from its party's certificates, which the board checks against the root
    5. FINISH: the board takes its role and signs what it installed with its new DS key; the
       signature is checked against the certificate the device CA just issued
    6. the DCC registers the device

A board refuses all of this once it is commissioned.
"""
import hashlib

from cryptography.hazmat.primitives.asymmetric import ec

from meterfw import commissioning, roles, store
from meterfw import link_host as link
from meterfw.crypto import p256
from meterlab.smki import certificates
from meterlab.smki.keystore import public_bytes


class CommissioningFailed(Exception):
    pass


def _root_anchor(root_key):
    return (bytes(8), root_key, root_key)


def expected_confirmation(device_id, anchors):
    """What the board signs at FINISH, rebuilt from {role: (party ID, DS key, KA key)}."""
    digest = hashlib.sha256()
    for role in commissioning.INITIAL_ROLES:
        party_id, ds, ka = anchors[role]
        digest.update(bytes((role,)) + party_id + ds + ka)
    return commissioning.CONFIRMATION + bytes(device_id) + digest.digest()


def commission(client, smki, device_ca, dcc_parties, register, role, suite="gbcs", device_id=None,
               progress=print):
    """Commission the board behind client as role; returns the device's registered record."""
    if role not in commissioning.BOARD_ROLES:
        raise CommissioningFailed(f"unknown role {role!r}: one of {', '.join(commissioning.BOARD_ROLES)}")
    state, has_rng, hardware_id, _ = client.identify()
    if state == commissioning.COMMISSIONED:
        raise CommissioningFailed("the board is commissioned already (it refuses to be commissioned again)")
    device_id = hardware_id if device_id is None else bytes(device_id)
    if len(device_id) != 8 or device_id == bytes(8):
        raise CommissioningFailed("the board has no hardware ID: give its device ID (--device-id, 16 hex digits)")
    if register.device(device_id) is not None:
        raise CommissioningFailed(f"device {device_id.hex()} is in the DCC's register already")
    suite_index = store.SUITES.index(suite)
    if has_rng:
        progress(f"  keys: the board makes its DS and KA key pairs (device {device_id.hex()})")
        ds_key, ka_key = client.keygen(device_id, suite_index)
    else:
        progress("  keys: the board has no usable random source; keys made here and injected once")
        private = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
        ds_key, ka_key = client.inject(device_id, suite_index,
                                       *(k.private_numbers().private_value.to_bytes(32, "big") for k in private))
        if (ds_key, ka_key) != tuple(public_bytes(k.public_key()) for k in private):
            raise CommissioningFailed("the board's public keys do not match the injected ones")
    progress(f"  certificates: device CA {device_ca.name!r} certifies the DS and KA keys")
    ds_certificate, ka_certificate = device_ca.certify(device_id, ds_key, ka_key)
    root_key = smki.root_public_key()
    organisation = smki.certificate("organisation-ca")
    progress("  anchors: root")
    client.commission_step(link.STEP_ROOT, root_key)
    anchors = {roles.ROOT: _root_anchor(root_key)}
    for anchor_role, party in sorted(dcc_parties.items()):
        progress(f"  anchors: {roles.NAMES[anchor_role]} ({party.eui64.hex()})")
        body = bytes((anchor_role,)) + link.lengths_prefixed(
            organisation, party.certificate("meter-ds"), party.certificate("meter-ka"))
        client.commission_step(link.STEP_ANCHOR, body)
        anchors[anchor_role] = party.anchor()
    signature = client.commission_step(link.STEP_FINISH, bytes((commissioning.BOARD_ROLES.index(role),)))
    described = certificates.describe(ds_certificate)
    if not p256.verify(described["public_key"], expected_confirmation(device_id, anchors), signature):
        raise CommissioningFailed("the board's confirmation does not verify with its new DS certificate")
    register.register(device_id, role, ds_certificate, ka_certificate, device_ca.name)
    progress(f"  registered with the DCC: device {device_id.hex()} as {role}")
    return register.device(device_id)


def commission_site(boards, smki, device_ca, dcc_parties, register, timeout=30.0):
    """Commission started virtual boards {role: board} (a comms hub "chf" and its meters), pairing the gas
    meter with its hub over the HAN; {role: device ID}."""
    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    ids = {}
    for role, board in boards.items():
        with BoardConnection(board.url, timeout=timeout) as connection:
            client = BoardClient(connection)
            ids[role] = commission(client, smki, device_ca, dcc_parties, register, role,
                                   progress=lambda *_: None)["eui64"]
            if role in ("chf", "gsme") and "chf" in boards and "gsme" in boards:
                client.han_pair(boards["gsme" if role == "chf" else "chf"].address)
    return ids
