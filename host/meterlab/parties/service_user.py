"""A DCC user at work, for the command line (design.md, "DCC, CSP, parties"): one party of the SMKI sends
one command to one meter the way every user does, as a signed service request through the DCC (its
checks, anomaly detection, audit log and ACB MAC) and the CSP to the meter's board, then checks the
answer itself: the device's signature on a critical command's answer, the MAC on any other, and opens
an encrypted answer with its own key, which the DCC never holds.

    user = ServiceUser(smki_dir, dcc_dir, party_eui64, passphrase)
    device, content = user.send(url, message_code, payload)   # UserError with the reason otherwise
"""
import contextlib

from meterfw import authorisation, gbcs, gbcs_host, pipeline
from meterlab.client import BoardClient
from meterlab.csp import Csp
from meterlab.dcc import requests
from meterlab.dcc.service import ROUTED, Dcc, command_request
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import METER_KA, Party, PartyError
from meterlab.transport import BoardConnection


class UserError(Exception):
    pass


_HINTS = {
    pipeline.REJECT_UNKNOWN_ORIGINATOR: " (the meter holds no trust anchor, and no consent, for this party)",
    pipeline.REJECT_CONSENT_SCOPE: " (more months than the consumer consented to)",
    pipeline.REJECT_NO_CONSENT: " (the consumer's consent has expired)",
}


def meter_at(url, timeout=30.0):
    """The device ID of the commissioned meter at url (the CSP's directory entry for it)."""
    with BoardConnection(url, timeout=timeout) as connection:
        _, _, _, keys = BoardClient(connection).identify()
    if not keys:
        raise UserError(f"{url} is not commissioned")
    return keys[0]


def change_supplier(smki, passphrase, dcc_dir, url, supplier, timeout=30.0):
    """CS02b supplierByTransCoS through the DCC (its transitional CoS originates it, and it records the
    new owner): the meter's register record."""
    return _dcc_credentials(smki, passphrase, dcc_dir, url, timeout,
                            lambda dcc, meter: dcc.change_supplier(meter, supplier))


def install_anchor(smki, passphrase, dcc_dir, url, party, role, timeout=30.0):
    """CS02b anyExceptAbnormalRootByRecovery through the DCC (its recovery party originates it): party
    becomes the meter's trust anchor for role (a network operator's, or any after a compromise)."""
    return _dcc_credentials(smki, passphrase, dcc_dir, url, timeout,
                            lambda dcc, meter: dcc.install_by_recovery(meter, party, role))


def _dcc_credentials(smki, passphrase, dcc_dir, url, timeout, run):
    # A credential command the DCC originates itself, to the meter at url: its register record.
    try:
        with _dcc_for(smki, passphrase, dcc_dir, url, timeout) as (dcc, meter, device):
            result = run(dcc, meter)
    except commands.CommandError as error:
        raise UserError(str(error)) from None
    if result.status != ROUTED:
        reason = f": {pipeline.REASON_NAMES[result.reason]}" if result.reason else ""
        raise UserError(f"{result.detail}{reason}")
    return device


@contextlib.contextmanager
def _dcc_for(smki, passphrase, dcc_dir, url, timeout):
    """(the DCC, the meter's ID, its register record), with a CSP that reaches the meter at url; closed
    after. UserError when the meter is not in the DCC's register."""
    meter = meter_at(url, timeout)
    csp = Csp({meter: url}, timeout=timeout)
    dcc = Dcc(dcc_dir, smki, passphrase, csp)
    try:
        device = dcc.register.device(meter)
        if device is None:
            raise UserError(f"meter {meter.hex()} at {url} is not in the DCC's register (commission it first)")
        yield dcc, meter, device
    finally:
        csp.close()
        dcc.close()


class ServiceUser:
    def __init__(self, smki_dir, dcc_dir, party_eui64, passphrase):
        self.smki = Smki.open(smki_dir, passphrase)
        try:
            self.party = Party.load(self.smki, party_eui64.hex(), passphrase)
        except PartyError:
            raise UserError(f"no party {party_eui64.hex()} in {smki_dir} (add it with `meterlab smki party`)") from None
        self.dcc_dir = dcc_dir
        self.passphrase = passphrase

    def send(self, url, code, payload, timeout=30.0):
        """(the meter's register record, the answer's content: decrypted when it was encrypted)."""
        with _dcc_for(self.smki, self.passphrase, self.dcc_dir, url, timeout) as (dcc, meter, device):
            request = command_request(self.party, meter, code, payload)
            result = dcc.submit(request)
        if result.status != ROUTED:
            raise UserError(f"the DCC {result.status} the request: {result.detail}")
        if result.reason != pipeline.ACCEPT:
            hint = _HINTS.get(result.reason, "")
            raise UserError(f"the meter refused the command: {pipeline.REASON_NAMES[result.reason]}{hint}")
        try:
            response = commands.check_response(device, requests.parse(request).body, result.response)
        except commands.CommandError as error:
            raise UserError(str(error)) from None
        if authorisation.needs_signature(code):
            return device, bytes(response.payload)
        z = self.party.keys.exchange(METER_KA, commands.device_keys(device)[2])
        if not gbcs.verify_mac(response, z):
            raise UserError("the answer's MAC does not verify with this party's key")
        if authorisation.sensitive_response(code):
            return device, gbcs_host.decrypt_content(z, response)
        return device, bytes(response.payload)
