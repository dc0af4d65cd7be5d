# Board protocol codec and the device core's answers. Runs under pytest and on MicroPython (mprunner).
from meterfw import link_host as link
from meterfw.device import ACTION_RADIO_SEND, UNCONFIGURED, DeviceCore, role_from_config
from mpcheck import raised


def _core(has_radio=True, commissioned=True):
    # A commissioned board has an endpoint; the radio tests need no more of it than that it is there.
    return DeviceCore("esme", "1.2.3", "esp32-devkitc", "esp32", has_radio, object() if commissioned else None)


def test_ping_is_answered_with_what_the_board_is():
    answer, action = _core().handle(link.ping(0xDEADBEEF), 123456, 98765)
    assert action is None
    pong = link.parse_pong(answer)
    assert pong.nonce == 0xDEADBEEF
    assert pong.free_heap == 98765
    assert pong.uptime_ms == 123456
    assert (pong.role, pong.version, pong.board, pong.family) == ("esme", "1.2.3", "esp32-devkitc", "esp32")


def test_pong_round_trips_and_rejects_every_truncation():
    payload = link.pong(7, 1, 2, "chf", "0.1.0", "rpi-pico", "rp2040")
    assert link.parse_pong(payload).board == "rpi-pico"
    for cut in range(len(payload)):
        raised(link.LinkError, link.parse_pong, payload[:cut])
    raised(link.LinkError, link.parse_pong, payload + b"\x00")


def test_malformed_ping_is_refused_with_a_reason():
    core = _core()
    answer, action = core.handle(bytes((link.PING, 1, 2)), 0, 0)
    assert answer == link.error(link.PING, link.ERR_MALFORMED)
    assert action is None
    assert core.rejected == 1


def test_unknown_kind_is_refused():
    answer, _ = _core().handle(b"\x7e", 0, 0)
    assert answer == link.error(0x7E, link.ERR_UNKNOWN_KIND)
    assert "unknown request kind" in link.describe_error(answer)


def test_empty_payload_is_dropped_silently():
    core = _core()
    assert core.handle(b"", 0, 0) == (None, None)
    assert core.rejected == 1


def test_radio_send_becomes_an_action_for_the_caller():
    peer = b"\x02\x11\x22\x33\x44\x55"
    answer, action = _core().handle(link.radio_send(peer, b"hello"), 0, 0)
    assert answer is None
    assert action == (ACTION_RADIO_SEND, peer, b"hello")


def test_radio_send_limits():
    peer = b"\x02" * 6
    core = _core()
    answer, _ = core.handle(bytes((link.RADIO_SEND,)) + peer + b"x" * 251, 0, 0)
    assert answer == link.error(link.RADIO_SEND, link.ERR_TOO_LONG)
    answer, _ = core.handle(bytes((link.RADIO_SEND,)) + peer, 0, 0)
    assert answer == link.error(link.RADIO_SEND, link.ERR_MALFORMED)
    answer, _ = _core(has_radio=False).handle(link.radio_send(peer, b"x"), 0, 0)
    assert answer == link.error(link.RADIO_SEND, link.ERR_NO_RADIO)
    raised(ValueError, link.radio_send, peer, b"x" * 251)
    raised(ValueError, link.radio_send, peer, b"")
    raised(ValueError, link.radio_send, b"\x02", b"x")


def test_role_comes_from_config_or_board_is_unconfigured():
    assert role_from_config({"role": "gsme"}) == "gsme"
    assert role_from_config({"role": "dcc"}) == UNCONFIGURED
    assert role_from_config({}) == UNCONFIGURED
    assert role_from_config([]) == UNCONFIGURED


def test_board_that_is_not_commissioned_stays_off_the_air():
    core = _core(commissioned=False)
    answer, action = core.handle(link.radio_send(b"\x02" * 6, b"x"), 0, 0)
    assert action is None and answer == link.error(link.RADIO_SEND, link.ERR_NOT_COMMISSIONED)
    assert link.parse_pong(core.handle(link.ping(1), 0, 0)[0]).role == "esme"  # it still says who it is


def test_a_battery_meters_ledger_over_the_board_protocol():
    from meterfw import ledger

    core = _core()
    answer, _ = core.handle(bytes((link.LEDGER,)), 0, 0)
    assert answer == link.error(link.LEDGER, link.ERR_NO_LEDGER)  # a mains meter keeps none
    costs = {operation: 10 for operation in ledger.OPERATIONS}
    core.ledger = book = ledger.EnergyLedger(costs, 1000, 400, lambda: 86400 * 3 + 5)
    book.charge(ledger.MAC_CHECK, 4)
    assert not book.spend(ledger.RADIO_TX_BYTE, 70)  # 700 more than the 600 above the reserve
    answer, _ = core.handle(bytes((link.LEDGER,)), 0, 0)
    report = link.parse_ledger(answer, ledger.OPERATIONS)
    assert (report.day, report.allowance, report.reserve, report.spent, report.refused) == (3, 1000, 400, 40, 1)
    assert report.by_operation[ledger.MAC_CHECK] == (4, 40) and report.by_operation[ledger.VALVE] == (0, 0)
    for cut in range(len(answer)):
        raised(link.LinkError, link.parse_ledger, answer[:cut], ledger.OPERATIONS)
    assert core.handle(bytes((link.LEDGER, 0)), 0, 0)[0] == link.error(link.LEDGER, link.ERR_MALFORMED)
