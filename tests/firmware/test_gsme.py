# meterfw.gsme, the battery gas meter, and the pipeline asking its energy ledger: a flood of reads stops at
# the reserve, and the valve still closes on it. Runs under pytest and on MicroPython.
from meterfw import authorisation, der, gas_host, gsme, gsme_poll, ledger, pipeline, roles, store
from meterfw.endpoint import GbcsEndpoint
from meterfw.response import Responder
from mpcheck import raised
from pipeline_fakes import DEVICE, DEVICE_DS, DEVICE_KA, FakeCounters, command, make_anchors

S = roles.SUPPLIER
READ, CLOSE = authorisation.READ_GAS_REGISTER, authorisation.VALVE_CLOSE
COSTS = {ledger.WAKE: 5000, ledger.RADIO_TX_BYTE: 10, ledger.RADIO_RX_BYTE: 4, ledger.MAC_CHECK: 1000,
         ledger.SIGNATURE_VERIFY: 10_000, ledger.VALVE: 50_000}
NOW = 1_800_000_000


class Valve:
    def __init__(self):
        self.positions = []

    def __call__(self, is_open):
        self.positions.append(is_open)


def meter(storage=None, allowance=100_000, reserve=61_000):
    storage = store.MemoryStorage() if storage is None else storage
    valve = Valve()
    energy = ledger.EnergyLedger(COSTS, allowance, reserve, lambda: NOW)
    return gsme.GasMeter(storage, valve, lambda: NOW, energy), valve, storage


def endpoint_for(gas, device_type=None):
    anchors = make_anchors()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters(), validator=gas.validate,
                                budget=gas.ledger.allow, device_type=device_type)
    return GbcsEndpoint(p, Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors), gas.execute)


def test_gas_flows_into_the_register_until_the_valve_closes():
    gas, valve, storage = meter()
    assert valve.positions == [True]
    gas.measure(60)
    gas.measure(70)  # past 100 litres: written
    assert gas_host.parse_mirror(gas.mirror()) == (NOW, 130, True)
    assert gsme.GasMeter(storage, Valve(), lambda: NOW, gas.ledger).register == 130
    endpoint = endpoint_for(gas)
    decision, _ = endpoint.handle(command(S, CLOSE, 5, payload=der.EMPTY, sign=True))
    assert decision.accepted and valve.positions == [True, False]
    gas.measure(500)
    assert gas.register == 130  # nothing flows through a closed valve
    again_valve = Valve()
    again = gsme.GasMeter(storage, again_valve, lambda: NOW, gas.ledger)
    assert again_valve.positions == [False] and not again.valve_open  # driven to the stored state at boot
    raised(ValueError, gas.measure, -1)


def test_reads_answer_the_register_and_bad_payloads_change_nothing():
    gas, _, storage = meter()
    gas.measure(42)
    endpoint = endpoint_for(gas)
    decision, response = endpoint.handle(command(S, READ, 3, payload=der.EMPTY))
    assert decision.accepted and response is not None
    assert gas_host.parse_register_read(gas.execute(decision)) == (NOW, 42, True)
    for frame, reason in ((command(S, READ, 4, payload=b"\x01"), pipeline.REJECT_BAD_PAYLOAD),
                          (command(S, READ, 5, payload=b""), pipeline.REJECT_BAD_PAYLOAD),
                          (command(S, READ, 6, payload=der.encode([0])), pipeline.REJECT_BAD_PAYLOAD),
                          (command(S, authorisation.TARIFF, 5, payload=der.EMPTY, sign=True), pipeline.REJECT_UNSUPPORTED)):
        assert endpoint.handle(frame)[0].reason == reason
    assert storage.names() == []


def test_the_host_decodes_the_gas_answers_and_refuses_failures():
    assert gas_host.parse_register_read(der.encode([0, NOW, 42, False])) == (NOW, 42, False)
    assert gas_host.parse_gpf_read(der.encode([0, 600, NOW, 42, True])) == (600, NOW, 42, True)
    for bad in (der.encode([1]), der.encode([0, NOW, 42]), der.encode([0, NOW, 42, 1]), der.EMPTY, b""):
        raised(ValueError, gas_host.parse_register_read, bad)
    for bad in (der.encode([1]), der.encode([0, 600, NOW, 42, 1]), der.encode([0, NOW, 42, True])):
        raised(ValueError, gas_host.parse_gpf_read, bad)


def test_a_flood_of_reads_stops_at_the_reserve_and_the_valve_still_closes():
    gas, valve, _ = meter()
    endpoint = endpoint_for(gas)
    reasons = [endpoint.handle(command(S, READ, 10 + n, payload=der.EMPTY))[0].reason for n in range(45)]
    # 39 MAC checks fit the 39,000 uJ above the reserve; the rest are refused before their MAC check
    assert reasons == [pipeline.ACCEPT] * 39 + [pipeline.REJECT_ENERGY] * 6
    assert gas.ledger.spent == 39_000 and gas.ledger.refused == 6
    # the supplier's valve close: MAC check, verify and valve, all from the reserve
    decision, _ = endpoint.handle(command(S, CLOSE, 100, payload=der.EMPTY, sign=True))
    assert decision.accepted and valve.positions == [True, False]
    assert gas.ledger.spent == gas.ledger.allowance and gas.ledger.spent_critical == 61_000
    # and nothing more today, critical or not
    assert endpoint.handle(command(S, CLOSE, 101, payload=der.EMPTY, sign=True))[0].reason == pipeline.REJECT_ENERGY
    assert endpoint.handle(command(S, READ, 102, payload=der.EMPTY))[0].reason == pipeline.REJECT_ENERGY


def test_the_pipeline_asks_for_the_ledgers_operations():
    assert (pipeline.MAC_CHECK, pipeline.SIGNATURE_VERIFY) == (ledger.MAC_CHECK, ledger.SIGNATURE_VERIFY)


def test_an_authentic_close_the_day_cannot_pay_for_is_answered_failed():
    gas, valve, storage = meter(allowance=60_000, reserve=60_000)  # MAC and verify fit, the valve does not
    decision, response = endpoint_for(gas).handle(command(S, CLOSE, 7, payload=der.EMPTY, sign=True))
    assert decision.accepted and response is not None and valve.positions == [True] and gas.valve_open
    assert storage.names() == []


def test_a_code_for_another_device_type_costs_no_verify():
    gas, _, _ = meter()
    endpoint = endpoint_for(gas, device_type="gsme")
    for code in (authorisation.TARIFF, authorisation.SUPPLY_DISCONNECT):  # an electricity meter's, signed
        assert endpoint.handle(command(S, code, 20 + code, payload=der.EMPTY, sign=True))[0].reason == \
            pipeline.REJECT_UNSUPPORTED
    assert gas.ledger.by_operation == {ledger.MAC_CHECK: [2, 2000]}  # the MAC checks, and nothing after
    assert endpoint.handle(command(S, CLOSE, 99, payload=der.EMPTY, sign=True))[0].accepted
    assert authorisation.runs("gsme", CLOSE) and not authorisation.runs("gsme", authorisation.TARIFF)
    assert authorisation.runs("chf", authorisation.CREDENTIALS_ANY_BY_RECOVERY) and not authorisation.runs("chf", CLOSE)


def test_the_schedule_wakes_on_the_interval_boundaries():
    assert gsme.next_wake(0) == 1800
    assert gsme.next_wake(1799) == 1800
    assert gsme.next_wake(1800) == 3600  # woken on the boundary: the next one, not the same one
    assert gsme.next_wake(NOW + 5, 600) == (NOW + 5) // 600 * 600 + 600


class Hub:
    """The hub's side of a wake, by hand: frames queued under tickets, the answers the meter sends."""

    def __init__(self, frames):
        self.waiting = list(frames)  # [(ticket, frame)]
        self.answers = []

    def answer_to(self, message):
        from meterfw import han_poll

        polled = han_poll.parse_poll(message)
        if isinstance(polled, tuple):
            self.answers.append(polled)
            self.waiting = [w for w in self.waiting if w[0] != polled[0]]
        return han_poll.queued(*self.waiting[0]) if self.waiting else han_poll.idle()


def test_a_wake_runs_what_the_hub_queued_each_once_then_sleeps():
    from meterfw import han_poll

    gas, valve, storage = meter()
    gas.measure(20)
    endpoint = endpoint_for(gas)
    hub = Hub([(7, command(S, READ, 20, payload=der.EMPTY)), (8, command(S, CLOSE, 21, payload=der.EMPTY, sign=True))])
    cycle = gsme_poll.PollCycle(gas, endpoint.handle)
    message = cycle.start()
    assert gas_host.parse_mirror(han_poll.parse_poll(message)) == (NOW, 20, True)
    while message is not None:
        message = cycle.answer(hub.answer_to(message))
    assert [(a[0], a[1]) for a in hub.answers] == [(7, pipeline.ACCEPT), (8, pipeline.ACCEPT)]
    assert hub.answers[0][3] is not None  # the read's MAC'd, encrypted answer
    assert gas_host.parse_mirror(hub.answers[1][2])[2] is False  # the DONE's mirror shows the valve shut
    assert valve.positions == [True, False] and cycle.ran == 2
    # its DONE was lost, so the hub hands ticket 8 again: the kept answer, not a second run or a replay
    again = gsme_poll.PollCycle(gas, endpoint.handle)
    done = han_poll.parse_poll(again.answer(han_poll.queued(8, command(S, CLOSE, 21, payload=der.EMPTY, sign=True))))
    assert done[:2] == (8, pipeline.ACCEPT) and valve.positions == [True, False]
    assert endpoint.pipeline.accepted == 2
    # the same ticket with another frame (a hub that lost its flash) is run, and refused as the replay it is
    other = han_poll.parse_poll(again.answer(han_poll.queued(8, command(S, CLOSE, 20, payload=der.EMPTY, sign=True))))
    assert other[:2] == (8, pipeline.REJECT_REPLAY)


def test_a_wake_takes_at_most_its_limit_and_ignores_what_is_not_the_hubs_answer():
    from meterfw import han_poll

    gas, _, _ = meter()
    endpoint = endpoint_for(gas)
    cycle = gsme_poll.PollCycle(gas, endpoint.handle, limit=1)
    cycle.start()
    assert cycle.answer(han_poll.queued(1, command(S, READ, 30, payload=der.EMPTY))) is not None
    assert cycle.answer(han_poll.queued(2, command(S, READ, 31, payload=der.EMPTY))) is None  # waits for the next wake
    assert gsme_poll.PollCycle(gas, endpoint.handle).answer(b"\x30junk") is None
    assert gsme_poll.PollCycle(gas, endpoint.handle).answer(han_poll.idle()) is None
    assert endpoint.pipeline.accepted == 1


def test_a_wake_hears_its_answer_then_only_what_the_day_can_spare_and_never_more_than_its_share():
    # the reserve (61,000 of 100,000 uJ) is kept for critical work: once the rest is spent, a wake still
    # hears the hub's first answer (a queued valve close must arrive), and then its radio goes off
    gas, _, _ = meter()
    energy = gas.ledger
    energy.charge(ledger.MAC_CHECK, 39)  # 39,000 uJ: the non-critical part is spent
    radio = gsme_poll.WakeRadio(energy)
    assert radio.hear(250) and radio.hear(250)  # the first answer's fragments, paid from the reserve
    assert energy.spent == 39_000 + 500 * COSTS[ledger.RADIO_RX_BYTE]
    assert radio.hear(gsme_poll.FIRST_ANSWER_BYTES - 500)
    assert not radio.hear(10) and radio.off and not radio.hear(1)  # the rest would eat the reserve
    # with the day's allowance to spare, a wake hears its share and no more, whatever is on the air
    gas, _, _ = meter(allowance=10_000_000, reserve=61_000)
    radio = gsme_poll.WakeRadio(gas.ledger)
    heard = 0
    while radio.hear(250):
        heard += 250
    assert heard == gsme_poll.MAX_HEARD_A_WAKE // 250 * 250 and radio.off
    assert gas.ledger.spent == heard * COSTS[ledger.RADIO_RX_BYTE]
