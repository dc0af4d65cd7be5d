"""Reading back captures for the capture tests: a pcapng block walker independent of meterlab.capture's
writer (it checks what the spec requires of every block), and tshark with the gbcs_message dissector."""
import shutil
import struct
import subprocess

import pytest

from meterlab.capture import TSHARK_OPTION

TSHARK = shutil.which("tshark")
TIMEOUT = 60


def _tshark_has_gbcs():
    if TSHARK is None:
        return False
    try:
        listing = subprocess.run([TSHARK, "-G", "protocols"], capture_output=True, text=True,
                                 timeout=TIMEOUT).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split("\t")[-1] == "gbcs_message" for line in listing.splitlines())


TSHARK_MARKS = (
    pytest.mark.skipif(TSHARK is None, reason="tshark not found on PATH (Debian package tshark)"),
    pytest.mark.skipif(TSHARK is not None and not _tshark_has_gbcs(),
                       reason="this tshark has no gbcs_message dissector"),
)


def needs_tshark(test):
    """Skip test, saying why, without tshark or its gbcs_message dissector."""
    for mark in TSHARK_MARKS:
        test = mark(test)
    return test


def blocks(data):
    """[(block type, body)] of a whole pcapng file; AssertionError where a block breaks the spec's rules
    (lengths a multiple of 4, the total length repeated at the end, nothing left over)."""
    out = []
    at = 0
    while at < len(data):
        block_type, total = struct.unpack_from("<II", data, at)
        assert total % 4 == 0 and total >= 12 and at + total <= len(data), (at, total)
        assert struct.unpack_from("<I", data, at + total - 4)[0] == total, at
        out.append((block_type, data[at + 8:at + total - 4]))
        at += total
    return out


def options(data):
    """{code: [value, ...]} of an options field, which must end with opt_endofopt."""
    out = {}
    at = 0
    while True:
        code, length = struct.unpack_from("<HH", data, at)
        if code == 0:
            assert length == 0 and at + 4 == len(data), "opt_endofopt, then nothing"
            return out
        out.setdefault(code, []).append(data[at + 4:at + 4 + length])
        at += 4 + length + (-length % 4)


def packets(path):
    """[(interface name, direction, frame, comment or None)] of every Enhanced Packet Block in path."""
    interfaces = []
    out = []
    for block_type, body in blocks(path.read_bytes()):
        if block_type == 1:
            interfaces.append(options(body[8:])[2][0].decode())
        elif block_type == 6:
            interface, _, _, captured, original = struct.unpack_from("<IIIII", body)
            assert captured == original
            found = options(body[20 + captured + (-captured % 4):])
            comment = found.get(1, [None])[0]
            out.append((interfaces[interface], struct.unpack("<I", found[2][0])[0], body[20:20 + captured],
                        comment.decode() if comment is not None else None))
    return out


_HEADER = ("cra_flag", "originator_counter", "business_originator_id", "business_target_id", "message_code")
FIELDS = ("frame.interface_name", "frame.packet_flags_direction", "frame.comment", "frame.protocols",
          "_ws.malformed", "_ws.expert.message") + tuple("gbcs_message.grouping_header." + f for f in _HEADER)


def tshark_fields(path):
    """One dict a frame, of FIELDS as tshark decodes them with USER0 mapped to gbcs_message."""
    command = [TSHARK, "-n", "-r", str(path), "-o", TSHARK_OPTION, "-T", "fields", "-E", "separator=\t",
               "-E", "occurrence=a", "-E", "aggregator=;"]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    return [dict(zip(FIELDS, line.split("\t"))) for line in result.stdout.splitlines()]


def header(frame):
    """(CRA flag, originator counter, originator, target, message code) as tshark shows them."""
    return tuple(frame["gbcs_message.grouping_header." + field] for field in _HEADER)


def expert_notes(frame):
    """tshark's expert messages on a frame, less the packet comment (which it lists among them)."""
    notes = [note for note in frame["_ws.expert.message"].split(";") if note]
    if frame["frame.comment"] in notes:
        notes.remove(frame["frame.comment"])
    return notes


def assert_all_gbcs(decoded):
    """Every frame went to gbcs_message and none is malformed or has an expert note."""
    assert decoded
    for frame in decoded:
        assert "gbcs_message" in frame["frame.protocols"].split(":"), frame
        assert not frame["_ws.malformed"] and not expert_notes(frame), frame
        assert frame["gbcs_message.grouping_header.message_code"], frame
