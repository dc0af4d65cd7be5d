"""Wireshark agrees with meterfw.gbcs: frames gbcs.build/wrap/mac_for make, and every frame of the DCC
Reference Test Data Set 4.5.0 (../shared/gbcs/rtds-4.5.0 beside the repository), written to one pcap with
link type USER0 (meterlab.capture.pcap) and decoded by tshark's gbcs_message dissector (USER0 mapped to it
through the user DLT table). For every frame, tshark's CRA flag, originator counter, business originator,
business target and message code equal our parser's, and no frame outside one documented set is flagged
malformed. Skipped, saying so, when tshark, its gbcs_message dissector or the RTDS folder is absent.

Pre-commands (RTDS *_PRECOMMAND_*, gbcs.build(..., precommand=True)) end with the payload, with no
signature length byte. Wireshark's dissector (checked with 4.0.17) has no pre-command form: it reads the
general signing APDU as a command and throws at the missing signature length, so it flags every
pre-command "Malformed Packet (Exception occurred)", after decoding the header. We treat pre-commands
explicitly: the header fields must still agree, the malformed set must be exactly the pre-commands, and
each pre-command with the signature length 00 appended (the unsigned command form) must decode cleanly.

One tshark run over one pcap of every frame: 1,275 RTDS files (178 pre-commands), the 178 pre-commands
as unsigned commands, and the built frames.
"""
import re
import subprocess

import pytest

from capture_check import TIMEOUT, TSHARK, TSHARK_MARKS
from meterfw import gbcs
from meterlab.capture.pcap import DLT_USER0, write_pcap
from meterlab.paths import REPO_ROOT

RTDS_DIR = REPO_ROOT.parent / "shared" / "gbcs" / "rtds-4.5.0"
KIND = re.compile(r"_(PRECOMMAND|COMMAND|RESPONSE|ALERT)_")  # as tests/test_gbcs_rtds.py
USER_DLT = 'uat:user_dlts:"User 0 (DLT=%d)","gbcs_message","0","","0",""' % DLT_USER0
HEADER = "gbcs_message.grouping_header."
FIELDS = ["frame.number", "_ws.malformed", "_ws.expert.message",
          HEADER + "cra_flag", HEADER + "originator_counter", HEADER + "business_originator_id",
          HEADER + "business_target_id", HEADER + "message_code"]


pytestmark = [
    *TSHARK_MARKS,
    pytest.mark.skipif(not RTDS_DIR.is_dir(),
                       reason="GBCS reference data not found at %s (see design.md, 'The wire')" % RTDS_DIR),
]

# ------------------------------------------------------------------------------------ built frames

ORIGINATOR = bytes.fromhex("90b3d51f30010000")
RECIPIENT = bytes.fromhex("00db1234567890a0")
DATE_TIME = bytes.fromhex("07e8030cff0e1e0000800000")  # 2024-03-12 14:30:00, deviation unspecified
SIGNATURE = bytes(range(1, 65))
Z = bytes(range(32))


def _built(rtds_messages):
    """[(name, frame, Message as parse() gives it)] made by gbcs.build / wrap / mac_for: for a command, a
    response and an alert (payloads and message codes taken from RTDS frames so the payload dissectors see
    real content), with and without a date-time, with and without a signature, bare and MAC'd; and one
    built pre-command."""
    out = []
    for cra in (gbcs.CRA_COMMAND, gbcs.CRA_RESPONSE, gbcs.CRA_ALERT):
        model = next(m for m in rtds_messages if m.cra == cra and not m.precommand)
        originator, recipient = (ORIGINATOR, RECIPIENT) if cra == gbcs.CRA_COMMAND else (RECIPIENT, ORIGINATOR)
        for dated in (False, True):
            for signed in (False, True):
                counter = 0x0123456789ABCD00 + len(out)
                apdu = gbcs.build(cra, counter, originator, recipient, model.message_code, model.payload,
                                  DATE_TIME if dated else None, model.other_info_extra,
                                  SIGNATURE if signed else None)
                name = "built cra=%d dated=%s signed=%s" % (cra, dated, signed)
                out.append((name + " bare", apdu, gbcs.parse(apdu)))
                framed = gbcs.wrap(apdu, gbcs.mac_for(gbcs.parse(apdu), Z))
                message = gbcs.parse(framed)
                assert gbcs.verify_mac(message, Z)
                out.append((name + " mac", framed, message))
    model = next(m for m in rtds_messages if m.precommand)
    frame = gbcs.build(gbcs.CRA_COMMAND, 7, ORIGINATOR, RECIPIENT, model.message_code, model.payload,
                       None, model.other_info_extra, precommand=True)
    out.append(("built precommand", frame, gbcs.parse(frame, precommand=True)))
    return out


# ----------------------------------------------------------------------------------------- tshark

def _expected(message):
    eui = lambda raw: ":".join("%02x" % b for b in raw)
    return ("0x%02x" % message.cra, str(message.counter), eui(message.originator), eui(message.recipient),
            "0x%04x" % message.message_code)


def _decode(pcap):
    """{frame number: (malformed, expert messages, (cra, counter, originator, recipient, code))}."""
    command = [TSHARK, "-n", "-r", str(pcap), "-o", USER_DLT, "-T", "fields",
               "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=;"]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    decoded = {}
    for line in result.stdout.splitlines():
        number, malformed, expert, *header = line.split("\t")
        decoded[int(number)] = (bool(malformed) or "Malformed" in expert, expert, tuple(header))
    return decoded


@pytest.fixture(scope="module")
def frames():
    """[(name, kind, frame, Message)]: RTDS files, pre-commands as unsigned commands, built frames."""
    out = []
    for path in sorted(RTDS_DIR.glob("*/*_GBCS.HEX")):
        kind = KIND.search(path.name).group(1)
        frame = bytes.fromhex(path.read_text().strip())
        message = gbcs.parse(frame, precommand=(kind == "PRECOMMAND"))
        out.append((path.relative_to(RTDS_DIR).as_posix(), kind, frame, message))
    rtds = list(out)
    for name, kind, frame, _ in rtds:
        if kind == "PRECOMMAND":
            out.append((name + " +00", "PRECOMMAND+00", frame + b"\x00", gbcs.parse(frame + b"\x00")))
    for name, frame, message in _built([m for *_, m in rtds]):
        out.append((name, "BUILT", frame, message))
    return out


@pytest.fixture(scope="module")
def decoded(frames, tmp_path_factory):
    pcap = tmp_path_factory.mktemp("wireshark") / "gbcs.pcap"
    write_pcap(pcap, [frame for _, _, frame, _ in frames], [1700000000 + i for i in range(len(frames))])
    return _decode(pcap)


def test_counts(frames, decoded):
    kinds = {}
    for _, kind, _, _ in frames:
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {"COMMAND": 501, "RESPONSE": 503, "ALERT": 93, "PRECOMMAND": 178,
                     "PRECOMMAND+00": 178, "BUILT": 25}
    assert sorted(decoded) == list(range(1, len(frames) + 1))


def test_every_frame_header_agrees(frames, decoded):
    disagree = [(name, decoded[i][2], _expected(message))
                for i, (name, _, _, message) in enumerate(frames, 1) if decoded[i][2] != _expected(message)]
    assert disagree == []


def test_only_precommands_are_malformed(frames, decoded):
    malformed = {name for i, (name, _, _, _) in enumerate(frames, 1) if decoded[i][0]}
    precommands = {name for name, _, _, message in frames if message.precommand}
    assert len(precommands) == 179  # 178 RTDS + 1 built
    assert malformed == precommands
    # and the reason is the one documented above, nothing else
    assert {decoded[i][1] for i, (_, _, _, m) in enumerate(frames, 1) if m.precommand} == \
        {"Malformed Packet (Exception occurred)"}


def test_no_expert_messages_outside_precommands(frames, decoded):
    noted = [(name, decoded[i][1]) for i, (name, _, _, m) in enumerate(frames, 1)
             if decoded[i][1] and not m.precommand]
    assert noted == []
