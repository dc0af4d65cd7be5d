# meterfw.esme, the electricity meter: metering into registers and the half-hourly profile, the tariff,
# the load switch, the balance, reads, power cuts, and the meter kept on flash between uses (meterfw.lazy).
# Runs under pytest and on MicroPython.
from meterfw import authorisation, der, esme, esme_host, gbcs, pipeline, roles, store
from meterfw.lazy import LazyDevice
from mpcheck import raised
from pipeline_fakes import DEVICE, PARTY_IDS
from power_cut import CuttingStorage, PowerCut

TARIFF, READ = authorisation.TARIFF, authorisation.READ_IMPORT_REGISTERS
CONNECT, DISCONNECT = authorisation.SUPPLY_CONNECT, authorisation.SUPPLY_DISCONNECT
RESET = authorisation.RESET_BALANCE
S, NO, OTHER = roles.SUPPLIER, roles.NETWORK_OPERATOR, roles.OTHER
DAY0 = esme.days_from_civil(2026, 11, 25)
MIDNIGHT = DAY0 * esme.DAY_S  # 2026-11-25 00:00 UTC
OK, FAILED = der.encode([0]), der.encode([1])  # answers: the status alone
ECONOMY = esme_host.tariff([(0, 10_000), (14, 30_000), (44, 10_000)])  # 10 p, 30 p from 07:00, 10 p from 22:00


class Clock:
    def __init__(self, now=MIDNIGHT):
        self.now = now

    def __call__(self):
        return self.now


class Relay:
    def __init__(self):
        self.positions = []

    def __call__(self, closed):
        self.positions.append(closed)


def meter(storage=None, clock=None):
    relay = Relay()
    storage = storage if storage is not None else store.MemoryStorage()
    m = esme.ElectricityMeter(storage, relay, clock or Clock())
    return m, relay, storage


_counter = [0]


def order(m, role, code, payload=der.EMPTY):
    """(reason, answer or None): the meter's validator, then its executor, as the endpoint runs them."""
    _counter[0] += 1
    message = gbcs.parse(gbcs.build(gbcs.CRA_COMMAND, _counter[0], PARTY_IDS[S], DEVICE, code, payload))
    rule = authorisation.rule(code)
    reason, plan = m.validate(message, role, rule)
    if reason != pipeline.ACCEPT:
        return reason, None
    return reason, m.execute(pipeline.Decision(pipeline.ACCEPT, message, role, rule, plan))


def reading(m, role=S, payload=der.EMPTY):
    reason, answer = order(m, role, READ, payload)
    assert reason == pipeline.ACCEPT, reason
    return esme_host.parse_read(answer)


def run_hours(m, clock, hours, watts, step_s=36):
    # A steady load for a while, measured each step_s as a board's loop does.
    for _ in range(hours * 3600 // step_s):
        clock.now += step_s
        m.measure(watts * step_s * 1000 // 3600)


def test_calendar_months_back():
    assert esme.civil_from_days(DAY0) == (2026, 11, 25)
    assert esme.days_from_civil(1970, 1, 1) == 0 and esme.civil_from_days(0) == (1970, 1, 1)
    for day in range(DAY0 - 800, DAY0 + 800, 7):
        assert esme.days_from_civil(*esme.civil_from_days(day)) == day
    assert esme.window_days(DAY0, 1) == 31  # 26 October to 25 November
    march31 = esme.days_from_civil(2025, 3, 31)
    assert esme.window_days(march31, 1) == 31  # from 28 February (clamped), 1 to 31 March
    assert esme.window_days(esme.days_from_civil(2024, 3, 31), 1) == 31  # from 29 February in a leap year
    assert esme.window_days(march31, 13) == 396  # from 29 February 2024
    assert esme.window_days(DAY0, 12) == 365 and esme.window_days(DAY0, 13) <= esme.DAYS_KEPT


def test_a_new_meter_is_connected_on_the_default_tariff():
    m, relay, storage = meter()
    assert relay.positions == [True] and m.supply and storage.names() == []
    r = reading(m)
    assert (r.import_wh, r.days, r.supply, r.balance) == (0, [], True, 0)
    assert r.tariff == [(0, 25_000)]


def test_energy_goes_to_the_half_hours_the_rates_and_the_balance():
    clock = Clock(MIDNIGHT + 6 * 3600)  # 06:00
    m, _, storage = meter(clock=clock)
    assert order(m, S, TARIFF, ECONOMY) == (pipeline.ACCEPT, OK)
    run_hours(m, clock, 2, 1000)  # 1 kW from 06:00 to 08:00: 1 kWh cheap, 1 kWh at the day rate
    clock.now += 1  # past 08:00: the 07:30 interval closes
    m.measure(0)
    profile = reading(m, S, esme_host.read(1, 0)).profile
    assert profile[12:16] == [500, 500, 500, 500] and profile[16] == 0 and profile[17] is None
    assert profile[:12] == [0] * 12  # the meter ran since midnight with no load
    r = reading(m, S, esme_host.read(1))
    assert r.import_wh == 2000 and r.rates[:3] == [1000, 1000, 0] and r.days[-1] == 2000
    assert r.balance == -(10_000 + 30_000)  # 1 kWh at 10 p and 1 kWh at 30 p, in thousandths of a penny
    assert len(r.days) == 31 and r.days[:-1] == [None] * 30  # no record before it was installed
    # the closed half-hours and the registers are on flash: a restart keeps them
    again, _, _ = meter(storage, clock)
    assert again.import_mwh == 2_000_000 and again.day_profile(DAY0)[12:16] == [500] * 4
    assert order(again, S, RESET) == (pipeline.ACCEPT, OK) and reading(again).balance == 0


def test_the_load_switch_opens_and_closes_and_nothing_is_metered_while_open():
    clock = Clock()
    m, relay, storage = meter(clock=clock)
    assert order(m, S, DISCONNECT) == (pipeline.ACCEPT, OK)
    assert relay.positions == [True, False] and not reading(m).supply
    run_hours(m, clock, 1, 3000)
    assert reading(m).import_wh == 0
    restarted, relay_after_boot, _ = meter(storage, clock)
    assert relay_after_boot.positions == [False]  # the relay follows the stored state at boot
    assert order(restarted, S, CONNECT) == (pipeline.ACCEPT, OK) and relay_after_boot.positions == [False, True]
    run_hours(restarted, clock, 1, 3000)
    assert reading(restarted).import_wh == 3000


def test_bad_payloads_and_foreign_codes_change_nothing():
    m, relay, storage = meter()
    before = dict(storage.files)
    bad_tariffs = (b"", der.EMPTY, der.encode([[0]]), der.encode([[0, 1, 2]]), der.encode([0, 5]),
                   der.encode([[1, 5]]), der.encode([[0, 5], [0, 6]]), der.encode([[0, 5], [48, 6]]),
                   der.encode([[0, -1]]), der.encode([[0, esme.PRICE_MAX + 1]]), der.encode([[True, 5]]),
                   der.encode([[b"\x00", 5]]), der.encode([[2 * i, 1] for i in range(9)]),
                   der.encode([[0, 5]]) + b"\x00",  # a byte after the SEQUENCE
                   bytes.fromhex("3009" "3007" "020100" "02020005"),  # price 5 in two bytes: not DER
                   b"\x01\x00\x00\x00\x61\xa8")  # the packed encoding of before
    for payload in bad_tariffs:
        assert order(m, S, TARIFF, payload) == (pipeline.REJECT_BAD_PAYLOAD, None), payload
    for values in ([0], [14], [1, 31], [1, -1], [1, 2, 3], [b"\x01"], [True], [[1]]):
        assert order(m, S, READ, der.encode(values)) == (pipeline.REJECT_BAD_PAYLOAD, None), values
    assert order(m, S, READ, b"\x01") == (pipeline.REJECT_BAD_PAYLOAD, None)
    for code in (DISCONNECT, CONNECT, RESET):
        for payload in (b"", der.encode([1]), der.encode([[]])):
            assert order(m, S, code, payload) == (pipeline.REJECT_BAD_PAYLOAD, None)
    assert order(m, S, authorisation.VALVE_CLOSE) == (pipeline.REJECT_UNSUPPORTED, None)  # no valve here
    assert storage.files == before and relay.positions == [True] and m.supply
    for blocks in ([], [(1, 5)], [(0, 5), (0, 6)], [(0, esme.PRICE_MAX + 1)]):
        raised(ValueError, esme_host.tariff, blocks)
    raised(ValueError, esme_host.read, 14)
    raised(ValueError, esme_host.read, 0, 3)


def test_a_network_operator_and_a_third_party_read_energy_not_the_account():
    clock = Clock()
    m, _, _ = meter(clock=clock)
    run_hours(m, clock, 1, 2000)
    for role in (NO, OTHER):
        r = reading(m, role, esme_host.read(2))
        assert r.import_wh == 2000 and len(r.days) == esme.window_days(DAY0, 2)
        assert (r.supply, r.balance, r.tariff) == (None, None, None)
    assert reading(m, S).tariff == [(0, 25_000)]


def test_thirteen_months_of_days_are_kept_and_no_more():
    clock = Clock()
    m, _, storage = meter(clock=clock)
    days = 420
    for n in range(days):  # one closing measurement a day: n + 1 Wh on day n
        clock.now = MIDNIGHT + n * esme.DAY_S + 3600
        m.measure(0)  # closes the previous day
        m.measure((n + 1) * 1000)
    clock.now += esme.DAY_S - 3600 + 1  # into the next day
    m.measure(0)
    today = DAY0 + days
    r = reading(m, S, esme_host.read(13))
    window = esme.window_days(today, 13)
    assert len(r.days) == window and r.days[-1] == 0  # today has had no load yet
    assert r.days[:-1] == [n + 1 for n in range(days - window + 1, days)]
    assert r.import_wh == sum(range(1, days + 1))
    oldest = reading(m, S, esme_host.read(13, window - 1))
    assert oldest.day == today - window + 1 and sum(v for v in oldest.profile if v) == days - window + 2
    assert order(m, S, READ, esme_host.read(13, window)) == (pipeline.REJECT_BAD_PAYLOAD, None)
    assert order(m, S, READ, esme_host.read(1, 31)) == (pipeline.REJECT_BAD_PAYLOAD, None)
    assert len([name for name in storage.names() if name.startswith("day.")]) == esme.DAYS_KEPT
    # a day whose slot a newer day took has no record
    assert m.day_profile(today - esme.DAYS_KEPT - 1) == [esme.NO_RECORD] * esme.INTERVALS


def test_a_power_cut_at_any_write_keeps_a_whole_state():
    # A day closes and the supply is cut off: cut the power before each of the flash changes in turn.
    def scenario(storage, clock):
        m, _, _ = meter(storage, clock)
        run_hours(m, clock, 1, 1000)
        clock.now = MIDNIGHT + esme.DAY_S + 60
        m.measure(0)
        order(m, S, DISCONNECT)

    clean = CuttingStorage()
    scenario(clean, Clock(MIDNIGHT + 23 * 3600))
    total = clean.changes
    assert total >= 6
    for cut in range(1, total + 1):
        storage = CuttingStorage(cut_before=cut)
        clock = Clock(MIDNIGHT + 23 * 3600)
        raised(PowerCut, scenario, storage, clock)
        storage.cut_before = None
        m, relay, _ = meter(storage, clock)
        assert relay.positions == [m.supply]
        assert m.import_mwh in (0, 500_000, 1_000_000)  # a half-hour's worth at most is lost
        closed = m.day_profile(DAY0)
        if m.import_mwh == 1_000_000:
            assert closed[46:] == [500, 500]
        assert not [name for name in storage.names() if name.endswith(".new")]


def test_a_lazy_meter_is_on_flash_between_uses():
    clock = Clock()
    storage = store.MemoryStorage()
    relay = Relay()
    loads, unloads = [], []

    def load():
        loads.append(clock.now)
        return esme.ElectricityMeter(storage, relay, clock)

    meter = LazyDevice(load, lambda: unloads.append(clock.now), clock)
    assert (len(loads), len(unloads), meter.loaded, relay.positions) == (1, 1, False, [True])
    for _ in range(49):  # 1 kW, measured every 36 s: the first half-hour is not over
        clock.now += 36
        meter.measure(10_000)
    assert len(loads) == 1  # nothing was due: the meter stayed on flash
    clock.now += 36
    meter.measure(10_000)  # 00:30: its half-hour closes
    assert len(loads) == len(unloads) == 2 and not meter.loaded
    assert esme.ElectricityMeter(storage, Relay(), clock).day_profile(DAY0)[0] == 500
    meter.measure(250_000)  # measured, not due: held in RAM
    reason, answer = order(meter, S, READ)  # loaded for the command, with that energy, then dropped
    assert reason == pipeline.ACCEPT and esme_host.parse_read(answer).import_wh == 750
    assert not meter.loaded and len(loads) == len(unloads) == 3
    assert esme.ElectricityMeter(storage, Relay(), clock).import_mwh == 750_000  # flushed: a cut loses none
    assert order(meter, S, TARIFF, der.encode([1])) == (pipeline.REJECT_BAD_PAYLOAD, None) and not meter.loaded
    assert order(meter, S, DISCONNECT)[0] == pipeline.ACCEPT and relay.positions[-1] is False
    assert not meter.loaded and not esme.ElectricityMeter(storage, Relay(), clock).supply


def test_prepayment_cuts_at_zero_credit_and_a_top_up_or_emergency_credit_restores_it():
    TOP_UP, PREPAY, CREDIT, EMERGENCY = (authorisation.TOP_UP, authorisation.PREPAYMENT_MODE,
                                         authorisation.CREDIT_MODE, authorisation.EMERGENCY_CREDIT)
    clock = Clock(MIDNIGHT)
    m, relay, storage = meter(clock=clock)
    assert order(m, S, PREPAY) == (pipeline.ACCEPT, OK)
    # no credit at all: the meter cut the supply as soon as it knew it was a prepayment meter with none
    assert not m.supply and relay.positions[-1] is False and reading(m).cut_for_credit
    assert order(m, S, TOP_UP, esme_host.top_up(100_000)) == (pipeline.ACCEPT, OK)  # 1 pound
    r = reading(m)
    assert r.supply and r.prepayment and not r.cut_for_credit and r.balance == 100_000 and relay.positions[-1]
    run_hours(m, clock, 1, 2000)  # 2 kWh at 25 p would cost 50 p; the pound lasts, 50 p are left
    assert m.supply and m.balance == 50_000
    run_hours(m, clock, 2, 2000)  # the credit runs out within the first hour: cut, and nothing more booked
    r = reading(m)
    assert not r.supply and r.cut_for_credit and r.balance <= 0 and relay.positions[-1] is False
    booked = m.import_mwh
    run_hours(m, clock, 1, 2000)
    assert m.import_mwh == booked
    # emergency credit: 5 pounds below zero, once, while the credit is low
    assert order(m, S, EMERGENCY) == (pipeline.ACCEPT, OK)
    r = reading(m)
    assert r.supply and r.emergency and not r.cut_for_credit
    assert order(m, S, EMERGENCY) == (pipeline.ACCEPT, FAILED)  # already active: not available
    run_hours(m, clock, 10, 2000)  # 5 kWh at 25 p: the emergency credit runs out too
    assert not m.supply and m.balance <= -esme.EMERGENCY_CREDIT and reading(m).cut_for_credit
    # a top-up that clears the debt ends the emergency and the cut; a restart keeps every part of it
    owed = -m.balance
    assert order(m, S, TOP_UP, esme_host.top_up(owed + 200_000))[0] == pipeline.ACCEPT
    r = reading(m)
    assert r.supply and not r.emergency and not r.cut_for_credit and r.balance == 200_000
    again, again_relay, _ = meter(storage, clock)
    assert again.payment == esme.PREPAYMENT and again_relay.positions == [True]
    # credit mode never cuts: the balance goes into debt
    assert order(again, S, CREDIT) == (pipeline.ACCEPT, OK)
    run_hours(again, clock, 5, 2000)
    assert again.supply and again.balance < 0 and not reading(again).prepayment
    assert order(again, S, EMERGENCY) == (pipeline.ACCEPT, FAILED)  # only a prepayment meter has it
    # a supplier's disconnect is not a cut for credit: a top-up does not undo it
    assert order(again, S, PREPAY)[0] == pipeline.ACCEPT and order(again, S, TOP_UP, esme_host.top_up(10_000_000))[0] == 0
    assert order(again, S, DISCONNECT)[0] == pipeline.ACCEPT
    assert order(again, S, TOP_UP, esme_host.top_up(1000))[0] == pipeline.ACCEPT and not again.supply


def test_top_ups_are_checked_and_only_a_supplier_sends_prepayment_commands():
    m, _, storage = meter()
    for bad in (b"", der.EMPTY, der.encode([0]), der.encode([-5]), der.encode([esme.TOP_UP_MAX + 1]),
                der.encode([1000, 1]), (1000).to_bytes(4, "big")):
        assert order(m, S, authorisation.TOP_UP, bad) == (pipeline.REJECT_BAD_PAYLOAD, None)
    assert order(m, S, authorisation.PREPAYMENT_MODE, der.encode([1])) == (pipeline.REJECT_BAD_PAYLOAD, None)
    assert storage.names() == []  # refused payloads change nothing
    raised(ValueError, esme_host.top_up, 0)
    for code in (authorisation.TOP_UP, authorisation.PREPAYMENT_MODE, authorisation.CREDIT_MODE,
                 authorisation.EMERGENCY_CREDIT):
        assert authorisation.allowed(S, code) and not authorisation.allowed(NO, code)
        assert not authorisation.allowed(OTHER, code) and authorisation.runs("esme", code)
        assert not authorisation.runs("gsme", code)
    assert not authorisation.needs_signature(authorisation.TOP_UP)  # MAC only, as RTDS has it
    assert authorisation.needs_signature(authorisation.EMERGENCY_CREDIT)


def test_a_state_written_before_prepayment_loads_as_a_credit_meter():
    clock = Clock(MIDNIGHT)
    m, _, storage = meter(clock=clock)
    run_hours(m, clock, 1, 1000)
    m.flush()
    data = storage.files["meter.0"]
    sequence, payload = store._decode("meter.0", data, esme.FORMAT_METER, 0, len(data) - 10)
    storage.files["meter.0"] = store._encode(esme.FORMAT_METER, 0, sequence, payload[:-1])  # the old size
    old, relay, _ = meter(storage, clock)
    assert old.payment == 0 and old.import_mwh == m.import_mwh and relay.positions == [True]
