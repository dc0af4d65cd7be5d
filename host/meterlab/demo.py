"""`make demo`: a comms hub, an electricity meter and a gas meter on virtual boards and a virtual radio.

At this stage it shows the foundation: the boards boot the firmware, answer over their serial ports,
and talk to each other over the radio. Later stages add commissioning, ownership, tariffs and attacks.
"""
import tempfile
import time
from pathlib import Path

from meterlab.boards.virtual import VirtualBoard, VirtualRadio
from meterlab.client import BoardClient
from meterlab.transport import BoardConnection

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
                        source, data = BoardClient(meter_link).radio_receive(timeout=5)
                    print(f"{meter.role} heard {data.decode()!r} from {source.hex(':')}")
        finally:
            for board in boards:
                board.stop()
            radio.stop()
            log.close()
        print(f"\ndemo complete in {time.monotonic() - started:.1f}s; board logs in "
              f"{root / 'demo.log' if workdir else 'a temporary folder (use --workdir to keep them)'}")
    return 0
