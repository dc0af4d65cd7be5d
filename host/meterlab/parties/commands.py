"""GBCS commands as the parties build them (design.md, "The wire"): the originator's counter, its
signature with its meter-facing DS key on critical commands (the DCC never holds that key), and the
ACB's MAC with Z = ECDH(ACB KA key, device KA key) on every command: the step the DCC performs for each
command it routes (here done directly until the DCC routes them).

Counters: each party keeps its own in its folder (`counter`), persisted before a command is built, so a
crash never reuses one; a new counter is above both the last one and the time in milliseconds, as GBCS
originator counters are.
"""
import os
import time

from meterfw import authorisation, gbcs, ownership, roles
from meterlab import hostcrypto
from meterlab.smki import certificates
from meterlab.smki.keystore import verify
from meterlab.smki.parties import METER_DS, METER_KA


class CommandError(Exception):
    pass


def next_counter(party):
    path = party.folder / "counter"
    try:
        last = int(path.read_text())
    except FileNotFoundError:
        last = 0
    counter = max(last + 1, int(time.time() * 1000))
    tmp = path.with_name("counter.tmp")
    tmp.write_text(str(counter))
    os.replace(tmp, path)
    return counter


def last_counter(party):
    try:
        return int((party.folder / "counter").read_text())
    except FileNotFoundError:
        return 0


def device_keys(device):
    """(device ID, DS public key, KA public key) of a registered device (meterlab.dcc.register)."""
    return (device["eui64"], certificates.describe(device["ds_certificate"])["public_key"],
            certificates.describe(device["ka_certificate"])["public_key"])


def acb_mac(acb, device, apdu, suite="gbcs"):
    """The ACB's MAC for a command APDU to device: what the DCC adds."""
    _, _, device_ka = device_keys(device)
    z = acb.keys.exchange(METER_KA, device_ka)
    return hostcrypto.mac_for(gbcs.parse(apdu), z, suite)


def build_command(originator, device, message_code, payload, acb, counter=None, suite="gbcs", sign=None):
    """The MAC'd frame of a command from originator (a Party) to device. Critical codes are signed
    with the originator's meter-facing DS key (sign=False leaves them unsigned, for tests of what a
    meter does then)."""
    device_id = device["eui64"]
    if counter is None:
        counter = next_counter(originator)
    if sign is None:
        sign = authorisation.needs_signature(message_code)
    apdu = gbcs.build(gbcs.CRA_COMMAND, counter, originator.eui64, device_id, message_code, payload)
    if sign:
        signature = originator.keys.sign(METER_DS, gbcs.parse(apdu).signed_part)
        apdu = gbcs.build(gbcs.CRA_COMMAND, counter, originator.eui64, device_id, message_code, payload,
                          signature=signature)
    return gbcs.wrap(apdu, acb_mac(acb, device, apdu, suite))


def credentials_payload(smki, new_party, target_role, floor=None):
    """The CS02b payload installing new_party as target_role; the floor defaults to the new party's own
    last counter, so its next command is above it."""
    if floor is None:
        floor = last_counter(new_party)
    return ownership.encode_payload(target_role, floor, smki.certificate("organisation-ca"),
                                    new_party.certificate(METER_DS), new_party.certificate(METER_KA))


def take_ownership(smki, device, new_supplier, transcos, acb, **options):
    """CS02b supplierByTransCoS: the DCC's transitional CoS party installs new_supplier on device."""
    payload = credentials_payload(smki, new_supplier, roles.SUPPLIER)
    return build_command(transcos, device, authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS, payload, acb, **options)


def hand_over(smki, device, owner, new_supplier, acb, **options):
    """CS02b supplierBySupplier: the owning supplier hands the meter to new_supplier."""
    payload = credentials_payload(smki, new_supplier, roles.SUPPLIER)
    return build_command(owner, device, authorisation.CREDENTIALS_SUPPLIER_BY_SUPPLIER, payload, acb, **options)


def recover(smki, device, recovery, new_party, target_role, acb, **options):
    """CS02b anyExceptAbnormalRootByRecovery: the Recovery key installs new_party as target_role."""
    payload = credentials_payload(smki, new_party, target_role)
    return build_command(recovery, device, authorisation.CREDENTIALS_ANY_BY_RECOVERY, payload, acb, **options)


def check_response(device, command_frame, response_frame):
    """The parsed response to command_frame, after checking it answers that command and carries the
    device's signature (critical commands) ; CommandError otherwise."""
    command = gbcs.parse(command_frame)
    try:
        response = gbcs.parse(response_frame)
    except gbcs.FrameError as error:
        raise CommandError(f"the response does not parse: {error.reason}") from None
    if (response.cra, response.counter, response.message_code, bytes(response.recipient), bytes(response.originator)) != (
            gbcs.CRA_RESPONSE, command.counter, command.message_code, bytes(command.originator), device["eui64"]):
        raise CommandError("the response does not answer this command")
    if authorisation.needs_signature(command.message_code):
        _, device_ds, _ = device_keys(device)
        if not verify(device_ds, response.signed_part, response.signature):
            raise CommandError("the response does not carry the device's signature")
    return response
