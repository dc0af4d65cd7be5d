"""How long a battery lasts (design.md, "Power budget"; property 9): the charge a meter draws in a day,
asleep and awake, against the cell's usable capacity less its self-discharge.

    years = life_years(LI_SOCL2_D_19AH, daily_uj=..., supply_v=3.3, sleep_ma=0.010)

Charge, not energy, is what a cell gives up when a linear regulator feeds the board: the board's current
flows from the cell whatever the voltages. So the day's work (microjoules at the board's supply voltage)
turns into milliamp-hours at that voltage, and the sleep current flows all day.
"""
from dataclasses import dataclass

HOURS_A_YEAR = 365.25 * 24


@dataclass(frozen=True)
class Battery:
    name: str
    capacity_mah: float
    voltage: float
    self_discharge_per_year: float  # fraction of the capacity lost a year, in use or not
    usable: float  # fraction of the capacity a meter can count on (pulse loads, cold, end of life)
    source: str


LI_SOCL2_D_19AH = Battery(
    "3.6 V Li-SOCl2 D cell, 19 Ah (Tadiran TL-5930, EVE ER34615 class)", 19_000, 3.6, 0.01, 0.9,
    "19 Ah is the class's nominal capacity, which a bobbin D cell gives at drains of a few mA (Linden's Handbook "
    "of Batteries, 4th ed., Fig. 14.17); self-discharge under 1% a year (Saft LS and VARTA Li-SOCl2 documents); "
    "90% usable is our derating for radio bursts, which want a capacitor beside the cell")


def daily_mah(daily_uj, supply_v, sleep_ma, awake_s_a_day=0.0):
    """The charge of a day: the work (microjoules at supply_v) and sleep for the rest of it."""
    work_mah = daily_uj / supply_v / 3.6e6  # uJ / V = uC; 3.6e6 uC = 1 mAh
    sleep_mah = sleep_ma * (24 - awake_s_a_day / 3600)
    return work_mah + sleep_mah


def life_years(battery, daily_uj, supply_v, sleep_ma, awake_s_a_day=0.0):
    """Years until the usable capacity is spent by the day's charge and the cell's self-discharge."""
    yearly = daily_mah(daily_uj, supply_v, sleep_ma, awake_s_a_day) * 365.25
    yearly += battery.capacity_mah * battery.self_discharge_per_year
    return battery.capacity_mah * battery.usable / yearly
