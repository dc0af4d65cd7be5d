"""`make demo`: a comms hub, an electricity meter and a gas meter on virtual boards and a virtual radio.

It shows what is built so far: the boards boot the firmware and answer over their serial ports; an SMKI
is set up (root under custodians' shares, a device CA with a quota); each board is commissioned (its own
keys, certified, the DCC's anchors); a supplier takes ownership of the meters; and the hub talks to the
meters over the radio. Later stages add tariffs, consent, anomaly detection and attacks.
"""
import tempfile
import time
from pathlib import Path

from meterfw import pipeline, roles
from meterlab.boards.virtual import VirtualBoard, VirtualRadio
from meterlab.client import BoardClient
from meterlab.commission import commission
from meterlab.dcc.register import DeviceRegister
from meterlab.parties import commands
from meterlab.smki.authority import Smki
from meterlab.smki.parties import Party, create_dcc_parties
from meterlab.transport import BoardConnection, BoardTimeout

DEMO_PASSPHRASE = "demo operator passphrase"
SUPPLIER_A = bytes.fromhex("90b3d51f30010000")

BOARDS = (("chf", "esp32"), ("esme", "esp32"), ("gsme", "rp2040"))


def step(text):
    print(f"\n== {text}", flush=True)


def run_demo(workdir=None):
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="meterlab-demo-") as scratch:
        root = Path(workdir or scratch)
        root.mkdir(parents=True, exist_ok=True)
        log = open(root / "demo.log", "w")
        step("virtual radio (ESP-NOW stand-in): 5% loss, 2-20 ms delay")
        radio = VirtualRadio(log=log, loss=0.05, delay_ms="2:20", seed=1)
        print(f"radio at {radio.address}")
        boards = []
        try:
            step("power on three virtual boards (real MicroPython, each with its board's heap)")
            for role, family in BOARDS:
                board = VirtualBoard(root / role, role=role, board=family, radio=radio.address, log=log)
                board.start()
                boards.append(board)
                print(f"{role:<5} {board.board['board']:<15} serial {board.url}  radio {board.mac}")

            step("ping each board over its serial port (SLIP + CRC-32 frames)")
            for board in boards:
                with BoardConnection(board.url, timeout=5) as connection:
                    pong = BoardClient(connection).ping()
                print(f"{pong.role:<5} firmware {pong.version}  board {pong.board} ({pong.family})  "
                      f"free heap {pong.free_heap} of {board.board['heap_bytes']} bytes")

            step("SMKI: a root split among 3 custodians (2 needed), organisation and device CAs, the DCC's parties")
            smki, shares = Smki.create(root / "smki", DEMO_PASSPHRASE, threshold=2, custodian_count=3)
            dcc = create_dcc_parties(smki, DEMO_PASSPHRASE)
            device_ca = smki.create_device_ca("demo", len(boards), shares[::2])
            supplier = Party.create(smki, "SUPPLIER A", roles.SUPPLIER, SUPPLIER_A, DEMO_PASSPHRASE)
            print(f"device CA 'demo': quota {len(boards)} devices (root operation with custodians 1 and 3)")
            register = DeviceRegister(root / "dcc")
            devices = {}
            try:
                step("commission each board: its own keys, certified by the device CA, the DCC's anchors")
                for board in boards:
                    with BoardConnection(board.url, timeout=30) as connection:
                        print(f"{board.role}:")
                        devices[board.role] = commission(BoardClient(connection), smki, device_ca, dcc, register,
                                                         board.role, progress=lambda line: print(line, flush=True))
                print(f"device CA key destroyed after its quota: {not device_ca.key_present}")

                step("supplier A takes ownership of the meters (CS02b through the DCC's transitional CoS)")
                for board in boards[1:]:
                    device = devices[board.role]
                    frame = commands.take_ownership(smki, device, supplier, dcc[roles.TRANSITIONAL_COS],
                                                    dcc[roles.ACCESS_CONTROL_BROKER])
                    with BoardConnection(board.url, timeout=30) as connection:
                        reason, response = BoardClient(connection).gbcs(frame)
                    if reason != pipeline.ACCEPT:
                        raise RuntimeError(f"{board.role} refused the change of supplier: "
                                           f"{pipeline.REASON_NAMES[reason]}")
                    commands.check_response(device, frame, response)
                    print(f"{board.role}: owned by {supplier.name}; the meter's signed answer verified")
            finally:
                register.close()

            step("the hub calls each meter over the radio (retrying lost frames)")
            hub = boards[0]
            with BoardConnection(hub.url, timeout=5) as hub_link:
                hub_client = BoardClient(hub_link)
                for meter in boards[1:]:
                    peer = bytes.fromhex(meter.mac.replace(":", ""))
                    message = f"hello {meter.role}".encode()
                    with BoardConnection(meter.url, timeout=5) as meter_link:
                        for attempt in range(1, 6):
                            if hub_client.radio_send(peer, message):
                                break
                            print(f"  frame to {meter.role} lost, retry {attempt}")
                        try:
                            wait = 5 if meter.role != "gsme" else 2
                            source, data = BoardClient(meter_link).radio_receive(timeout=wait)
                        except BoardTimeout:
                            if meter.role != "gsme":
                                raise
                            # a battery gas meter's radio is off between its scheduled polls of the hub
                            print(f"{meter.role} heard nothing: asleep, its radio off until it polls the hub")
                            continue
                    print(f"{meter.role} heard {data.decode()!r} from {source.hex(':')}")
        finally:
            for board in boards:
                board.stop()
            radio.stop()
            log.close()
        print(f"\ndemo complete in {time.monotonic() - started:.1f}s; board logs in "
              f"{root / 'demo.log' if workdir else 'a temporary folder (use --workdir to keep them)'}")
    return 0
