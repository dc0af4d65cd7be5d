"""The parties of the system as a lab runs them: each with a name, a GBCS role, an EUI-64, its own
keystore, and three keys (property 5): a meter-facing DS and KA pair, certified by the organisation CA
and installed on meters as trust anchors, and a DCC-facing DS key, certified by the infrastructure CA,
for signing service requests to the DCC.

A real SMKI never holds a party's keys (the party sends a certificate request); in a lab one folder
holds them all, each party in its own keystore: SMKI_HOME/parties/EUI64/.
"""
import json
import os
from pathlib import Path

from meterfw import roles
from meterlab.smki.authority import pem, read_certificate
from meterlab.smki.keystore import FileKeystore

# The DCC's parties every meter anchors at commissioning, with the EUI-64s of the DCC's test data.
DCC_PARTIES = {
    roles.RECOVERY: ("DCC recovery", "90b3d51f30000001"),
    roles.ACCESS_CONTROL_BROKER: ("DCC access control broker", "90b3d51f30000002"),
    roles.TRANSITIONAL_COS: ("DCC transitional CoS", "90b3d51f30000004"),
    roles.WAN_PROVIDER: ("DCC WAN provider", "90b3d51f30000007"),
}
METER_DS, METER_KA, DCC_DS = "meter-ds", "meter-ka", "dcc-ds"


class PartyError(Exception):
    pass


def parties_dir(smki):
    return Path(smki.home) / "parties"


class Party:
    def __init__(self, folder, passphrase):
        self.folder = Path(folder)
        try:
            record = json.loads((self.folder / "party.json").read_text())
        except FileNotFoundError:
            raise PartyError(f"no party in {self.folder}") from None
        self.name = record["name"]
        self.role = record["role"]
        self.eui64 = bytes.fromhex(record["eui64"])
        self.keys = FileKeystore(self.folder / "keys", passphrase)

    @classmethod
    def create(cls, smki, name, role, eui64, passphrase):
        if role not in roles.ALL:
            raise PartyError(f"unknown role {role}")
        eui64 = bytes(eui64)
        if len(eui64) != 8:
            raise PartyError("a party's EUI-64 is 8 bytes")
        folder = parties_dir(smki) / eui64.hex()
        if folder.exists():
            raise PartyError(f"party {eui64.hex()} exists already")
        folder.mkdir(parents=True)
        keys = FileKeystore(folder / "keys", passphrase)
        ds, ka, dcc = keys.generate(METER_DS), keys.generate(METER_KA), keys.generate(DCC_DS)
        ds_der, ka_der = smki.certify_party(name, role, eui64, ds, ka)
        (folder / f"{METER_DS}.pem").write_bytes(pem(ds_der))
        (folder / f"{METER_KA}.pem").write_bytes(pem(ka_der))
        (folder / f"{DCC_DS}.pem").write_bytes(pem(smki.certify_dcc_facing(name, role, eui64, dcc)))
        tmp = folder / "party.json.tmp"
        tmp.write_text(json.dumps({"name": name, "role": role, "eui64": eui64.hex()}))
        os.replace(tmp, folder / "party.json")
        return cls(folder, passphrase)

    @classmethod
    def load(cls, smki, eui64, passphrase):
        return cls(parties_dir(smki) / (eui64.hex() if isinstance(eui64, bytes) else eui64), passphrase)

    def certificate(self, which):
        return read_certificate(self.folder / f"{which}.pem")

    def anchor(self):
        """(party ID, meter-facing DS public key, KA public key): what a meter anchors for this party."""
        return self.eui64, self.keys.public_key(METER_DS), self.keys.public_key(METER_KA)


def all_parties(smki, passphrase):
    folder = parties_dir(smki)
    if not folder.is_dir():
        return []
    return [Party(entry, passphrase) for entry in sorted(folder.iterdir()) if (entry / "party.json").exists()]


def create_dcc_parties(smki, passphrase):
    """The DCC's recovery, ACB, transitional CoS and WAN provider parties: {role: Party}."""
    return {role: Party.create(smki, name, role, bytes.fromhex(eui64), passphrase)
            for role, (name, eui64) in DCC_PARTIES.items()}


def dcc_parties(smki, passphrase):
    out = {}
    for role, (_, eui64) in DCC_PARTIES.items():
        try:
            out[role] = Party.load(smki, eui64, passphrase)
        except PartyError:
            raise PartyError(f"the SMKI in {smki.home} has no {roles.NAMES[role]} party (made by "
                             "`meterlab smki init`)") from None
    return out
