"""Meters in this process: the firmware core (pipeline, responder, credential updater, stores in memory)
under CPython, commissioned straight from an SMKI's certificates. For the attack scenarios' fleet mode
and tests of the host's DCC logic with many meters; the same code runs on the virtual boards.

A meter's state is its storage: `reboot()` builds the meter again from it, as a board that lost power
reads its flash again.

For estates of tens of thousands, install_estate() certifies and registers meters in batches and the
Fleet builds each meter only when its first frame arrives: a meter that never hears from the DCC costs
its keys and its register entry, nothing more."""
import time

from cryptography.hazmat.primitives.asymmetric import ec

from meterfw import ledger, roles, store
from meterfw.endpoint import CommandRecorder, CommandRouter, GbcsEndpoint
from meterfw.esme import ElectricityMeter
from meterfw.gsme import GasMeter, default_budget
from meterfw.ownership import CredentialUpdater
from meterfw.pipeline import DevicePipeline
from meterfw.response import Responder
from meterlab.power.profile import PowerProfile
from meterlab.smki.keystore import public_bytes


def private_key():
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_numbers().private_value.to_bytes(32, "big"), public_bytes(key.public_key())


def initial_anchors(smki, dcc_parties, owner=None):
    """[(role, party ID, DS key, KA key)] a meter is commissioned with: the root and the DCC's parties,
    and, for a meter installed with its supplier's anchor already in it, owner (a Party)'s."""
    root = smki.root_public_key()
    anchors = [(roles.ROOT, bytes(8), root, root)]
    anchors += [(role_number, *party.anchor()) for role_number, party in dcc_parties.items()]
    if owner is not None:
        anchors.append((roles.SUPPLIER, *owner.anchor()))
    return anchors


class InProcessMeter:
    def __init__(self, device_id, smki, device_ca, dcc_parties, register, role="esme", board="esp32-devkitc",
                 clock=None):
        """A meter commissioned on its own: keys made, certified by device_ca, registered."""
        ds, ds_public = private_key()
        ka, ka_public = private_key()
        ds_certificate, ka_certificate = device_ca.certify(device_id, ds_public, ka_public)
        register.register(device_id, role, ds_certificate, ka_certificate, device_ca.name)
        self._set_up(device_id, ds, ka, initial_anchors(smki, dcc_parties), role, board, clock)

    @classmethod
    def installed(cls, device_id, ds, ka, anchors, role="esme", board="esp32-devkitc", clock=None):
        """A meter whose keys were certified and registered already (install_estate)."""
        meter = cls.__new__(cls)
        meter._set_up(device_id, ds, ka, anchors, role, board, clock)
        return meter

    def _set_up(self, device_id, ds, ka, anchors, role, board, clock):
        self.device_id = device_id
        self.role = role
        self.board = board
        self._ds, self._ka = ds, ka
        self.storage = store.MemoryStorage()  # the security state: anchors and counters
        trust = store.TrustAnchorStore(self.storage)
        for anchor in anchors:
            trust.install(*anchor)
        self.meter_storage = store.MemoryStorage()  # the meter's own records
        self.relay = []  # what the meter set its supply switch (or valve) to, in order
        self.clock = clock or (lambda: int(time.time()))
        self._start()

    def _start(self):
        # What a board does at boot: read its state from flash and wire its pipeline.
        self.anchors = store.TrustAnchorStore(self.storage)
        self.counters = store.CounterStore(self.storage, self.anchors)
        self.recorder = CommandRecorder()
        budget = None
        self.meter = None
        if self.role == "esme":
            self.meter = ElectricityMeter(self.meter_storage, self.relay.append, self.clock)
        elif self.role == "gsme":  # a battery gas meter: its ledger priced on the board's power profile
            costs = PowerProfile.of(self.board).costs_uj()
            energy = ledger.EnergyLedger(costs, *default_budget(costs), self.clock)
            self.meter = GasMeter(self.meter_storage, self.relay.append, self.clock, energy)
            budget = energy.allow
        router = CommandRouter(CredentialUpdater(self.anchors, self.counters), self.recorder, self.meter)
        self.pipeline = DevicePipeline(self.device_id, self._ka, self.anchors, self.counters, "gbcs",
                                       validator=router.validate, budget=budget, device_type=self.role)
        self.endpoint = GbcsEndpoint(self.pipeline, Responder(self.device_id, self._ds, self._ka, self.anchors),
                                     router.execute)

    def reboot(self):
        """A power cycle: RAM lost, the meter built again from its storage (its counters among it)."""
        self._start()

    def handle(self, frame):
        decision, response = self.endpoint.handle(frame)
        return decision.reason, response


class Fleet:
    """A router for the DCC: frames to in-process meters by device ID. Meters added with add_installed are
    built on their first frame."""

    def __init__(self):
        self.meters = {}  # the meters built so far
        self.frames = 0
        self._makers = {}  # device ID -> a function that builds that meter as installed

    def add(self, meter):
        self.meters[meter.device_id] = meter
        return meter

    def add_installed(self, device_id, make):
        self._makers[device_id] = make

    def meter(self, device_id):
        """The meter, built now if it was installed and has heard nothing yet."""
        meter = self.meters.get(device_id)
        if meter is None:
            meter = self.meters[device_id] = self._makers[device_id]()
        return meter

    def built(self, device_id):
        return device_id in self.meters

    def reset_installed(self):
        """Every installed meter as it was installed (its state dropped): an estate to attack again."""
        for device_id in self._makers:
            self.meters.pop(device_id, None)

    def __call__(self, device, frame):
        self.frames += 1
        return self.meter(device["eui64"]).handle(frame)


def install_estate(count, first_id, smki, device_ca, dcc_parties, register, owner, fleet, batch=2000,
                   progress=None):
    """count electricity meters with IDs from first_id (an int) up, each with its own keys certified by
    device_ca and registered, owner's supplier anchor in it: built lazily by fleet. The IDs."""
    ids = []
    anchors = initial_anchors(smki, dcc_parties, owner)
    for start in range(0, count, batch):
        chunk = []
        for n in range(start, min(count, start + batch)):
            device_id = (first_id + n).to_bytes(8, "big")
            ds, ds_public = private_key()
            ka, ka_public = private_key()
            chunk.append((device_id, ds, ka, ds_public, ka_public))
        certificates = device_ca.certify_many([(device_id, ds_p, ka_p) for device_id, _, _, ds_p, ka_p in chunk])
        register.register_many([(entry[0], *pair) for entry, pair in zip(chunk, certificates)], "esme",
                               device_ca.name)
        for device_id, ds, ka, _, _ in chunk:
            fleet.add_installed(device_id, lambda d=device_id, s=ds, k=ka: InProcessMeter.installed(d, s, k, anchors))
            ids.append(device_id)
        if progress is not None:
            progress(f"  {len(ids):,} of {count:,} meters installed")
    return ids
