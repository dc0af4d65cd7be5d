"""Scenario 1 at scale (`meterlab attack sweep`): a compromised supplier's disconnect for every meter of a
fleet-mode estate (meters in this process), run against the DCC once per threshold, to show how the meters
affected grow with the threshold the DCC is given (one supplier's disconnects a day, and everyone's
together: both set to it).

The estate is built once. Each threshold then gets the DCC as it was before the flood (a copy of its
records) and the meters as installed, and the same signed requests: the attacker's flood is signed once.
"""
import shutil
import time

from meterfw import authorisation, der, pipeline
from meterlab.attack.site import PASSPHRASE, Site, thresholds_with
from meterlab.dcc.service import QUARANTINED, ROUTED, Dcc, command_request

BATCH = 2000


def run_sweep(home, meters, thresholds, progress=print):
    """[{threshold, meters, meters_affected, executed, blocked_at_dcc, alarms, seconds}] a threshold, and the
    seconds the estate and the flood's signing took."""
    started = time.monotonic()
    site = Site(home, meters=meters, backend="fleet", thresholds=thresholds_with(min(thresholds)), progress=progress)
    try:
        built = time.monotonic()
        progress(f"estate of {meters:,} meters ready in {built - started:.0f}s; supplier A signs a disconnect for each")
        flood = [command_request(site.supplier_a, meter, authorisation.SUPPLY_DISCONNECT, der.EMPTY) for meter in site.meters]
        signed = time.monotonic()
        site.dcc.close()
        site.dcc = None
        before = home / "dcc-before-the-flood"
        shutil.copytree(home / "dcc", before)
        rows = []
        for threshold in thresholds:
            progress(f"threshold {threshold:,} disconnects a day: the flood")
            folder = home / f"dcc-threshold-{threshold}"
            shutil.copytree(before, folder)
            site.fleet.reset_installed()
            # one supplier's limit and everyone's together, both at the threshold: the DCC's default
            # total (100 a day) would otherwise cap every row above it
            site.dcc = Dcc(folder, site.smki, PASSPHRASE, site.fleet, thresholds_with(threshold, total=threshold))
            began = time.monotonic()
            results = []
            for at in range(0, len(flood), BATCH):
                results.extend(site.dcc.submit_batch(flood[at:at + BATCH]))
            seconds = time.monotonic() - began
            affected = sum(site.supply_off(meter) for meter in site.fleet.meters)  # only meters that heard a frame
            rows.append({"threshold": threshold, "meters": meters, "meters_affected": affected,
                         "executed": sum(r.status == ROUTED and r.reason == pipeline.ACCEPT for r in results),
                         "blocked_at_dcc": sum(r.status == QUARANTINED for r in results),
                         "alarms": len(site.dcc.alarms()), "seconds": round(seconds, 1)})
            site.dcc.close()
            shutil.rmtree(folder)
        site.dcc = None  # each threshold's DCC is closed already
    finally:
        site.close()
    return {"rows": rows, "estate_seconds": round(built - started, 1), "signing_seconds": round(signed - built, 1),
            "total_seconds": round(time.monotonic() - started, 1)}


def table(result):
    lines = [f"{'threshold':>10} {'meters':>9} {'affected':>9} {'blocked at DCC':>15} {'alarms':>7} {'seconds':>8}"]
    for row in result["rows"]:
        lines.append(f"{row['threshold']:>10,} {row['meters']:>9,} {row['meters_affected']:>9,} "
                     f"{row['blocked_at_dcc']:>15,} {row['alarms']:>7} {row['seconds']:>8}")
    return "\n".join(lines)


def plot(result, path):
    """A PNG: meters affected against the threshold, both on log scales, with the estate's size."""
    from matplotlib.figure import Figure

    rows = result["rows"]
    figure = Figure(figsize=(7, 4.5), dpi=110)
    axes = figure.add_subplot()
    axes.plot([r["threshold"] for r in rows], [max(r["meters_affected"], 0.8) for r in rows], "o-",
              label="meters disconnected")
    axes.axhline(rows[0]["meters"], color="grey", linestyle="--", label=f"the estate ({rows[0]['meters']:,} meters)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("the DCC's threshold: one supplier's disconnects a day")
    axes.set_ylabel("meters disconnected by the flood")
    axes.set_title("a compromised supplier's disconnect flood, against the DCC's threshold")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
