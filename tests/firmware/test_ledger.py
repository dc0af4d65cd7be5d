# meterfw.ledger: the battery meter's daily energy allowance, its reserve for critical work, refusals and
# the day's report. Runs under pytest and on MicroPython.
from meterfw import ledger
from mpcheck import raised

COSTS = {ledger.WAKE: 9000, ledger.RADIO_TX_BYTE: 4, ledger.RADIO_RX_BYTE: 2, ledger.MAC_CHECK: 1500,
         ledger.SIGNATURE_VERIFY: 40_000, ledger.VALVE: 300_000}
DAY = 86400
NOON = 20_000 * DAY + DAY // 2


class Clock:
    def __init__(self, now=NOON):
        self.now = now

    def __call__(self):
        return self.now


def make(allowance=1_000_000, reserve=400_000, clock=None):
    return ledger.EnergyLedger(COSTS, allowance, reserve, clock or Clock())


def test_charges_add_up_by_operation():
    book = make()
    book.charge(ledger.WAKE)
    book.charge(ledger.RADIO_TX_BYTE, 120)
    book.charge(ledger.RADIO_RX_BYTE, 60)
    assert book.spent == 9000 + 480 + 120
    assert book.by_operation == {ledger.WAKE: [1, 9000], ledger.RADIO_TX_BYTE: [120, 480],
                                 ledger.RADIO_RX_BYTE: [60, 120]}
    assert book.left() == 600_000 - 9600 and book.left(critical=True) == 1_000_000 - 9600


def test_a_flood_of_non_critical_work_stops_at_the_reserve():
    book = make()
    done = 0
    while book.spend(ledger.MAC_CHECK):
        done += 1
    assert done == 600_000 // 1500 and book.spent == 600_000  # exactly down to the reserve
    assert book.refused == 1 and "down to the reserve" in book.why
    assert not book.spend(ledger.MAC_CHECK) and book.refused == 2 and book.spent == 600_000
    # critical work still gets through, on the reserve
    assert book.spend(ledger.SIGNATURE_VERIFY, critical=True) and book.spend(ledger.VALVE, critical=True)
    assert book.spent_critical == 340_000 and book.why is None
    assert not book.spend(ledger.VALVE, critical=True)  # 60,000 left: not a valve's worth
    assert book.refused_critical == 1 and "reserve included" in book.why
    assert book.spent <= book.allowance


def test_scheduled_work_is_booked_even_past_the_allowance_and_a_new_day_starts_afresh():
    clock = Clock()
    book = make(clock=clock)
    for _ in range(200):
        book.charge(ledger.WAKE)  # the schedule does not ask
    assert book.spent == 1_800_000 and book.left() == 0 and book.left(critical=True) == 0
    assert not book.spend(ledger.SIGNATURE_VERIFY, critical=True)
    clock.now += DAY // 2  # midnight UTC
    assert book.left() == 600_000 and book.spent == 0 and book.refused_critical == 0 and book.by_operation == {}
    clock.now -= DAY  # a clock set back does not hand out another allowance
    book.charge(ledger.WAKE)
    assert book.spent == 9000 and book.day == NOON // DAY + 1


def test_asking_before_starting_work():
    book = make(allowance=100_000, reserve=50_000)
    assert book.affords([(ledger.MAC_CHECK, 1), (ledger.RADIO_TX_BYTE, 200)])
    assert not book.affords([(ledger.SIGNATURE_VERIFY, 2)])
    assert book.affords([(ledger.SIGNATURE_VERIFY, 2)], critical=True)


def test_a_profile_without_every_cost_is_refused():
    for broken in ({k: v for k, v in COSTS.items() if k != ledger.VALVE}, dict(COSTS, valve=-1),
                   dict(COSTS, valve=1.5), dict(COSTS, wake=True)):
        raised(ValueError, ledger.EnergyLedger, broken, 10, 5, Clock())
    raised(ValueError, ledger.EnergyLedger, COSTS, 10, 11, Clock())


def test_costs_from_a_board_profile_round_up_to_the_microjoule():
    power = {"supply_v": 3.3, "currents_ma": {"active": 27.0, "radio_tx": 240.0, "radio_rx": 100.0},
             "durations_ms": {"wake": 400, "link_byte": 0.0116, "mac_check": 15, "signature_verify": 250},
             "valve_mj": 720.0}
    costs = ledger.costs_from(power)
    # 27 mA x 3.3 V x 400 ms = 35,640 uJ (give or take a float's last digit on a board, then rounded up)
    assert costs[ledger.WAKE] in (35_640, 35_641) and costs[ledger.VALVE] == 720_000
    assert costs[ledger.RADIO_TX_BYTE] == 10 and costs[ledger.RADIO_RX_BYTE] == 4  # 9.19 and 3.83, up
    assert costs[ledger.MAC_CHECK] in (1_337, 1_338) and set(costs) == set(ledger.OPERATIONS)
    ledger.EnergyLedger(costs, 1, 0, lambda: 0)  # a whole, usable profile
