"""Every payload meterlab puts in a GBCS frame, command and answer, for every message code the firmware
runs, opens in Wireshark's GBCS dissector (tshark) with no frame malformed and no expert complaint: the
payloads are DER (meterfw.der), which the dissector hands to its ASN.1 decoder field by field.

The answers are the devices' own: an electricity meter, a gas meter and a GPF (in process, as in
tests/firmware) answer real commands; encrypted answers are encrypted as a device's responder does.
Skipped, saying so, without tshark or its gbcs_message dissector."""
import subprocess

from capture_check import TSHARK, expert_notes, needs_tshark, tshark_fields
from meterfw import authorisation, der, endpoint, esme, esme_host, gbcs, gpf, gsme, ledger, ownership, pipeline, roles, store
from meterlab.capture import OUTBOUND, INBOUND, Capture
from pipeline_fakes import DEVICE, KA_KEYS, command, party_z

S = roles.SUPPLIER
NOW = 1_800_000_000
COUNTERS = iter(range(1, 10_000))


def run(device, role, code, payload):
    """(the command's frame, the device's answer payload) for one command the device accepts."""
    frame = command(role, code, next(COUNTERS), payload=payload, sign=authorisation.needs_signature(code))
    message = gbcs.parse(frame)
    rule = authorisation.rule(code)
    reason, plan = device.validate(message, role, rule)
    assert reason == pipeline.ACCEPT, (hex(code), reason)
    return frame, device.execute(pipeline.Decision(pipeline.ACCEPT, message, role, rule, plan))


def every_exchange():
    """[(comment, command frame, answer payload)] for every code and every shape of answer."""
    electricity = esme.ElectricityMeter(store.MemoryStorage(), lambda closed: None, lambda: NOW)
    electricity.measure(1_234_000)
    tariff = esme_host.tariff([(0, 12_000), (32, 30_000), (42, 12_000)])
    exchanges = []
    for name, role, code, payload in (
            ("tariff", S, authorisation.TARIFF, tariff),
            ("read, registers", S, authorisation.READ_IMPORT_REGISTERS, esme_host.read()),
            ("read, 13 months", S, authorisation.READ_IMPORT_REGISTERS, esme_host.read(13)),
            ("read, a day", S, authorisation.READ_IMPORT_REGISTERS, esme_host.read(1, 3)),
            ("read, network operator", roles.NETWORK_OPERATOR, authorisation.READ_IMPORT_REGISTERS, esme_host.read(2)),
            ("emergency credit, not available", S, authorisation.EMERGENCY_CREDIT, der.EMPTY),
            ("prepayment", S, authorisation.PREPAYMENT_MODE, der.EMPTY),
            ("top up", S, authorisation.TOP_UP, esme_host.top_up(250_000)),
            ("credit", S, authorisation.CREDIT_MODE, der.EMPTY),
            ("reset balance", S, authorisation.RESET_BALANCE, der.EMPTY),
            ("disconnect", S, authorisation.SUPPLY_DISCONNECT, der.EMPTY),
            ("connect", S, authorisation.SUPPLY_CONNECT, der.EMPTY)):
        exchanges.append((name,) + run(electricity, role, code, payload))

    costs = {kind: 1 for kind in (ledger.WAKE, ledger.RADIO_TX_BYTE, ledger.RADIO_RX_BYTE, ledger.MAC_CHECK,
                                  ledger.SIGNATURE_VERIFY, ledger.VALVE)}
    gas = gsme.GasMeter(store.MemoryStorage(), lambda open_: None, lambda: NOW,
                        ledger.EnergyLedger(costs, 1_000, 100, lambda: NOW))
    gas.measure(4_321)
    exchanges.append(("gas read",) + run(gas, S, authorisation.READ_GAS_REGISTER, der.EMPTY))
    exchanges.append(("valve close",) + run(gas, S, authorisation.VALVE_CLOSE, der.EMPTY))

    proxy = gpf.GasProxy(store.MemoryStorage(), lambda: NOW)
    exchanges.append(("GPF read, no mirror yet",) + run(proxy, S, authorisation.READ_GPF, der.EMPTY))
    proxy.synced(gas.mirror())
    exchanges.append(("GPF read",) + run(proxy, S, authorisation.READ_GPF, der.EMPTY))

    credentials = ownership.encode_payload(S, 1_700_000_000_000, b"\x30\x03\x02\x01\x01" * 80, bytes(450), bytes(460))
    frame = command(roles.TRANSITIONAL_COS, authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS, next(COUNTERS),
                    payload=credentials, sign=True)
    exchanges.append(("credentials", frame, endpoint.answer(endpoint.STATUS_OK, S)))
    exchanges.append(("a command that failed", frame, endpoint.answer(endpoint.STATUS_FAILED)))
    return exchanges


def answer_frame(command_frame, payload, encrypt):
    message = gbcs.parse(command_frame)
    if encrypt:
        payload = gbcs.encrypt_content(party_z(KA_KEYS[S]), gbcs.CRA_RESPONSE, message.counter, DEVICE,
                                       bytes(message.originator), message.message_code, payload)
    return gbcs.build(gbcs.CRA_RESPONSE, message.counter, DEVICE, bytes(message.originator), message.message_code,
                      payload)


@needs_tshark
def test_every_payload_opens_in_wireshark_with_nothing_malformed(tmp_path):
    path = tmp_path / "payloads.pcapng"
    exchanges = every_exchange()
    with Capture(path) as recording:
        link = recording.link("payloads", "every payload meterlab sends")
        for name, frame, answer in exchanges:
            recording.record(link, OUTBOUND, frame, name)
            recording.record(link, INBOUND, answer_frame(frame, answer, False), name + ": answer")
            recording.record(link, INBOUND, answer_frame(frame, answer, True), name + ": answer encrypted")
    decoded = tshark_fields(path)
    assert len(decoded) == 3 * len(exchanges)
    complaints = [(frame["frame.comment"], frame["_ws.malformed"], expert_notes(frame)) for frame in decoded
                  if frame["_ws.malformed"] or expert_notes(frame)]
    assert complaints == []
    assert {frame["gbcs_message.grouping_header.message_code"] for frame in decoded} >= {
        "0x%04x" % code for code in (authorisation.TARIFF, authorisation.READ_IMPORT_REGISTERS, authorisation.TOP_UP,
                                     authorisation.VALVE_CLOSE, authorisation.READ_GAS_REGISTER, authorisation.READ_GPF,
                                     authorisation.CREDENTIALS_SUPPLIER_BY_TRANSCOS)}


@needs_tshark
def test_wireshark_shows_a_tariffs_fields(tmp_path):
    """Not only unflagged: the dissector shows the DER, a SEQUENCE of blocks of INTEGERs."""
    path = tmp_path / "tariff.pcapng"
    frame = command(S, authorisation.TARIFF, 1, payload=esme_host.tariff([(0, 12_000), (32, 30_000)]), sign=True)
    with Capture(path) as recording:
        recording.record(recording.link("tariff", "a tariff"), OUTBOUND, frame)
    from meterlab.capture import TSHARK_OPTION

    tree = subprocess.run([TSHARK, "-n", "-r", str(path), "-o", TSHARK_OPTION, "-V"], capture_output=True,
                          text=True, timeout=60).stdout
    shown = tree[tree.index("GBCS ASN.1"):].split("\n")
    integers = [line.strip() for line in shown if line.strip().startswith("INTEGER")]
    assert integers[:4] == ["INTEGER: 0", "INTEGER: 12000", "INTEGER: 32", "INTEGER: 30000"], tree
