# meterfw.event_log: the ledger's operations as "time_s,operation,count" lines for a lab calibrating the
# power profile (meterlab.power.events reads them). Runs under pytest and on MicroPython.
import os

from meterfw import ledger
from meterfw.event_log import BUFFER_LINES, HEADER, EventLog

COSTS = {ledger.WAKE: 9000, ledger.RADIO_TX_BYTE: 4, ledger.RADIO_RX_BYTE: 2, ledger.MAC_CHECK: 1500,
         ledger.SIGNATURE_VERIFY: 40_000, ledger.VALVE: 300_000}
PATH = "events-under-test.csv"


def _fresh():
    try:
        os.remove(PATH)
    except OSError:
        pass


class Ticks:
    def __init__(self):
        self.ms = 1_234_567

    def __call__(self):
        return self.ms


def _lines():
    with open(PATH) as f:
        return f.read().split("\n")[:-1]


def test_the_ledgers_operations_are_logged_when_the_meter_sleeps():
    _fresh()
    ticks = Ticks()
    book = ledger.EnergyLedger(COSTS, 10_000_000, 1_000_000, lambda: 0)
    book.events = EventLog(ticks, PATH)
    book.charge(ledger.WAKE)
    ticks.ms += 45
    book.charge(ledger.RADIO_TX_BYTE, 23)
    ticks.ms += 5
    assert book.spend(ledger.MAC_CHECK, critical=True)
    try:
        open(PATH).close()
        written = True
    except OSError:
        written = False
    assert not written  # nothing on flash during the wake
    book.events.flush()
    assert _lines() == [HEADER[:-1], "1234.567,wake,1", "1234.612,radio_tx_byte,23", "1234.617,mac_check,1"]
    book.charge(ledger.VALVE)
    book.events.flush()
    book.events.flush()  # nothing waiting: nothing written
    assert _lines()[1:] == ["1234.567,wake,1", "1234.612,radio_tx_byte,23", "1234.617,mac_check,1",
                            "1234.617,valve,1"]
    _fresh()


def test_a_refused_operation_is_not_logged_and_a_full_buffer_is_written():
    _fresh()
    book = ledger.EnergyLedger(COSTS, 10_000, 5_000, lambda: 0)
    book.events = EventLog(Ticks(), PATH)
    assert not book.spend(ledger.SIGNATURE_VERIFY)  # refused: not done, not logged
    for _ in range(BUFFER_LINES):
        book.charge(ledger.RADIO_RX_BYTE)
    assert len(_lines()) == 1 + BUFFER_LINES  # written without waiting for the sleep
    _fresh()


def test_without_an_event_log_the_ledger_writes_nothing():
    _fresh()
    book = ledger.EnergyLedger(COSTS, 10_000, 5_000, lambda: 0)
    book.charge(ledger.WAKE)
    try:
        open(PATH).close()
        exists = True
    except OSError:
        exists = False
    assert not exists and book.events is None
