"""The threat model, run: each scenario attacks an estate (meterlab.attack.site), counts what happened, and
checks the outcome the design claims (design.md's ten properties). An Outcome holds the numbers (meters
affected, commands executed, commands blocked and where), the claims with whether each held, and the
evidence (the DCC's alarms and audit, the meters' own reject counters).
"""
from dataclasses import dataclass, field

from meterfw import authorisation, der, esme_host, gbcs, pipeline, roles
from meterfw.crypto import p256
from meterlab.attack.site import Site, thresholds_with
from meterlab.dcc.service import QUARANTINED, REFUSED, ROUTED, command_request
from meterlab.parties import commands

DISCONNECT = authorisation.SUPPLY_DISCONNECT
READ = authorisation.READ_IMPORT_REGISTERS
TARIFF = authorisation.TARIFF


@dataclass
class Outcome:
    name: str
    title: str
    property: str
    numbers: dict = field(default_factory=dict)
    claims: list = field(default_factory=list)  # [(claim, held)]
    evidence: list = field(default_factory=list)
    not_run: str = ""  # why the scenario could not run on this backend

    def claim(self, text, held):
        self.claims.append((text, bool(held)))

    @property
    def held(self):
        return not self.not_run and bool(self.claims) and all(held for _, held in self.claims)

    def to_json(self):
        return {"name": self.name, "title": self.title, "property": self.property, "numbers": self.numbers,
                "claims": [{"claim": text, "held": held} for text, held in self.claims],
                "evidence": self.evidence, "held": self.held, "not_run": self.not_run or None}


@dataclass
class Scenario:
    name: str
    title: str
    property: str
    run: object  # run(site, options, outcome)
    backends: tuple = ("virtual", "fleet")


def _reasons(site, meter):
    return site.counts(meter)[1]


# -------------------------------------------------------------------------------------------- 1


def compromised_supplier_mass_disconnect(site, options, outcome):
    """A's keys, stolen, order every meter disconnected through the DCC: its thresholds let a few through,
    quarantine the rest and raise an alarm."""
    supplier = site.supplier_a
    results = site.dcc.submit_batch([command_request(supplier, meter, DISCONNECT, der.EMPTY) for meter in site.meters])
    routed = sum(result.status == ROUTED and result.reason == pipeline.ACCEPT for result in results)
    quarantined = sum(result.status == QUARANTINED for result in results)
    affected = sum(site.supply_off(meter) for meter in site.meters)
    threshold = options["threshold"]
    alarms = site.dcc.alarms()
    outcome.numbers.update(meters=len(site.meters), threshold=threshold, disconnects_sent=len(results),
                           meters_affected=affected, executed=routed, blocked_at_dcc=quarantined,
                           alarms=len(alarms))
    expected = min(threshold, len(site.meters))
    outcome.claim(f"no more meters disconnected than the threshold allows ({expected})", affected == expected)
    outcome.claim("every disconnect past the threshold is quarantined at the DCC", quarantined == len(results) - expected)
    outcome.claim("the DCC raised an alarm" if len(site.meters) > threshold else "no alarm below the threshold",
                  (len(alarms) >= 1) == (len(site.meters) > threshold))
    outcome.evidence += [f"DCC alarm: {alarm['text']}" for alarm in alarms]
    outcome.evidence.append(f"DCC quarantine holds {len(site.dcc.quarantined(supplier.eui64))} of A's requests")


# -------------------------------------------------------------------------------------------- 2


def bypass_dcc_into_csp(site, options, outcome):
    """The same attacker, with A's keys but not the DCC's, puts its disconnects straight onto the CSP:
    each carries a MAC made with A's own key agreement key, which no meter accepts."""
    supplier = site.supplier_a
    bad = pipeline.REASON_NAMES[pipeline.REJECT_BAD_MAC]
    before = {meter: _reasons(site, meter).get(bad, 0) for meter in site.meters}
    acted = 0
    for meter in site.meters:
        device = site.device(meter)
        counter = commands.next_counter(supplier)
        unsigned = gbcs.build(gbcs.CRA_COMMAND, counter, supplier.eui64, meter, DISCONNECT, der.EMPTY)
        signed = gbcs.build(gbcs.CRA_COMMAND, counter, supplier.eui64, meter, DISCONNECT, der.EMPTY,
                            signature=supplier.keys.sign("meter-ds", gbcs.parse(unsigned).signed_part))
        forged = gbcs.wrap(signed, commands.acb_mac(supplier, device, signed))  # A's KA key, not the ACB's
        reason, _ = site.deliver(meter, forged)
        acted += reason == pipeline.ACCEPT
    bad_mac = {meter: _reasons(site, meter).get(bad, 0) - before[meter] for meter in site.meters}
    affected = sum(site.supply_off(meter) for meter in site.meters)
    outcome.numbers.update(meters=len(site.meters), disconnects_injected=len(site.meters), meters_affected=affected,
                           executed=acted, blocked_at_meters=sum(bad_mac.values()))
    outcome.claim("no meter acted on a frame that did not pass through the DCC", acted == 0 and affected == 0)
    outcome.claim("every meter dropped it at the MAC check", all(count == 1 for count in bad_mac.values()))
    outcome.evidence += [f"meter {meter.hex()}: {bad} +{count}" for meter, count in bad_mac.items()]


# -------------------------------------------------------------------------------------------- 3


def everything_compromised(site, options, outcome):
    """Supplier, DCC and CSP compromised together: the attacker signs as A, MACs as the DCC's ACB and puts
    the frames straight on the links. No threshold applies and every meter it reaches acts; what bounds it
    is how fast the links carry frames, measured here."""
    import time

    acb = site.parties[roles.ACCESS_CONTROL_BROKER]
    audited = len(site.dcc.audit.entries())
    frames = [(meter, commands.build_command(site.supplier_a, site.device(meter), DISCONNECT, der.EMPTY, acb))
              for meter in site.meters]
    started = time.monotonic()
    acted = sum(site.deliver(meter, frame)[0] == pipeline.ACCEPT for meter, frame in frames)
    seconds = time.monotonic() - started
    affected = sum(site.supply_off(meter) for meter in site.meters)
    per_second = len(frames) / seconds
    # The physical bound: each meter needs one frame, and a hub's radio carries so many a second (the
    # board description's air time a byte, the frame and its answer); hubs online at once multiply it.
    from meterlab.boards.descriptions import load_board

    air_ms_a_byte = load_board("esp32-devkitc")["power"]["durations_ms"]["link_byte"]
    answer_bytes = 120  # a signed disconnect's answer, about; the command's own size is measured
    hub_per_second = 1000 / (air_ms_a_byte * (len(frames[0][1]) + answer_bytes))
    outcome.numbers.update(meters=len(site.meters), meters_affected=affected, executed=acted, blocked=0,
                           seconds=round(seconds, 3), frames_per_second_one_link_at_a_time=round(per_second, 1),
                           meters_an_hour_one_link_at_a_time=round(per_second * 3600),
                           frames_a_second_a_hubs_radio_carries=round(hub_per_second),
                           meters_an_hour_per_hub_online=round(hub_per_second * 3600),
                           dcc_audit_entries_added=len(site.dcc.audit.entries()) - audited)
    outcome.claim("no threshold applies: every meter reached acts", acted == affected == len(site.meters))
    outcome.claim("the DCC never saw it (nothing in its audit)", len(site.dcc.audit.entries()) == audited)
    outcome.evidence.append(
        f"{per_second:.1f} frames/s sent one meter at a time on this machine ({site.backend}); a hub's ESP-NOW "
        f"radio carries about {hub_per_second:,.0f} such exchanges a second ({air_ms_a_byte} ms a byte on air): "
        f"at most {hub_per_second * 3600:,.0f} meters an hour per hub online, times the hubs online at once. "
        f"Nothing else in the design bounds it")


# -------------------------------------------------------------------------------------------- 4


def reverse_engineered_meter(site, options, outcome):
    """An attacker reads one meter's flash: its KA key gives the ACB's MAC key for that meter alone; it
    forges reads that meter accepts, and nothing another meter or a critical command accepts."""
    if len(site.meters) < 2:
        outcome.not_run = "needs two meters"
        return
    victim, other = site.meters[0], site.meters[1]
    stolen_id, stolen_ds, stolen_ka, acb_ka = site.read_flash(victim)
    z = p256.ecdh(stolen_ka, acb_ka)
    supplier = site.supplier_a

    def forge(recipient, code, payload, sign=False):
        counter = commands.next_counter(supplier)
        apdu = gbcs.build(gbcs.CRA_COMMAND, counter, supplier.eui64, recipient, code, payload)
        if sign:  # the best the attacker has: the meter's own DS key, not the supplier's
            apdu = gbcs.build(gbcs.CRA_COMMAND, counter, supplier.eui64, recipient, code, payload,
                              signature=p256.sign(stolen_ds, gbcs.parse(apdu).signed_part))
        return gbcs.wrap(apdu, gbcs.mac_for(gbcs.parse(apdu), z))

    on_victim = site.deliver(victim, forge(stolen_id, READ, esme_host.read()))[0]
    on_other = site.deliver(other, forge(other, READ, esme_host.read()))[0]
    critical = site.deliver(victim, forge(stolen_id, DISCONNECT, der.EMPTY, sign=True))[0]
    outcome.numbers.update(meters=len(site.meters), keys_stolen_from=1,
                           meters_affected=int(on_victim == 0) + int(on_other == 0),
                           executed=[on_victim, on_other, critical].count(pipeline.ACCEPT),
                           blocked_at_meters=3 - [on_victim, on_other, critical].count(pipeline.ACCEPT),
                           forged_reads_accepted=int(on_victim == 0),
                           forged_on_other_meters_accepted=int(on_other == 0), forged_critical_accepted=int(critical == 0))
    outcome.claim("the stolen keys forge a read for that meter", on_victim == pipeline.ACCEPT)
    outcome.claim("they forge nothing another meter accepts (bad MAC)", on_other == pipeline.REJECT_BAD_MAC)
    outcome.claim("nor any critical command, even on that meter (bad signature)",
                  critical == pipeline.REJECT_BAD_SIGNATURE)
    outcome.evidence.append(f"other meter: {pipeline.REASON_NAMES[on_other]}; critical on the victim: "
                            f"{pipeline.REASON_NAMES[critical]}")


# -------------------------------------------------------------------------------------------- 5


def replay_and_reorder(site, options, outcome):
    """Frames captured on the WAN are sent again, out of order, and again after the meter's power cycle."""
    meter = site.meters[0]
    device = site.device(meter)
    acb = site.parties[roles.ACCESS_CONTROL_BROKER]
    captured = [commands.build_command(site.supplier_a, device, READ, esme_host.read(), acb) for _ in range(4)]
    first = [site.deliver(meter, frame)[0] for frame in captured[:2]]  # the genuine traffic, in order
    replays = [site.deliver(meter, frame)[0] for frame in captured[:2]]
    newer, older = site.deliver(meter, captured[3])[0], site.deliver(meter, captured[2])[0]  # reordered
    site.power_cycle(meter)
    after_reboot = [site.deliver(meter, frame)[0] for frame in captured]
    replayed = replays + [older] + after_reboot
    outcome.numbers.update(genuine_accepted=first.count(0) + int(newer == 0), replays_sent=len(replayed),
                           replays_accepted=replayed.count(pipeline.ACCEPT),
                           meters_affected=int(pipeline.ACCEPT in replayed), executed=replayed.count(pipeline.ACCEPT),
                           blocked_at_meter=replayed.count(pipeline.REJECT_REPLAY))
    outcome.claim("the genuine frames were accepted, once", first == [0, 0] and newer == pipeline.ACCEPT)
    outcome.claim("every replay, reordered frame and post-reboot replay was refused as a replay",
                  all(reason == pipeline.REJECT_REPLAY for reason in replayed))
    outcome.evidence.append(f"meter {meter.hex()} counters: {_reasons(site, meter)}")


# -------------------------------------------------------------------------------------------- 6


def outside_their_rights(site, options, outcome):
    """A network operator sets a tariff and a third party disconnects: the DCC refuses both, and forced
    past it (a compromised DCC MACs them) the meter refuses them too."""
    meter = site.meters[0]
    device = site.device(meter)
    acb = site.parties[roles.ACCESS_CONTROL_BROKER]
    installed = site.dcc.install_by_recovery(meter, site.dno, roles.NETWORK_OPERATOR)
    dno_read = site.dcc.submit(command_request(site.dno, meter, READ, esme_host.read(1)))
    attempts = {"dno tariff": (site.dno, TARIFF, esme_host.tariff([(0, 1)])),
                "third party disconnect": (site.third_party, DISCONNECT, der.EMPTY)}
    at_dcc, at_meter = {}, {}
    for label, (party, code, payload) in attempts.items():
        at_dcc[label] = site.dcc.submit(command_request(party, meter, code, payload)).status
        at_meter[label] = site.deliver(meter, commands.build_command(party, device, code, payload, acb))[0]
    outcome.numbers.update(attempts=len(attempts), meters_affected=int(any(r == 0 for r in at_meter.values())),
                           executed=sum(r == 0 for r in at_meter.values()),
                           blocked_at_dcc=sum(s == REFUSED for s in at_dcc.values()),
                           blocked_at_meter=sum(r != 0 for r in at_meter.values()))
    outcome.claim("the network operator's own right works (a read)",
                  installed.status == ROUTED and dno_read.reason == pipeline.ACCEPT)
    outcome.claim("the DCC refused every command outside the sender's rights",
                  all(status == REFUSED for status in at_dcc.values()))
    outcome.claim("forced past the DCC, the meter refused the DNO's tariff as not authorised",
                  at_meter["dno tariff"] == pipeline.REJECT_NOT_AUTHORISED)
    outcome.claim("and the third party's disconnect (it has no anchor there)",
                  at_meter["third party disconnect"] == pipeline.REJECT_UNKNOWN_ORIGINATOR)
    outcome.evidence += [f"{label}: DCC {at_dcc[label]}, meter {pipeline.REASON_NAMES[at_meter[label]]}"
                         for label in attempts]


# -------------------------------------------------------------------------------------------- 7


def third_party_without_consent(site, options, outcome):
    """A third party reads consumption without consent, within it, beyond its scope, and after the
    consumer revokes it."""
    import time

    from meterlab.client import BoardClient
    from meterlab.transport import BoardConnection

    meter, party = site.meters[0], site.third_party
    site.dcc.users[party.eui64] = party

    def read(months):
        return site.dcc.submit(command_request(party, meter, READ, esme_host.read(months))).reason

    before = read(3)
    certificates = (site.smki.certificate("organisation-ca"), party.certificate("meter-ds"),
                    party.certificate("meter-ka"))
    site.csp.close()
    with BoardConnection(site.boards[meter].home_url, timeout=30.0) as home:
        BoardClient(home).consent_grant(3, int(time.time()) + 3600, *certificates)
    within, beyond = read(3), read(4)
    with BoardConnection(site.boards[meter].home_url, timeout=30.0) as home:
        BoardClient(home).consent_revoke(party.eui64)
    after = read(3)
    refused = [before, beyond, after]
    outcome.numbers.update(reads=4, meters_affected=sum(r == pipeline.ACCEPT for r in refused),
                           executed=int(within == 0), blocked_at_meter=sum(r != 0 for r in refused))
    outcome.claim("no read before the consumer's consent", before == pipeline.REJECT_UNKNOWN_ORIGINATOR)
    outcome.claim("a read within the consent works", within == pipeline.ACCEPT)
    outcome.claim("a read beyond its months is refused", beyond == pipeline.REJECT_CONSENT_SCOPE)
    outcome.claim("no read after the consumer revokes it", after == pipeline.REJECT_UNKNOWN_ORIGINATOR)
    outcome.evidence.append(f"meter {meter.hex()} counters: {_reasons(site, meter)}")


# -------------------------------------------------------------------------------------------- 8


def battery_drain(site, options, outcome):
    """A compromised supplier floods its gas meter: valve closes (critical) and reads (not), through the
    DCC. The thresholds let a few closes through; the ledger pays reads only down to the reserve kept for
    critical work, then refuses them before their MAC check. The battery's projected life is given for a
    normal day and for this day, every day."""
    import time

    from meterlab.power.battery import LI_SOCL2_D_19AH, daily_mah, life_years
    from meterlab.power.gas_day import normal_day
    from meterlab.power.profile import PowerProfile

    board = "rpi-pico"
    meter = site.gas_meter(board)
    profile = PowerProfile.of(board)
    costs = profile.costs_uj()
    allowance, reserve, *_ = site.ledger(meter)
    reads_needed = (allowance - reserve) // costs["mac_check"] + 20  # enough to spend all it may, and more
    answered = refused = 0
    # paced under the CSP's frames a second to one meter (which would refuse the rest: a defence too, but
    # a patient attacker stays under it, and the meter's own budget is what this scenario tests)
    pace = min(250, getattr(site.csp, "max_per_second", 250))
    for start in range(0, reads_needed, pace):
        batch = [command_request(site.supplier_a, meter, authorisation.READ_GAS_REGISTER, der.EMPTY)
                 for _ in range(min(pace, reads_needed - start))]
        for result in site.dcc.submit_batch(batch):
            answered += result.reason == pipeline.ACCEPT
            refused += result.reason == pipeline.REJECT_ENERGY
        if site.backend == "virtual":
            time.sleep(1.05)  # the CSP's one-second window empties
    after_reads = site.ledger(meter)
    closes = site.dcc.submit_batch([command_request(site.supplier_a, meter, authorisation.VALVE_CLOSE, der.EMPTY)
                                    for _ in range(options.get("closes", 50))])
    allowance, reserve, spent, spent_critical, _, _ = site.ledger(meter)
    normal = normal_day(costs)
    sleep_ma = profile.sleep_ma(dev_board=False)
    years = {label: life_years(LI_SOCL2_D_19AH, uj, profile.supply_v, sleep_ma)
             for label, uj in (("normal", normal), ("flood", max(spent, normal)))}
    days_lost = (daily_mah(spent, profile.supply_v, sleep_ma) - daily_mah(normal, profile.supply_v, sleep_ma)) \
        / daily_mah(normal, profile.supply_v, sleep_ma)
    routed = sum(result.status == ROUTED for result in closes)
    closed = sum(result.status == ROUTED and result.reason == pipeline.ACCEPT for result in closes)
    outcome.numbers.update(meters_affected=1, valve_closes_sent=len(closes), closes_routed_by_the_dcc=routed,
                           blocked_at_dcc=sum(result.status == QUARANTINED for result in closes),
                           blocked_at_meter_for_energy=refused + (routed - closed),
                           reads_sent=reads_needed, reads_answered=answered, reads_refused_for_energy=refused,
                           reads_lost_otherwise=reads_needed - answered - refused,
                           spent_today_uj=spent, allowance_uj=allowance, reserve_uj=reserve,
                           life_years_normal=round(years["normal"], 2), life_years_flood_every_day=round(years["flood"], 2),
                           battery_days_lost_to_one_flood_day=round(days_lost, 2), closes_run_by_the_meter=closed)
    outcome.claim("reads were refused for energy once the day's non-critical share was spent",
                  refused > 0 and answered + refused == reads_needed)
    outcome.claim("the reads left the reserve for critical work whole",
                  after_reads[2] - after_reads[3] <= allowance - reserve)
    outcome.claim("after the read flood a valve close still ran: the reserve was there for it", closed >= 1)
    outcome.claim("the DCC's threshold let no more valve closes through than it allows (5)", routed <= 5)
    outcome.claim("the day never spent more than its allowance", spent <= allowance)
    outcome.evidence.append(f"ledger: spent {spent / 1e6:.3f} J of {allowance / 1e6:.3f} J, "
                            f"{spent_critical / 1e6:.3f} J on critical work; {refused} reads refused for energy")


# -------------------------------------------------------------------------------------------- 9


def compromised_key_recovered(site, options, outcome):
    """Supplier A's meter-facing keys are stolen. The DCC's Recovery party replaces A's anchor on every
    meter with A's new keys: the stolen key then works on no meter, even MAC'd by the DCC, and the new one
    works on all."""
    from meterlab.attack.site import PASSPHRASE, SUPPLIER_A_REKEYED
    from meterlab.smki.parties import Party

    acb = site.parties[roles.ACCESS_CONTROL_BROKER]
    old = site.supplier_a
    tariff = esme_host.tariff([(0, 15_000)])

    def stolen(meter):  # the thief's tariff, signed with A's old key, MAC'd by the ACB (through the DCC as A)
        return site.deliver(meter, commands.build_command(old, site.device(meter), TARIFF, tariff, acb))[0]

    before = stolen(site.meters[0])
    new = Party.create(site.smki, "SUPPLIER A (new keys)", roles.SUPPLIER, SUPPLIER_A_REKEYED, PASSPHRASE)
    site.dcc.users[new.eui64] = new
    recovered = [site.dcc.install_by_recovery(meter, new, roles.SUPPLIER) for meter in site.meters]
    after = [stolen(meter) for meter in site.meters]
    through_dcc = site.dcc.submit(command_request(old, site.meters[0], TARIFF, tariff)).status
    fresh = [site.dcc.submit(command_request(new, meter, TARIFF, tariff)).reason for meter in site.meters]
    outcome.numbers.update(meters=len(site.meters), recovered=sum(r.status == ROUTED for r in recovered),
                           meters_affected=after.count(pipeline.ACCEPT), executed=after.count(pipeline.ACCEPT),
                           stolen_key_accepted_after=after.count(pipeline.ACCEPT),
                           blocked_at_meters=sum(reason != pipeline.ACCEPT for reason in after),
                           new_key_accepted=fresh.count(pipeline.ACCEPT))
    outcome.claim("before recovery the stolen key works", before == pipeline.ACCEPT)
    outcome.claim("the Recovery key replaced the supplier anchor on every meter",
                  all(r.status == ROUTED for r in recovered) and all(site.dcc.owner(m) == new.eui64 for m in site.meters))
    outcome.claim("after it the stolen key works on no meter", pipeline.ACCEPT not in after)
    outcome.claim("and the DCC no longer routes the old identity's commands", through_dcc == REFUSED)
    outcome.claim("A's new keys work on every meter", fresh == [pipeline.ACCEPT] * len(site.meters))
    outcome.evidence += sorted({f"stolen key after recovery: {pipeline.REASON_NAMES[r]}" for r in after})


# ------------------------------------------------------------------------------------------- 10


def device_ca_quota(site, options, outcome):
    """A device CA asked for one certificate more than its quota: refused, and its key is gone."""
    from meterlab.smki.authority import QuotaExhausted
    from meterlab.smki.keystore import public_bytes

    from cryptography.hazmat.primitives.asymmetric import ec

    quota = 2
    ca = site.smki.create_device_ca("quota-test", quota, site.shares)
    issued = refused = 0
    for n in range(quota + 1):
        keys = [public_bytes(ec.generate_private_key(ec.SECP256R1()).public_key()) for _ in range(2)]
        try:
            ca.certify(bytes.fromhex("70b3d54bff000000")[:7] + bytes([n]), *keys)
            issued += 1
        except QuotaExhausted as error:
            refused += 1
            outcome.evidence.append(f"refused: {error}")
    outcome.numbers.update(quota=quota, asked=quota + 1, issued=issued, refused=refused,
                           meters_affected=max(0, issued - quota), blocked_at_device_ca=refused)
    outcome.claim("the device CA issued exactly its quota", issued == quota)
    outcome.claim("the one more was refused", refused == 1)
    outcome.claim("its key was destroyed after the last", not ca.key_present)


SCENARIOS = (
    Scenario("compromised-supplier", "a compromised supplier orders a mass disconnect through the DCC",
             "8: the DCC counts what each user sends and quarantines too many critical commands",
             compromised_supplier_mass_disconnect),
    Scenario("dcc-bypass", "the same attacker bypasses the DCC and injects at the CSP",
             "1: a meter processes nothing that has not passed through the DCC", bypass_dcc_into_csp),
    Scenario("everything-compromised", "supplier, DCC and CSP compromised together: disconnects straight onto the links",
             "8 and 1 together: with the DCC itself compromised, only the links' capacity bounds an attack",
             everything_compromised),
    Scenario("reverse-engineered-meter", "one meter's flash read out: its keys used to forge",
             "6: reverse-engineering one meter yields that meter's keys only", reverse_engineered_meter),
    Scenario("replay", "captured traffic replayed, reordered, and replayed across a reboot",
             "1: every command's MAC is unique per message (counters only move up)", replay_and_reorder),
    Scenario("outside-rights", "a DNO and a third party try commands outside their rights",
             "4: each identity can do only its own tasks", outside_their_rights),
    Scenario("consent", "a third party reads without consent, beyond it, and after it is revoked",
             "4: a third party only reads, only with the consumer's consent", third_party_without_consent,
             backends=("virtual",)),
    Scenario("battery-drain", "a flood of valve closes and reads at a battery gas meter",
             "9: the gas meter's energy is budgeted; only critical work may spend its reserve", battery_drain),
    Scenario("key-recovered", "a supplier's stolen key, recovered: the Recovery key replaces its anchors",
             "10: compromise is recoverable: trust anchors can be replaced by the Recovery key",
             compromised_key_recovered),
    Scenario("device-ca-quota", "a device CA asked for one certificate more than its quota",
             "7: device identities come only from a device CA with a fixed quota", device_ca_quota),
)


def scenario(name):
    for candidate in SCENARIOS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def run(name, home, meters=3, backend="virtual", threshold=2, progress=None):
    """Run one scenario on a fresh estate; its Outcome."""
    chosen = scenario(name)
    outcome = Outcome(chosen.name, chosen.title, chosen.property)
    if backend not in chosen.backends:
        outcome.not_run = f"runs on {' and '.join(chosen.backends)} boards only"
        return outcome
    options = {"threshold": threshold}
    with Site(home, meters=meters, backend=backend, thresholds=thresholds_with(threshold), progress=progress) as site:
        chosen.run(site, options, outcome)
    return outcome
