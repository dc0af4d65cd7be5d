# The ESME's payloads, host side: what a supplier puts in a tariff or a read, and the decoder of the meter's
# answers (the formats are meterfw.esme's docstring). Kept off the boards, like meterfw.link_host; the
# firmware's dual-run tests use it, so each format has one encoder and one decoder, tested together.
from meterfw import der, der_decode, endpoint, esme


def tariff(blocks):
    """ECS01a payload of [(start half-hour, price in thousandths of a penny per kWh)]; ValueError for a
    tariff the meter would refuse, so a user learns of it before the DCC is asked."""
    payload = der.encode([[start, price] for start, price in blocks])
    esme.parse_tariff(payload)
    return payload


def top_up(amount):
    """CS01a payload: amount in thousandths of a penny (1 to esme.TOP_UP_MAX)."""
    if not 0 < amount <= esme.TOP_UP_MAX:
        raise ValueError("a top-up is 1 to %d thousandths of a penny" % esme.TOP_UP_MAX)
    return der.encode([amount])


def read(months=0, days_back=None):
    """ECS17b payload: registers only (months 0), with months of daily totals, or one day's profile."""
    if not 0 <= months <= esme.MAX_MONTHS:
        raise ValueError("a read covers 0 to 13 months")
    if days_back is None:
        return der.encode([months] if months else [])
    if not months:
        raise ValueError("a day's profile is read within a number of months")
    if days_back < 0:
        raise ValueError("days back cannot be negative")
    return der.encode([months, days_back])


class Reading:
    """A decoded ECS17b answer. kind: esme.KIND_REGISTERS or KIND_DAY; time: the meter's clock.
    Registers: import_wh, rates (Wh each), days (daily totals, oldest first, None where no record), and for
    the supplier only: supply (True connected), balance (thousandths of a penny), prepayment, emergency
    (emergency credit active), cut_for_credit, tariff (blocks), else None.
    A day: day (days since 1970) and profile (48 half-hour Wh, None where no record)."""

    def __init__(self, kind, time):
        self.kind = kind
        self.time = time
        self.import_wh = self.rates = self.days = None
        self.supply = self.balance = self.tariff = None
        self.prepayment = self.emergency = self.cut_for_credit = None
        self.day = self.profile = None


def _series(data, width, none):
    if len(data) % width:
        raise ValueError("a series of %d-byte values" % width)
    values = [int.from_bytes(data[i:i + width], "big") for i in range(0, len(data), width)]
    return [None if v == none else v for v in values]


def parse_read(payload):
    """Reading of a read's answer payload (after decryption); ValueError if it is not one."""
    status, fields = der_decode.answer(payload)
    if status != endpoint.STATUS_OK or len(fields) < 2:
        raise ValueError("not a successful read answer")
    der_decode.check(fields[:2], int, int)
    reading = Reading(fields[0], fields[1])
    if reading.kind == esme.KIND_DAY:
        _, _, reading.day, profile = der_decode.check(fields, int, int, int, bytes)
        reading.profile = _series(profile, 4, esme.NO_RECORD)
        if len(reading.profile) != esme.INTERVALS:
            raise ValueError("a day's profile is 48 values")
        return reading
    if reading.kind != esme.KIND_REGISTERS:
        raise ValueError("unknown read answer kind")
    if len(fields) == 5:
        _, _, reading.import_wh, rates, days = der_decode.check(fields, int, int, int, list, bytes)
    else:
        _, _, reading.import_wh, rates, days, reading.supply, reading.balance, payment, blocks = der_decode.check(
            fields, int, int, int, list, bytes, bool, int, int, list)
        reading.prepayment = bool(payment & esme.PREPAYMENT)
        reading.emergency = bool(payment & esme.EMERGENCY_ACTIVE)
        reading.cut_for_credit = bool(payment & esme.CUT_FOR_CREDIT)
        reading.tariff = esme.parse_tariff(der.encode(blocks))
    reading.rates = der_decode.check(rates, *((int,) * len(rates)))
    reading.days = _series(days, 3, esme.NO_DAY_VALUE)
    return reading
