# meterfw.gbcs against the DCC Reference Test Data Set 4.5.0, on MicroPython (the virtual board). The host
# picks one COMMAND of each RTDS use-case folder into rtds.jsonl on the board's flash
# (tests/test_gbcs_on_micropython.py): the frame, Z for its MAC (null for a bare command, which has no
# MAC) and the originator's DS public key (null when unsigned). One case a line, one test function a
# case, so the port collects garbage between cases and the harness checks the live heap after each.
# Only the byte offsets of the lines stay in RAM.
import json
from binascii import unhexlify

from meterfw import gbcs

_CASES = "rtds.jsonl"
_offsets = []


def _case(index):
    with open(_CASES) as f:
        f.seek(_offsets[index])
        return json.loads(f.readline())


def _check(case):
    frame = unhexlify(case["frame"])
    message = gbcs.parse(frame)
    if case["z"] is None:
        # a bare command: no MAC to check, so it must be signed and the signature is the check
        assert message.mac is None, "bare command has a MAC"
        assert case["ds"] is not None, "bare command with no signature key"
    else:
        z = unhexlify(case["z"])
        assert gbcs.verify_mac(message, z) is True, "MAC does not verify: " + case["file"]
        # one bit of the MAC's last byte flipped: the MAC no longer verifies
        changed = bytearray(frame)
        changed[-1] ^= 1
        assert frame.endswith(message.mac)
        altered = gbcs.parse(bytes(changed))
        assert altered.mac != message.mac
        assert gbcs.verify_mac(altered, z) is False, "flipped MAC verifies: " + case["file"]
    if case["ds"] is not None:
        assert message.signature is not None, "no signature: " + case["file"]
        assert gbcs.verify_signature(message, unhexlify(case["ds"])) is True, "bad signature: " + case["file"]
    else:
        assert message.signature is None, "signed but no key given: " + case["file"]


def _test(index):
    def test():
        _check(_case(index))

    return test


def _register():
    offset = 0
    names = globals()
    with open(_CASES, "rb") as f:
        for line in f:
            names["test_%04d" % len(_offsets)] = _test(len(_offsets))
            _offsets.append(offset)
            offset += len(line)


_register()
