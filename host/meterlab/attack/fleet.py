"""Meters in this process: the firmware core (pipeline, responder, credential updater, stores in memory)
under CPython, commissioned straight from an SMKI's certificates. For the attack scenarios' fleet mode
and tests of the host's DCC logic with many meters; the same code runs on the virtual boards.

A meter's state is its storage: `reboot()` builds the meter again from it, as a board that lost power
reads its flash again."""
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


class InProcessMeter:
    def __init__(self, device_id, smki, device_ca, dcc_parties, register, role="esme", board="esp32-devkitc",
                 clock=None):
        self.device_id = device_id
        self.role = role
        self.board = board
        self._ds, ds_public = private_key()
        self._ka, ka_public = private_key()
        ds_certificate, ka_certificate = device_ca.certify(device_id, ds_public, ka_public)
        register.register(device_id, role, ds_certificate, ka_certificate, device_ca.name)
        self.storage = store.MemoryStorage()  # the security state: anchors and counters
        anchors = store.TrustAnchorStore(self.storage)
        root = smki.root_public_key()
        anchors.install(roles.ROOT, bytes(8), root, root)
        for role_number, party in dcc_parties.items():
            anchors.install(role_number, *party.anchor())
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
    """A router for the DCC: frames to in-process meters by device ID."""

    def __init__(self):
        self.meters = {}
        self.frames = 0

    def add(self, meter):
        self.meters[meter.device_id] = meter
        return meter

    def __call__(self, device, frame):
        self.frames += 1
        return self.meters[device["eui64"]].handle(frame)
