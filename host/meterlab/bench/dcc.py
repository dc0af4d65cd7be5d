"""`meterlab bench dcc`: signed service requests per second through the DCC's whole path (parse, the
user's DCC-facing signature, its counter, rights, the meter-facing signature of critical commands,
register and ownership, anomaly detection, the ACB's MAC, the durable audit append), on one core, with
the meters replaced by a sink that answers "accepted" at once.

Figures, measured in the same run so a busy machine slows both sides alike:
  - raw_verify_per_s: OpenSSL P-256 ECDSA verifies per second over request-sized messages, the floor
    of the work: every request needs one;
  - dcc_requests_per_s: READ requests (MAC only at the meter, so one signature check each at the DCC)
    through Dcc.submit_batch in batches of `batch` requests; each batch is made durable (users'
    counters, audit entries and their head: SQLite in WAL mode with synchronous=FULL) before any
    frame leaves, and again after the answers;
  - dcc_vs_raw_verify: their ratio.
Targets: at least 0.5 of the raw verify rate, and at least 5,000 requests/s (Great Britain's DCC averages
about 850 messages/s in total). Requests are built and signed before the clock starts.
"""
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from meterfw import authorisation, der, roles
from meterlab.bench import environment

TARGET_RATIO = 0.5
TARGET_PER_S = 5000
PASSPHRASE = "bench"
METERS = 20
BATCH = 100


def _sink(device, frame):
    return 0, None


def _public(private_key):
    numbers = private_key.public_key().public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def raw_verify_rate(count=2000, size=80):
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    message = bytes(range(size % 256)) * (size // 256 + 1)
    signature = key.sign(message[:size], ec.ECDSA(hashes.SHA256()))
    algorithm = ec.ECDSA(hashes.SHA256())
    started = time.perf_counter()
    for _ in range(count):
        public.verify(signature, message[:size], algorithm)
    return count / (time.perf_counter() - started)


def run(repeat=7, vm_repeat=None, progress=print, batch=BATCH, requests_per_sample=1000):
    from meterlab.dcc.anomaly import Thresholds
    from meterlab.dcc.service import ROUTED, Dcc, command_request
    from meterlab.smki.authority import Smki
    from meterlab.smki.parties import Party, create_dcc_parties

    with tempfile.TemporaryDirectory(prefix="meterlab-bench-dcc-") as scratch:
        home = Path(scratch)
        progress("setting up an SMKI, a supplier and 20 registered meters")
        smki, shares = Smki.create(home / "smki", PASSPHRASE, threshold=1, custodian_count=1)
        create_dcc_parties(smki, PASSPHRASE)
        supplier = Party.create(smki, "SUPPLIER", roles.SUPPLIER, bytes.fromhex("90b3d51f30010000"), PASSPHRASE)
        device_ca = smki.create_device_ca("bench", METERS, shares)
        unlimited = Thresholds({"window_seconds": 1, "per_user": {"default": 10 ** 12},
                                "total": {"default": 10 ** 12}})
        dcc = Dcc(home / "dcc", smki, PASSPHRASE, _sink, unlimited)
        try:
            meters = []
            for n in range(METERS):
                meter = bytes.fromhex("00db1234567891%02x" % n)
                keys = [_public(ec.generate_private_key(ec.SECP256R1())) for _ in range(2)]
                ds_certificate, ka_certificate = device_ca.certify(meter, *keys)
                dcc.register.register(meter, "esme", ds_certificate, ka_certificate, "bench")
                dcc._set_owner(meter, supplier.eui64)
                meters.append(meter)
            total = requests_per_sample * (repeat + 1)
            progress(f"signing {total} service requests")
            requests = [command_request(supplier, meters[n % METERS], authorisation.READ_IMPORT_REGISTERS, der.EMPTY)
                        for n in range(total)]
            feed = iter(requests)

            def dcc_sample():
                chunk = [next(feed) for _ in range(requests_per_sample)]
                started = time.perf_counter()
                results = []
                for at in range(0, len(chunk), batch):
                    results.extend(dcc.submit_batch(chunk[at:at + batch]))
                elapsed = time.perf_counter() - started
                assert all(r.status == ROUTED and r.reason == 0 for r in results), "a request was not routed"
                return requests_per_sample / elapsed

            dcc_sample()  # warm: keys opened, Z with each meter computed
            dcc_rates, verify_rates = [], []
            for n in range(repeat):  # the two take turns
                progress(f"sample {n + 1} of {repeat}")
                verify_rates.append(raw_verify_rate())
                dcc_rates.append(dcc_sample())
            audit_problems = dcc.audit.verify()
        finally:
            dcc.close()
    median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
    raw, rate = median(verify_rates), median(dcc_rates)
    return {
        "benchmark": "dcc",
        "environment": environment(),
        "batch": batch,
        "requests_per_sample": requests_per_sample,
        "repeat": repeat,
        "raw_verify_per_s": raw,
        "dcc_requests_per_s": rate,
        "dcc_vs_raw_verify": rate / raw,
        "target_ratio": TARGET_RATIO,
        "target_per_s": TARGET_PER_S,
        "ratio_met": rate / raw >= TARGET_RATIO,
        "rate_met": rate >= TARGET_PER_S,
        "audit_log_whole": audit_problems == [],
        "samples": {"raw_verify_per_s": verify_rates, "dcc_requests_per_s": dcc_rates},
    }


def report(results):
    def met(flag):
        return "met" if flag else "NOT met"

    return "\n".join([
        f"raw OpenSSL P-256 verify   {results['raw_verify_per_s']:9.0f} /s",
        f"DCC service requests       {results['dcc_requests_per_s']:9.0f} /s  (batches of {results['batch']}, "
        f"durable before routing and after)",
        f"DCC / raw verify           {results['dcc_vs_raw_verify']:9.2f}    target >= {results['target_ratio']}  "
        f"{met(results['ratio_met'])}",
        f"requests per second        {results['dcc_requests_per_s']:9.0f}    target >= {results['target_per_s']}  "
        f"{met(results['rate_met'])}",
        f"audit log whole after the run: {results['audit_log_whole']}",
    ])
