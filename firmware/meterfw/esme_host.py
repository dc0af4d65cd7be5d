# The ESME's payloads, host side: what a supplier puts in a tariff or a read, and the decoder of the meter's
# answers (the formats are meterfw.esme's docstring). Kept off the boards, like meterfw.link_host; the
# firmware's dual-run tests use it, so each format has one encoder and one decoder, tested together.
from meterfw import esme


def tariff(blocks):
    """ECS01a payload of [(start half-hour, price in thousandths of a penny per kWh)]; ValueError for a
    tariff the meter would refuse, so a user learns of it before the DCC is asked."""
    payload = bytes((len(blocks),)) + b"".join(bytes((start,)) + price.to_bytes(4, "big") for start, price in blocks)
    esme.parse_tariff(payload)
    return payload


def top_up(amount):
    """CS01a payload: amount in thousandths of a penny (1 to esme.TOP_UP_MAX)."""
    if not 0 < amount <= esme.TOP_UP_MAX:
        raise ValueError("a top-up is 1 to %d thousandths of a penny" % esme.TOP_UP_MAX)
    return amount.to_bytes(4, "big")


def read(months=0, days_back=None):
    """ECS17b payload: registers only (months 0), with months of daily totals, or one day's profile."""
    if not 0 <= months <= esme.MAX_MONTHS:
        raise ValueError("a read covers 0 to 13 months")
    if days_back is None:
        return bytes((months,)) if months else b""
    if not months:
        raise ValueError("a day's profile is read within a number of months")
    return bytes((months,)) + days_back.to_bytes(2, "big")


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


def parse_read(payload):
    """Reading of a read's answer payload (after decryption); ValueError if it is not one."""
    payload = bytes(payload)
    if len(payload) < 6 or payload[0] != 0:
        raise ValueError("not a successful read answer")
    reading = Reading(payload[1], int.from_bytes(payload[2:6], "big"))
    if reading.kind == esme.KIND_DAY:
        if len(payload) != 10 + 4 * esme.INTERVALS:
            raise ValueError("a day's profile is 48 values")
        reading.day = int.from_bytes(payload[6:10], "big")
        values = [int.from_bytes(payload[10 + 4 * i:14 + 4 * i], "big") for i in range(esme.INTERVALS)]
        reading.profile = [None if v == esme.NO_RECORD else v for v in values]
        return reading
    if reading.kind != esme.KIND_REGISTERS or len(payload) < 11:
        raise ValueError("unknown read answer kind or truncated answer")
    reading.import_wh = int.from_bytes(payload[6:10], "big")
    n = payload[10]
    offset = 11 + 4 * n
    if len(payload) < offset + 2:
        raise ValueError("read answer truncated in its rate registers")
    reading.rates = [int.from_bytes(payload[11 + 4 * i:15 + 4 * i], "big") for i in range(n)]
    count = int.from_bytes(payload[offset:offset + 2], "big")
    offset += 2
    if len(payload) < offset + 3 * count:
        raise ValueError("read answer truncated in its daily totals")
    days = [int.from_bytes(payload[offset + 3 * i:offset + 3 * i + 3], "big") for i in range(count)]
    reading.days = [None if v == esme.NO_DAY_VALUE else v for v in days]
    offset += 3 * count
    if offset == len(payload):
        return reading
    if len(payload) < offset + 7:
        raise ValueError("read answer truncated in the supplier's part")
    reading.supply = payload[offset] == 1
    reading.balance = int.from_bytes(payload[offset + 1:offset + 5], "big") - (1 << 31)
    payment = payload[offset + 5]
    reading.prepayment = bool(payment & esme.PREPAYMENT)
    reading.emergency = bool(payment & esme.EMERGENCY_ACTIVE)
    reading.cut_for_credit = bool(payment & esme.CUT_FOR_CREDIT)
    reading.tariff = esme.parse_tariff(payload[offset + 6:])
    return reading
