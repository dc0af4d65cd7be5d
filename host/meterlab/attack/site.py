"""The estate an attack runs against: an SMKI and its parties, the DCC and its CSP, and electricity meters,
either on virtual boards (the firmware in real MicroPython, each on its own serial port) or in this process
(fleet mode: the firmware core under CPython, meterlab.attack.fleet, for thousands of meters).

Both backends answer the same questions, so a scenario is written once: which meters' supply is off, what
each meter accepted and refused (its pipeline's counters), a meter's power cycle.
"""
import json
from pathlib import Path

from meterfw import pipeline, roles
from meterlab.dcc.anomaly import Thresholds
from meterlab.dcc.service import ROUTED, Dcc
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties

PASSPHRASE = "meterlab attack"
SUPPLIER_A = bytes.fromhex("90b3d51f30010000")
SUPPLIER_A_REKEYED = bytes.fromhex("90b3d51f30010001")  # A's identity after its keys were stolen
SUPPLIER_B = bytes.fromhex("90b3d51f30030000")
DNO = bytes.fromhex("90b3d51f30020000")
THIRD_PARTY = bytes.fromhex("90b3d51f30070000")
BACKENDS = ("virtual", "fleet")


class SiteError(Exception):
    pass


def thresholds_with(disconnects_a_day, total=None):
    """The DCC's default thresholds, with one supplier's disconnects a day set to disconnects_a_day, and
    everyone's together to total (default: the DCC's own)."""
    return Thresholds.defaults_with(per_user={"0x0050": disconnects_a_day},
                                    total=None if total is None else {"0x0050": total})


class Site:
    """meters electricity meters owned by supplier A; B, a DNO and a third party are DCC users too."""

    def __init__(self, home, meters=3, backend="virtual", thresholds=None, progress=None):
        if backend not in BACKENDS:
            raise SiteError(f"unknown backend {backend!r}: {' or '.join(BACKENDS)}")
        if meters < 1:
            raise SiteError("an estate has at least one meter")
        self.home = Path(home)
        self.backend = backend
        self.progress = progress or (lambda text: None)
        self.boards = {}  # meter ID -> VirtualBoard (virtual backend)
        self.fleet = None  # the in-process meters' router (fleet backend)
        self.progress(f"SMKI and parties for {meters} meters ({backend})")
        self.smki, shares = Smki.create(self.home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
        self.parties = create_dcc_parties(self.smki, PASSPHRASE)
        make = lambda name, role, eui: Party.create(self.smki, name, role, eui, PASSPHRASE)  # noqa: E731
        self.supplier_a = make("SUPPLIER A", roles.SUPPLIER, SUPPLIER_A)
        self.supplier_b = make("SUPPLIER B", roles.SUPPLIER, SUPPLIER_B)
        self.dno = make("DNO", roles.NETWORK_OPERATOR, DNO)
        self.third_party = make("ENERGY APP", roles.OTHER, THIRD_PARTY)
        self.shares = shares  # the root's custodians' shares: a scenario may need a root operation
        self.device_ca = self.smki.create_device_ca("estate", meters, shares)
        try:
            if backend == "virtual":
                self._virtual_estate(meters, thresholds)
            else:
                self._fleet_estate(meters, thresholds)
            if backend == "virtual":
                self.progress(f"supplier A takes ownership of {meters} meters")
                for meter in self.meters:
                    result = self.dcc.change_supplier(meter, self.supplier_a)
                    if result.status != ROUTED:
                        raise SiteError(f"meter {meter.hex()} refused supplier A: {result.detail}")
        except BaseException:
            self.close()
            raise

    def _virtual_estate(self, count, thresholds):
        from meterlab.boards.virtual import VirtualBoard, start_boards
        from meterlab.client import BoardClient
        from meterlab.commission import commission
        from meterlab.csp import Csp
        from meterlab.transport import BoardConnection

        self.csp = Csp({}, max_online=count, max_per_second=100, timeout=60.0)
        self.dcc = Dcc(self.home / "dcc", self.smki, PASSPHRASE, self.csp, thresholds)
        self._log = open(self.home / "boards.log", "w")
        boards = [VirtualBoard(self.home / f"meter{n}", board="esp32-s3-devkitc", log=self._log, home=True)
                  for n in range(count)]
        self._started = boards
        self.progress(f"starting {count} virtual boards")
        start_boards(boards)
        self.meters = []
        for board in boards:
            with BoardConnection(board.url, timeout=30.0) as connection:
                record = commission(BoardClient(connection), self.smki, self.device_ca, self.parties,
                                    self.dcc.register, "esme", progress=lambda *_: None)
            self.csp.endpoints[record["eui64"]] = board.url
            self.boards[record["eui64"]] = board
            self.meters.append(record["eui64"])

    def _fleet_estate(self, count, thresholds):
        # Installed in bulk with A's anchor in every meter (install_estate) and A recorded as the owner: the
        # state a change of supplier leaves, without 17 ms of CS02b a meter.
        from meterlab.attack.fleet import Fleet, install_estate

        self.fleet = self.csp = Fleet()
        self.dcc = Dcc(self.home / "dcc", self.smki, PASSPHRASE, self.fleet, thresholds)
        self.meters = install_estate(count, 0x70B3D54B00000000, self.smki, self.device_ca, self.parties,
                                     self.dcc.register, self.supplier_a, self.fleet, progress=self.progress)
        self.dcc.record_installation(self.meters, self.supplier_a)

    def gas_meter(self, board="rpi-pico"):
        """A battery gas meter owned by supplier A, added to the estate on first use: reached on its own
        link (a virtual board on its serial port, or in this process), its ledger priced on board's power
        profile. Without a hub in front of it, every read reaches it: what its ledger does is the point."""
        if getattr(self, "_gas", None) is not None:
            return self._gas
        device_ca = self.smki.create_device_ca("gas", 1, self.shares)
        if self.backend == "fleet":
            from meterlab.attack.fleet import InProcessMeter

            meter = bytes.fromhex("70b3d54bffff0001")
            self.fleet.add(InProcessMeter(meter, self.smki, device_ca, self.parties, self.dcc.register,
                                          role="gsme", board=board))
        else:
            from meterlab.boards.virtual import VirtualBoard
            from meterlab.client import BoardClient
            from meterlab.commission import commission
            from meterlab.transport import BoardConnection

            board_process = VirtualBoard(self.home / "gas", role="gsme", board=board, log=self._log)
            self._started.append(board_process)
            board_process.start()
            with BoardConnection(board_process.url, timeout=30.0) as connection:
                meter = commission(BoardClient(connection), self.smki, device_ca, self.parties, self.dcc.register,
                                   "gsme", progress=lambda *_: None)["eui64"]
            self.csp.max_online += 1
            self.csp.endpoints[meter] = board_process.url
            self.boards[meter] = board_process
        result = self.dcc.change_supplier(meter, self.supplier_a)
        if result.status != ROUTED:
            raise SiteError(f"the gas meter refused supplier A: {result.detail}")
        self._gas = meter
        return meter

    def ledger(self, meter):
        """The gas meter's energy ledger today: (allowance, reserve, spent, spent on critical work,
        refused non-critical, refused critical), in microjoules and counts."""
        if self.backend == "fleet":
            book = self.fleet.meters[meter].meter.ledger
        else:
            from meterlab.client import BoardClient
            from meterlab.transport import BoardConnection

            self.csp.close()
            with BoardConnection(self.boards[meter].url, timeout=30.0) as connection:
                book = BoardClient(connection).ledger()
        return (book.allowance, book.reserve, book.spent, book.spent_critical, book.refused, book.refused_critical)

    # ------------------------------------------------------------------------------- what meters did

    def device(self, meter):
        return self.dcc.register.device(meter)

    def deliver(self, meter, frame):
        """(the meter's pipeline reason, its response) for frame put on the meter's link as it is, past
        the DCC: what an attacker at the CSP, or holding the DCC, does."""
        return self.csp(self.device(meter), frame)

    def supply_off(self, meter):
        """True if the meter's supply switch is open."""
        if self.backend == "fleet":
            if not self.fleet.built(meter):
                return False  # never heard a frame: as installed, supply on
            relay = self.fleet.meters[meter].relay
            return bool(relay) and not relay[-1]
        gpio = self.boards[meter].state_dir / "gpio.json"
        return gpio.is_file() and json.loads(gpio.read_text()).get("supply_relay") == 0

    def counts(self, meter):
        """(accepted, {reason name: count}) from the meter's own pipeline."""
        if self.backend == "fleet":
            core = self.fleet.meter(meter).pipeline
            accepted, rejected = core.accepted, list(core.rejected)
        else:
            from meterlab.client import BoardClient
            from meterlab.transport import BoardConnection

            self.csp.close()  # a serial port takes one program at a time
            with BoardConnection(self.boards[meter].url, timeout=30.0) as connection:
                accepted, rejected = BoardClient(connection).status()
        return accepted, {pipeline.REASON_NAMES[reason]: count for reason, count in enumerate(rejected) if count}

    def read_flash(self, meter):
        """What an attacker who reads the meter's flash gets: (its ID, DS private key, KA private key, the
        ACB's KA public key from its anchors)."""
        from meterfw import store

        if self.backend == "fleet":
            in_process = self.fleet.meter(meter)
            return (meter, in_process._ds, in_process._ka,
                    in_process.anchors.anchor(roles.ACCESS_CONTROL_BROKER)[2])
        from meterlab.boards.provision import security_storage

        storage = security_storage(self.boards[meter].state_dir)
        device_id, ds, ka, _ = store.IdentityStore(storage).identity
        return device_id, ds, ka, store.TrustAnchorStore(storage).anchor(roles.ACCESS_CONTROL_BROKER)[2]

    def power_cycle(self, meter):
        """Cut the meter's power and start it again: it keeps only what is on its flash."""
        if self.backend == "fleet":
            self.fleet.meter(meter).reboot()
            return
        self.csp.close()
        board = self.boards[meter]
        board.kill()
        board.start()
        self.csp.endpoints[meter] = board.url  # a restarted virtual board listens on a new port

    def close(self):
        if getattr(self, "csp", None) is not None and self.fleet is None:
            self.csp.close()
        if getattr(self, "dcc", None) is not None:
            self.dcc.close()
        for board in getattr(self, "_started", []):
            board.kill()
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
