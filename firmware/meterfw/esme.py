"""The electricity meter (ESME): what it measures and keeps, and what each accepted command does to it
(design.md, "Devices"; GBCS ECS01a tariff, ECS17b read, ECS42/43 supply connect/disconnect, ECS04b reset
balance, and prepayment: CS01a top up, ECS02/ECS03 payment mode, ECS09 emergency credit). Sans-I/O: storage, the clock and the load switch are passed in; the board's loop feeds it the
energy its metrology measured.

    meter = ElectricityMeter(storage, switch, clock)   # switch(closed) drives the load relay
    meter.measure(mwh)                                 # energy measured since the previous call
    reason, plan = meter.validate(message, role, rule) # the pipeline's validator: payloads checked
    payload = meter.execute(decision)                  # the endpoint's executor: act, then answer

Time is the meter's clock in Unix seconds, UTC: half-hour intervals and days are UTC ones (a GB meter
runs its tariff on local time; that is left for the clock-sync work). Energy is counted in mWh and kept
per half-hour in Wh (the remainder is carried, so the profile adds up to the register).

Payloads, in DER (meterfw.der; an answer is the endpoint's: its status first, then the fields below):

    ECS01a tariff    SEQUENCE of 1..8 blocks, each SEQUENCE { start half-hour of the day (0..47, the
                     first 0, rising), price (thousandths of a penny per kWh) }
    ECS17b read      { }: registers only; { months (1..13) }: and the daily totals of that many months;
                     { months, days back }: that day's 48 half-hour values instead (days back within the
                     months). A third party's consent bounds months (meterfw.pipeline, 10a).
       answer        status, kind (0 registers and days, 1 one day's profile), meter time, then
       kind 0        import register (Wh), SEQUENCE of the 8 rate registers (Wh), the daily totals (OCTET
                     STRING of 3 bytes each, Wh, oldest first, today last; FFFFFF: no record)
                     [the supplier's part, only to the supplier: supply (BOOLEAN, connected), balance
                     (thousandths of a penny), payment (bit 0 prepayment, bit 1 emergency credit active,
                     bit 2 cut for credit), the tariff (as ECS01a's payload)]
       kind 1        day (days since 1970), the 48 half-hours (OCTET STRING of 4 bytes each, Wh;
                     FFFFFFFF: no record)
    CS01a top up     { amount (thousandths of a penny, 1 to TOP_UP_MAX) }
    ECS42, ECS43, ECS04b, ECS02, ECS03, ECS09   { }; the answer is the status alone. ECS09's status is
                     1 when emergency credit is not available (not in prepayment, already active, or the
                     credit not below EMERGENCY_CREDIT)

Prepayment. In prepayment mode the balance is the consumer's credit. When it falls to zero (or, with
emergency credit active, to minus EMERGENCY_CREDIT) the meter opens the load switch itself: a cut for
credit. A top-up adds to the balance; emergency credit (ECS09) is available once the credit is below
EMERGENCY_CREDIT, and a top-up that brings the balance above zero ends it. A cut for credit ends when
the credit allows again (after a top-up, emergency credit or a change to credit mode), and the switch
closes. (A GB meter arms the supply and waits for the consumer's button; a dev board has no such button,
so meterlab closes it.) A supplier's own disconnect (ECS43) is not a cut for credit: only ECS42 ends it.

Consumption reaches only those the table and the consent allow, and the supplier's part (balance,
supply, tariff) only the supplier (property 4): a network operator or a third party reads energy, not
the account.

What it keeps, each record written like meterfw.store's (write NAME.new, read back, rename):

    meter.0      supply (1) || import (8, mWh) || 8 rate registers (8 each, mWh) || balance (8, + 2^63)
                 || open interval (4, half-hours since 1970) || carry (2, mWh) || today (48 x 4, Wh)
                 || open interval's energy (4, mWh) || cost below a thousandth of a penny (4)
                 || payment (1, as in a read's answer; a record without it, written before prepayment
                 was modelled, is a credit meter's)
    meter.1      the tariff: n (1) || n x (start (1) || price (4))
    day.<slot>   a past day's profile: day (4) || 48 x 4 Wh, in slot day % DAYS_KEPT

State is written when an interval closes, after every command and by flush(), so a power cut loses
at most the energy measured since (a meter without a hold-up capacitor does the same) and never a
command's effect. On a board the meter is loaded only for that (meterfw.lazy): its state is whole on
flash between uses, so its code and RAM are free for the rest of the firmware. Changing supply writes the state first and then drives the relay; at start the relay is driven
to the stored state, so a cut between the two is mended at boot.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import authorisation, der_decode, endpoint, pipeline, roles, store

FORMAT_METER = const(0xE5)
FORMAT_DAY = const(0xE6)
INTERVAL_S = const(1800)
INTERVALS = const(48)
DAY_S = const(86400)
RATES = const(8)
MAX_MONTHS = const(13)
DAYS_KEPT = const(400)  # more than the 397 days 13 months can span
PRICE_MAX = const(10_000_000)  # thousandths of a penny per kWh: 100 pounds a kWh is surely a typo
NO_DAY_VALUE = const(0xFFFFFF)
NO_RECORD = 0xFFFFFFFF  # not const(): larger than a MicroPython small int
EMERGENCY_CREDIT = const(500_000)  # thousandths of a penny: 5 pounds
TOP_UP_MAX = const(100_000_000)  # 1,000 pounds in one top-up
PREPAYMENT = const(1)
EMERGENCY_ACTIVE = const(2)
CUT_FOR_CREDIT = const(4)

KIND_REGISTERS = const(0)
KIND_DAY = const(1)

_STATE = const(0)
_TARIFF = const(1)
_OLD_STATE_SIZE = const(1 + 8 + RATES * 8 + 8 + 4 + 2 + INTERVALS * 4 + 8)
_STATE_SIZE = const(_OLD_STATE_SIZE + 1)
_DAY_SIZE = const(4 + INTERVALS * 4)
_BALANCE_BIAS = 1 << 63
_DEFAULT_TARIFF = ((0, 25_000),)  # one rate, 25 p/kWh, until a supplier sets one



def parse_tariff(payload):
    """[(start half-hour, price)] of an ECS01a payload; ValueError when it is not one."""
    try:
        blocks = [der_decode.check(block, int, int) for block in der_decode.decode(payload)]
    except ValueError:
        raise ValueError("a tariff is 1 to 8 blocks of start and price")
    return _checked_tariff(blocks)


def _checked_tariff(blocks):
    if not 0 < len(blocks) <= RATES:
        raise ValueError("a tariff is 1 to 8 blocks of start and price")
    out = []
    for start, price in blocks:
        if not 0 <= start < INTERVALS or (not out and start) or (out and start <= out[-1][0]):
            raise ValueError("blocks must start at half-hour 0 and rise within the day")
        if not 0 <= price <= PRICE_MAX:
            raise ValueError("price out of range")
        out.append((start, price))
    return out


def _tariff_record(blocks):
    return bytes((len(blocks),)) + b"".join(bytes((s,)) + p.to_bytes(4, "big") for s, p in blocks)


def _parse_tariff_record(data):
    if len(data) < 6 or len(data) != 1 + 5 * data[0]:
        raise ValueError("not a tariff record")
    return _checked_tariff([(data[1 + 5 * i], int.from_bytes(data[2 + 5 * i:6 + 5 * i], "big"))
                            for i in range(data[0])])


def days_from_civil(year, month, day):
    # Days since 1970-01-01 of a Gregorian date (H. Hinnant's algorithm): the boards' time modules
    # disagree on their epoch, so the meter does its own calendar.
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil_from_days(days):
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def window_days(today, months):
    """How many days, today included, lie within `months` calendar months back from today: the days after
    the same date that many months ago (clamped to that month's end), up to today."""
    year, month, day = civil_from_days(today)
    month -= months
    while month < 1:
        month += 12
        year -= 1
    following = days_from_civil(year + (month == 12), month % 12 + 1, 1)
    start = days_from_civil(year, month, min(day, following - days_from_civil(year, month, 1)))
    return today - start


class ElectricityMeter:
    def __init__(self, storage, switch, clock):
        self._storage = storage
        self._switch = switch  # switch(closed: bool): the load relay
        self._clock = clock  # clock() -> Unix seconds
        self._sequence = {}
        self._dirty = False  # energy booked since the state was last written
        for name in list(storage.names()):
            if name.endswith(store.NEW):
                storage.remove(name)  # never committed: the old state stands
        try:
            record = self._read("meter.1", FORMAT_METER, _TARIFF, None)
            self._tariff = _DEFAULT_TARIFF if record is None else _parse_tariff_record(record)
        except ValueError:
            raise store.StoreCorrupt("meter.1: not a tariff")
        data = storage.read("meter.0")
        old = data is not None and len(data) == _OLD_STATE_SIZE + store.RECORD_OVERHEAD
        state = self._read("meter.0", FORMAT_METER, _STATE, _OLD_STATE_SIZE if old else _STATE_SIZE)
        self.payment = 0 if old or state is None else state[_OLD_STATE_SIZE]
        if state is None:
            self.supply = True
            self.import_mwh = 0
            self.rates = [0] * RATES
            self.balance = 0
            self._interval = clock() // INTERVAL_S
            self._carry = 0
            self._today = [0] * INTERVALS
            self._open_mwh = 0  # measured in the open interval, not yet in today's Wh
            self._cost_remainder = 0  # below a thousandth of a penny, not yet off the balance
            self._dirty = True  # a new meter: when it started is worth a write
        else:
            self.supply = state[0] == 1
            self.import_mwh = int.from_bytes(state[1:9], "big")
            self.rates = [int.from_bytes(state[9 + 8 * i:17 + 8 * i], "big") for i in range(RATES)]
            self.balance = int.from_bytes(state[73:81], "big") - _BALANCE_BIAS
            self._interval = int.from_bytes(state[81:85], "big")
            self._carry = int.from_bytes(state[85:87], "big")
            self._today = [int.from_bytes(state[87 + 4 * i:91 + 4 * i], "big") for i in range(INTERVALS)]
            self._open_mwh = int.from_bytes(state[279:283], "big")
            self._cost_remainder = int.from_bytes(state[283:287], "big")
        switch(self.supply)

    # ------------------------------------------------------------------------------------- records

    def _read(self, name, fmt, kind, size, remember=True):
        # remember=False for day files: 400 of them, read for a long read, are not to be tracked in RAM
        data = self._storage.read(name)
        if data is None:
            return None
        if size is None and len(data) < store.RECORD_OVERHEAD + 6:  # the tariff: of its own length
            raise store.StoreCorrupt(name + ": too short for a tariff")  # (at least one block)
        sequence, payload = store._decode(name, data, fmt, kind, size)
        if remember:
            self._sequence[name] = sequence
        return payload

    def _write(self, name, fmt, kind, payload):
        sequence = (self._sequence.get(name, 0) + 1) & 0xFFFFFFFF
        data = store._encode(fmt, kind, sequence, payload)
        store.commit(self._storage, name, data)
        self._sequence[name] = sequence

    def _save(self):
        parts = [b"\x01" if self.supply else b"\x00", self.import_mwh.to_bytes(8, "big")]
        for value in self.rates:
            parts.append(value.to_bytes(8, "big"))
        parts.append((self.balance + _BALANCE_BIAS).to_bytes(8, "big"))
        parts.append(self._interval.to_bytes(4, "big"))
        parts.append(self._carry.to_bytes(2, "big"))
        for value in self._today:
            parts.append(value.to_bytes(4, "big"))
        parts.append(self._open_mwh.to_bytes(4, "big"))
        parts.append(self._cost_remainder.to_bytes(4, "big"))
        parts.append(bytes((self.payment,)))
        self._write("meter.0", FORMAT_METER, _STATE, b"".join(parts))
        self._dirty = False

    def flush(self):
        """Everything to flash, if anything changed: what meterfw.lazy calls before it drops the meter."""
        if self._dirty:
            self._save()

    def due(self):
        """The meter time from which measure() has a half-hour to close."""
        return (self._interval + 1) * INTERVAL_S

    def day_profile(self, day):
        """The 48 half-hour values (Wh, NO_RECORD where none) of a day; today's from RAM."""
        if day == self._interval // INTERVALS:
            out = list(self._today)
            for i in range(self._interval % INTERVALS + 1, INTERVALS):
                out[i] = NO_RECORD
            out[self._interval % INTERVALS] += (self._carry + self._open_mwh) // 1000
            return out
        name = "day.%d" % (day % DAYS_KEPT)
        payload = self._read(name, FORMAT_DAY, 0, _DAY_SIZE, False) if day >= 0 else None
        if payload is None or int.from_bytes(payload[:4], "big") != day:
            return [NO_RECORD] * INTERVALS
        return [int.from_bytes(payload[4 + 4 * i:8 + 4 * i], "big") for i in range(INTERVALS)]

    # ------------------------------------------------------------------------------------ metering

    def _rate(self, interval):
        slot = interval % INTERVALS
        rate = 0
        for i in range(len(self._tariff)):
            if self._tariff[i][0] <= slot:
                rate = i
        return rate

    def measure(self, mwh):
        """Book mwh (measured since the previous call) to the open half-hour, then close every half-hour
        the clock has passed. With the load switch open no current flows: nothing is booked."""
        if mwh < 0 or mwh >= 1 << 30:
            raise ValueError("energy measured must be 0 to 2^30 mWh")
        if self.supply and mwh:
            rate = self._rate(self._interval)
            self._open_mwh += mwh
            self.import_mwh += mwh
            self.rates[rate] += mwh
            self._cost_remainder += mwh * self._tariff[rate][1]
            self.balance -= self._cost_remainder // 1_000_000
            self._cost_remainder %= 1_000_000
            self._dirty = True
            if self.payment & PREPAYMENT and self.balance <= self._floor():
                self._set_supply(False, CUT_FOR_CREDIT)  # the credit is spent: the meter opens the switch
        now = self._clock() // INTERVAL_S
        if now > self._interval:  # a clock set backwards keeps the open interval: the past is not rewritten
            self._close(now)

    def _floor(self):
        # the balance at which a prepayment meter cuts the supply
        return -EMERGENCY_CREDIT if self.payment & EMERGENCY_ACTIVE else 0

    def _set_supply(self, closed, cut=0):
        self.supply = closed
        self.payment = self.payment & ~CUT_FOR_CREDIT | cut
        self._save()  # state first: the relay follows it, now or at the next boot
        self._switch(closed)

    def _credit_changed(self):
        # after a top-up, emergency credit or a change of mode: end a cut for credit the credit now allows
        if self.payment & EMERGENCY_ACTIVE and self.balance > 0:
            self.payment &= ~EMERGENCY_ACTIVE  # topped up past zero: emergency credit is repaid
        allowed = not self.payment & PREPAYMENT or self.balance > self._floor()
        if self.payment & CUT_FOR_CREDIT and allowed:
            self._set_supply(True)
        elif self.payment & PREPAYMENT and not allowed and self.supply:
            self._set_supply(False, CUT_FOR_CREDIT)
        else:
            self._save()

    def _close(self, interval):
        day = self._interval // INTERVALS
        if not self._dirty and interval // INTERVALS == day:
            # nothing measured since the last write: only the open half-hour moves, which the next write
            # records (after a cut, closing the stored one again adds nothing), so the flash is spared
            self._interval = interval
            return
        total = self._carry + self._open_mwh
        self._today[self._interval % INTERVALS] += total // 1000
        self._carry = total % 1000
        self._open_mwh = 0
        if interval // INTERVALS != day:
            # the day's file first: a cut before the state's write redoes this, to the same file
            self._write("day.%d" % (day % DAYS_KEPT), FORMAT_DAY, 0,
                        day.to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in self._today))
            self._today = [0] * INTERVALS
        self._interval = interval
        self._save()

    # ------------------------------------------------------------------------------------ commands

    def validate(self, message, role, rule):
        """The pipeline's validator for this device's codes: (reason, plan)."""
        code = message.message_code
        payload = message.payload
        if not authorisation.runs("esme", code):
            return pipeline.REJECT_UNSUPPORTED, None
        if code == authorisation.TARIFF:
            try:
                return pipeline.ACCEPT, parse_tariff(payload)
            except ValueError:
                return pipeline.REJECT_BAD_PAYLOAD, None
        try:
            values = der_decode.decode(payload)
            if code == authorisation.READ_IMPORT_REGISTERS:
                return self._validate_read(values)
            if code == authorisation.TOP_UP:
                amount = der_decode.check(values, int)[0]
                if not 0 < amount <= TOP_UP_MAX:
                    return pipeline.REJECT_BAD_PAYLOAD, None
                return pipeline.ACCEPT, amount
            der_decode.check(values)  # the rest carry nothing
        except ValueError:
            return pipeline.REJECT_BAD_PAYLOAD, None
        return pipeline.ACCEPT, None

    def _validate_read(self, values):
        if not values:
            return pipeline.ACCEPT, (0, None)
        der_decode.check(values, *((int,) * len(values)))
        months = values[0]
        if len(values) > 2 or not 1 <= months <= MAX_MONTHS:
            return pipeline.REJECT_BAD_PAYLOAD, None
        if len(values) == 1:
            return pipeline.ACCEPT, (months, None)
        back = values[1]
        if not 0 <= back < window_days(self._clock() // DAY_S, months):
            return pipeline.REJECT_BAD_PAYLOAD, None  # further back than the months it asked for
        return pipeline.ACCEPT, (months, back)

    def execute(self, decision):
        """Carry out an accepted command (its counter already advanced); the answer's bytes."""
        code = decision.message.message_code
        self.measure(0)  # close what the clock has passed, so the answer and the change are current
        if code == authorisation.READ_IMPORT_REGISTERS:
            return self._read_answer(decision)
        if code == authorisation.TARIFF:
            tariff = decision.plan
            self._write("meter.1", FORMAT_METER, _TARIFF, _tariff_record(tariff))
            self._tariff = tariff
        elif code == authorisation.RESET_BALANCE:
            self.balance = 0
            self._cost_remainder = 0
            self._credit_changed()
        elif code == authorisation.TOP_UP:
            self.balance += decision.plan
            self._credit_changed()
        elif code in (authorisation.CREDIT_MODE, authorisation.PREPAYMENT_MODE):
            self.payment = self.payment | PREPAYMENT if code == authorisation.PREPAYMENT_MODE else self.payment & ~(
                PREPAYMENT | EMERGENCY_ACTIVE)
            self._credit_changed()
        elif code == authorisation.EMERGENCY_CREDIT:
            if not self.payment & PREPAYMENT or self.payment & EMERGENCY_ACTIVE or self.balance >= EMERGENCY_CREDIT:
                return endpoint.answer(endpoint.STATUS_FAILED)  # not available: not low on prepaid credit
            self.payment |= EMERGENCY_ACTIVE
            self._credit_changed()
        else:
            self._set_supply(code == authorisation.SUPPLY_CONNECT)
        return endpoint.answer(endpoint.STATUS_OK)

    def tariff(self):
        """The tariff in force: [(start half-hour, price)]."""
        return list(self._tariff)

    def _read_answer(self, decision):
        months, back = decision.plan
        now = self._clock()
        today = now // DAY_S
        if back is not None:
            values = self.day_profile(today - back)
            return endpoint.answer(endpoint.STATUS_OK, KIND_DAY, now, today - back,
                                   b"".join(v.to_bytes(4, "big") for v in values))
        count = window_days(today, months) if months else 0
        days = bytearray(3 * count)
        for i in range(count):
            total = None
            for value in self.day_profile(today - count + 1 + i):
                if value != NO_RECORD:
                    total = (total or 0) + value
            days[3 * i:3 * i + 3] = (NO_DAY_VALUE if total is None else min(total, NO_DAY_VALUE - 1)).to_bytes(3, "big")
        fields = [KIND_REGISTERS, now, self.import_mwh // 1000, [value // 1000 for value in self.rates], days]
        if decision.role == roles.SUPPLIER:
            fields += [bool(self.supply), self.balance, self.payment, [list(block) for block in self._tariff]]
        return endpoint.answer(endpoint.STATUS_OK, *fields)
