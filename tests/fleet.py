"""Meters in this process: the firmware core (pipeline, responder, credential updater, stores in memory)
under CPython, commissioned straight from an SMKI's certificates. For tests of the host's DCC logic
with many meters; the same code runs on the virtual boards."""
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
        ds, ds_public = private_key()
        ka, ka_public = private_key()
        ds_certificate, ka_certificate = device_ca.certify(device_id, ds_public, ka_public)
        register.register(device_id, role, ds_certificate, ka_certificate, device_ca.name)
        self.storage = store.MemoryStorage()
        self.anchors = store.TrustAnchorStore(self.storage)
        root = smki.root_public_key()
        self.anchors.install(roles.ROOT, bytes(8), root, root)
        for role_number, party in dcc_parties.items():
            self.anchors.install(role_number, *party.anchor())
        self.counters = store.CounterStore(self.storage, self.anchors)
        self.recorder = CommandRecorder()
        # an ESME is a meter as on a board: its own flash (in memory), a relay, the host's clock
        self.relay = []
        self.meter = None
        clock = clock or (lambda: int(time.time()))
        budget = None
        if role == "esme":
            self.meter = ElectricityMeter(store.MemoryStorage(), self.relay.append, clock)
        elif role == "gsme":  # a battery gas meter: its ledger priced on the board's power profile
            costs = PowerProfile.of(board).costs_uj()
            energy = ledger.EnergyLedger(costs, *default_budget(costs), clock)
            self.meter = GasMeter(store.MemoryStorage(), self.relay.append, clock, energy)
            budget = energy.allow
        router = CommandRouter(CredentialUpdater(self.anchors, self.counters), self.recorder, self.meter)
        self.pipeline = DevicePipeline(device_id, ka, self.anchors, self.counters, "gbcs", validator=router.validate,
                                       budget=budget, device_type=role)
        self.endpoint = GbcsEndpoint(self.pipeline, Responder(device_id, ds, ka, self.anchors), router.execute)

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
