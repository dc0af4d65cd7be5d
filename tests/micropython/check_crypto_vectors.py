# External crypto test vectors, on MicroPython (the virtual board). The host samples Wycheproof cases
# into vectors.jsonl on the board's flash (tests/test_crypto_on_micropython.py): one case a line, one
# test function a case, so the port collects garbage between cases and the harness checks the live heap
# after each. Only the byte offsets of the lines stay in RAM.
import json
from binascii import unhexlify

from meterfw.crypto import gcm, p256

_VECTORS = "vectors.jsonl"
_offsets = []


def _case(index):
    with open(_VECTORS) as f:
        f.seek(_offsets[index])
        return json.loads(f.readline())


def _check_ecdsa(case):
    valid = p256.verify(unhexlify(case["key"]), unhexlify(case["msg"]), unhexlify(case["sig"]))
    assert valid == (case["result"] == "valid"), "verify said %s" % valid


def _check_ecdh(case):
    private = unhexlify(case["private"])
    try:
        shared = p256.ecdh(private, unhexlify(case["public"]))
    except ValueError:
        assert case["result"] == "invalid", "valid public key refused"
        return
    assert case["result"] == "valid", "invalid public key accepted"
    assert shared == unhexlify(case["shared"])


def _check_gcm(case):
    key, iv, aad = unhexlify(case["key"]), unhexlify(case["iv"]), unhexlify(case["aad"])
    msg, ct, tag = unhexlify(case["msg"]), unhexlify(case["ct"]), unhexlify(case["tag"])
    if case["result"] == "valid":
        assert gcm.encrypt(key, iv, msg, aad, len(tag)) == (ct, tag)
        assert gcm.decrypt(key, iv, ct, aad, tag) == msg
        return
    try:
        gcm.decrypt(key, iv, ct, aad, tag)
    except ValueError:  # gcm.InvalidTag is a ValueError; so is a refused parameter (an empty IV)
        return
    raise AssertionError("invalid GCM case accepted")


_CHECKS = {"ecdsa": _check_ecdsa, "ecdh": _check_ecdh, "gcm": _check_gcm}


def _test(index):
    def test():
        case = _case(index)
        _CHECKS[case["kind"]](case)

    return test


def _register():
    offset = 0
    names = globals()
    with open(_VECTORS, "rb") as f:
        for line in f:
            case = json.loads(line)
            names["test_%s_%04d" % (case["kind"], case["tcId"])] = _test(len(_offsets))
            _offsets.append(offset)
            offset += len(line)


_register()
