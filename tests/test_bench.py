"""`meterlab bench crypto` runs end to end and writes its JSON. Its targets are the benchmark's to judge
(on a quiet machine, as ratios within one run), not a test's: this only checks the command works and
reports every figure."""
import json
import subprocess
import sys

import pytest


@pytest.mark.virtual
def test_bench_crypto_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "meterlab", "bench", "crypto", "--repeat", "1", "--vm-repeat", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    for name in ("verify_s", "python_ecdsa_verify_s", "sign_s", "ecdh_s", "gmac_200_bytes_s"):
        assert results["cpython"][name] > 0, name
    assert results["cpython"]["verify_anchor_s"] > 0 and results["cpython"]["precompute_s"] > 0
    for name in ("verify_ms", "verify_anchor_ms", "precompute_ms", "plain_verify_ms", "sign_ms", "ecdh_ms",
                 "gmac_200_bytes_ms"):
        assert results["virtual_board"][name] > 0, name
    for name in ("verify_peak_heap_bytes", "verify_anchor_peak_heap_bytes"):
        assert 0 < results["virtual_board"][name] < results["virtual_board"]["heap_bytes"], name
    assert results["virtual_board"]["verify_steps"] > 1
    assert results["virtual_board"]["verify_anchor_steps"] > 1
    assert results["ratios"]["vm_verify_speedup_vs_plain"] > 0
    assert results["ratios"]["vm_verify_speedup_vs_plain_without_anchor_table"] > 0
    assert set(results["met"]) == set(results["targets"]) == {
        "cpython_verify_vs_python_ecdsa", "vm_verify_speedup_vs_plain", "vm_verify_peak_heap_bytes"}
    assert "verify speed-up vs plain (VM)" in result.stdout
    assert "without an anchor table (VM)" in result.stdout


@pytest.mark.virtual
def test_bench_pipeline_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "meterlab", "bench", "pipeline", "--repeat", "1", "--vm-repeat", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    for where in ("cpython", "virtual_board"):
        for name in ("mac_only_fps", "signed_fps", "bad_mac_reject_us", "mac_only_accept_us", "signed_accept_us"):
            assert results[where][name] > 0, (where, name)
        for name in ("signed_accept_vs_bad_mac_reject", "mac_only_accept_vs_bad_mac_reject"):
            assert results["ratios"][where][name] > 0, (where, name)
    assert set(results["met"]) == set(results["targets"]) == {
        "cpython_signed_accept_vs_bad_mac_reject", "vm_signed_accept_vs_bad_mac_reject"}
    assert "signed accept vs bad-MAC reject (VM)" in result.stdout


def test_bench_dcc_writes_every_figure(tmp_path):
    out = tmp_path / "dcc.json"
    result = subprocess.run([sys.executable, "-m", "meterlab", "bench", "dcc", "--repeat", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(out.read_text())
    assert results["raw_verify_per_s"] > 0 and results["dcc_requests_per_s"] > 0
    assert results["dcc_vs_raw_verify"] == pytest.approx(results["dcc_requests_per_s"] / results["raw_verify_per_s"])
    assert results["audit_log_whole"] is True
    assert "DCC / raw verify" in result.stdout


@pytest.mark.virtual
def test_bench_heap_measures_a_board_through_its_work():
    from meterlab.bench import heap

    results = heap.run(progress=lambda *_: None, boards=["esp32-devkitc"], roles=("esme",))
    [row] = results["rows"]
    assert (row["board"], row["role"], row["heap_bytes"]) == ("esp32-devkitc", "esme", 110_592)
    # the firmware fills more than half of a DevKitC's heap, and never more than all of it
    for peak in (row["peak_working"], row["peak_after_restart"]):
        assert row["heap_bytes"] / 2 < peak <= row["heap_bytes"]
    assert row["peak_working"] > row["peak_after_restart"]  # the rare steps cost more than running
    assert row["met"] == (max(row["peak_working"], row["peak_after_restart"]) <= 0.8 * row["heap_bytes"])
    # what held the RAM at the peak: the security pipeline and its crypto, loaded from the board's flash
    assert {"meterfw.pipeline", "meterfw.gbcs", "meterfw.crypto.p256"} <= set(row["modules_at_working_peak"])
    assert "esp32-devkitc" in heap.report(results) and "target <= 80%" in heap.report(results)
