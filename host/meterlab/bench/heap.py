"""`meterlab bench heap`: the peak live heap of the firmware on every board description in every role,
on virtual boards held to each board's GC heap, through a day's work: commissioning, a change of supplier
(the certificate reader), a network operator installed by recovery, a consent granted at the in-home
port, and for an electricity meter a supplier's reads (13 months of days among them), tariff and
disconnect and reconnect; then again after a restart, running only. Target: the peak stays under 80% of
the board's heap (issue 7).

The peak is what the virtual board's harness measured after each of its garbage collections (the live
heap, not the room the heap grew into), logged when the board powers off with the modules loaded at
that moment (modules_at_working_peak in the JSON: where to look for the RAM).
"""
import re
import tempfile
import time
from pathlib import Path

TARGET = 0.8
ROLES = ("esme", "gsme", "chf")
PASSPHRASE = "bench heap"
_PEAK = re.compile(r"peak live heap (\d+) of (\d+) bytes")
_PEAK_MODULES = re.compile(r"peak live heap \d+ of \d+ bytes; modules loaded then: ([^)]*)\)")
_OUT_OF_MEMORY = re.compile(r"out of memory: MemoryError: live heap (\d+) bytes")


def _peak(log_path):
    # the last power-off's peak (each logs its own run's), or the live heap a board ran out of memory at
    text = Path(log_path).read_text()
    peaks = _PEAK.findall(text)
    out_of_memory = [int(live) for live in _OUT_OF_MEMORY.findall(text)]
    if not peaks and not out_of_memory:
        raise RuntimeError(f"the virtual board logged no peak heap ({log_path})")
    last = [int(peaks[-1][0])] if peaks else []
    return max(last + out_of_memory)


def _modules_at_peak(log_path):
    # what was imported when the last power-off's peak was measured: where a lab looks for the RAM
    found = _PEAK_MODULES.findall(Path(log_path).read_text())
    return found[-1].split() if found else None


# Imports the modules given, one at a time, in a fresh VM; between them control returns to JavaScript so
# that the port collects the garbage of each import, as a board would.
_CODE_SCRIPT = """import asyncio, gc, sys
sys.path.insert(0, "/flash")
for name in open("/flash/modules.txt").read().split():
    try:
        __import__(name)
    except ImportError:
        pass  # the HAL's JavaScript module exists only on a running virtual board
    await asyncio.sleep(0)
await asyncio.sleep(0)
gc.collect()
print("CODE", gc.mem_alloc())
"""


def code_bytes(board, modules, scratch):
    """The live heap of `modules` imported into an empty VM on `board`'s flash image: their code (bytecode,
    names, constants, function and class objects) without the firmware's data. What bytecode kept in
    flash (frozen modules, ROMFS) would mostly take out of the heap."""
    import subprocess

    from meterlab.boards.virtual import deploy_to_state
    from meterlab.paths import VIRTUAL_HARNESS_DIR

    state = Path(scratch)
    deploy_to_state(state, board)
    (state / "flash" / "modules.txt").write_text(" ".join(modules))
    (state / "flash" / "code_bytes.py").write_text(_CODE_SCRIPT)
    result = subprocess.run(["node", str(VIRTUAL_HARNESS_DIR / "board.mjs"), "--state", str(state), "--heap",
                             str(board["heap_bytes"]), "--script", "code_bytes.py"],
                            capture_output=True, text=True, timeout=120)
    found = re.search(r"^CODE (\d+)$", result.stdout, re.M)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"measuring the modules' code failed:\n{result.stdout}{result.stderr}")
    return int(found.group(1))


def _ran_out(log_path):
    return bool(_OUT_OF_MEMORY.search(Path(log_path).read_text()))


def _work(dcc, meter, parties, board, role):
    from meterfw import authorisation, der, esme_host, roles
    from meterlab.client import BoardClient
    from meterlab.dcc.service import ROUTED, command_request
    from meterlab.transport import BoardConnection

    supplier, dno, app = parties
    assert dcc.change_supplier(meter, supplier).status == ROUTED
    assert dcc.install_by_recovery(meter, dno, roles.NETWORK_OPERATOR).status == ROUTED
    if role == "esme":
        for code, payload in ((authorisation.READ_IMPORT_REGISTERS, esme_host.read(1)),
                              (authorisation.TARIFF, esme_host.tariff([(0, 12_000), (32, 30_000)])),
                              (authorisation.SUPPLY_DISCONNECT, der.EMPTY), (authorisation.SUPPLY_CONNECT, der.EMPTY),
                              (authorisation.READ_IMPORT_REGISTERS, esme_host.read(13))):
            result = dcc.submit(command_request(supplier, meter, code, payload))
            assert result.status == ROUTED and result.reason == 0, result
    dcc.router.close()  # the board's port takes one host at a time
    certificates = (dcc.smki.certificate("organisation-ca"), app.certificate("meter-ds"), app.certificate("meter-ka"))
    with BoardConnection(board.home_url, timeout=60.0) as home:
        BoardClient(home).consent_grant(3, int(time.time()) + 86400, *certificates)
    with BoardConnection(board.url, timeout=60.0) as connection:
        client = BoardClient(connection)
        client.status()
        client.rejects()


def run(repeat=None, vm_repeat=None, progress=print, boards=None, roles=ROLES):
    from meterfw import roles as party_roles
    from meterlab.bench import environment
    from meterlab.boards.descriptions import available_boards, load_board
    from meterlab.boards.virtual import VirtualBoard
    from meterlab.client import BoardClient
    from meterlab.commission import commission
    from meterlab.csp import Csp
    from meterlab.dcc.service import Dcc
    from meterlab.smki.authority import Smki
    from meterlab.smki.parties import Party, create_dcc_parties
    from meterlab.transport import BoardConnection, TransportError

    boards = available_boards() if boards is None else list(boards)
    rows = []
    with tempfile.TemporaryDirectory(prefix="meterlab-bench-heap-") as scratch:
        home = Path(scratch)
        progress("setting up an SMKI and its parties")
        smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
        dcc_parties = create_dcc_parties(smki, PASSPHRASE)
        make = lambda name, role, eui: Party.create(smki, name, role, bytes.fromhex(eui), PASSPHRASE)  # noqa: E731
        parties = (make("SUPPLIER", party_roles.SUPPLIER, "90b3d51f30010000"),
                   make("DNO", party_roles.NETWORK_OPERATOR, "90b3d51f30020000"),
                   make("APP", party_roles.OTHER, "90b3d51f30070000"))
        device_ca = smki.create_device_ca("bench", len(boards) * len(roles), shares)
        for name in boards:
            heap = load_board(name)["heap_bytes"]
            for role in roles:
                progress(f"{name} as {role}")
                state, log_path = home / f"{name}-{role}", home / f"{name}-{role}.log"
                csp = Csp({}, max_online=2, max_per_second=100, timeout=60.0)
                dcc = Dcc(home / f"dcc-{name}-{role}", smki, PASSPHRASE, csp)
                board = VirtualBoard(state, board=name, home=True, load_watts=1000, log=open(log_path, "a"))
                running = None
                try:
                    board.start()
                    try:
                        with BoardConnection(board.url, timeout=60.0) as connection:
                            record = commission(BoardClient(connection), smki, device_ca, dcc_parties,
                                                dcc.register, role, progress=lambda *_: None)
                        csp.endpoints[record["eui64"]] = board.url
                        _work(dcc, record["eui64"], parties, board, role)
                    except (TransportError, AssertionError) as error:
                        if not _ran_out(log_path):
                            raise
                        progress(f"  out of memory: {error}")  # reported, and the next board goes on
                    csp.close()
                    board.stop()
                    working = _peak(log_path)
                    working_modules = _modules_at_peak(log_path)
                    if not _ran_out(log_path):
                        board.start()  # a restart: the firmware as it boots commissioned, then idles
                        try:
                            with BoardConnection(board.url, timeout=60.0) as connection:
                                BoardClient(connection).ping()
                            time.sleep(1.0)
                        except TransportError as error:
                            if not _ran_out(log_path):
                                raise
                            progress(f"  out of memory after a restart: {error}")
                        board.stop()
                        running = _peak(log_path)
                finally:
                    csp.close()
                    dcc.close()
                    board.kill()
                peak = max(working, running or 0)
                code = None
                if working_modules:
                    code = code_bytes(load_board(name), working_modules, home / f"{name}-{role}-code")
                rows.append({"board": name, "role": role, "heap_bytes": heap, "peak_working": working,
                             "peak_after_restart": running, "peak_fraction": peak / heap,
                             "modules_at_working_peak": working_modules, "code_at_working_peak": code,
                             "out_of_memory": _ran_out(log_path), "met": peak <= TARGET * heap})
    return {"benchmark": "heap", "environment": environment(), "target_fraction": TARGET, "rows": rows,
            "all_met": all(row["met"] for row in rows)}


def report(results):
    lines = [f"{'board':<18} {'role':<5} {'heap':>8} {'peak working':>13} {'after restart':>14} {'peak %':>7} "
             f"{'code at peak':>13}  target <= {results['target_fraction']:.0%}"]
    for row in results["rows"]:
        restart = "-" if row["peak_after_restart"] is None else f"{row['peak_after_restart']:,}"
        code = "-" if row["code_at_working_peak"] is None else f"{row['code_at_working_peak'] / row['heap_bytes']:.1%}"
        verdict = "OUT OF MEMORY" if row["out_of_memory"] else "met" if row["met"] else "NOT met"
        lines.append(f"{row['board']:<18} {row['role']:<5} {row['heap_bytes']:>8,} {row['peak_working']:>13,} "
                     f"{restart:>14} {row['peak_fraction']:>7.1%} {code:>13}  {verdict}")
    lines.append("code at peak: the live heap of the modules loaded at the working peak, imported into an empty VM "
                 "(what bytecode in flash, frozen or ROMFS, would mostly take out of the heap)")
    return "\n".join(lines)
