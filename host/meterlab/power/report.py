"""The power report (design.md, "Power budget"): DIR/report.html and its PNG plots, from a calibration
(meterlab.power.calibrate): the current over time with the firmware's events on it, the energy of each
operation (fitted and the profile's), and the battery life a gas meter gets from them, under normal
traffic and under the worst the DCC's thresholds let an attacker send (meterlab.power.gas_day).

    paths = write_report(out_dir, trace, events, calibration, profile)

The figures are matplotlib Figures drawn straight to PNG by its Agg renderer, never through pyplot: no
display, no GUI backend, no global state changed for the rest of the process.
"""
import html
import os

import numpy as np

from meterfw import ledger
from meterlab.power.battery import LI_SOCL2_D_19AH
from meterlab.power.gas_day import project

_PLOT_POINTS = 4000  # a long trace is drawn as the span (min to max) of this many slices, so no pulse hides
_DAYS = (("normal", "normal traffic"), ("worst_thresholds_allow", "attack: the worst the thresholds allow"))


def write_report(out_dir, trace, events, calibration, profile, thresholds=None, battery=LI_SOCL2_D_19AH):
    """Write report.html and its PNGs to out_dir; {name: path} of what was written."""
    from meterlab.dcc.anomaly import Thresholds

    os.makedirs(out_dir, exist_ok=True)
    thresholds = thresholds or Thresholds()
    projections = {"profile": project(profile, battery, thresholds),
                   "fitted": project(profile, battery, thresholds, costs=calibration.costs_uj())}
    paths = {
        "current": _plot_current(os.path.join(out_dir, "current.png"), trace, events, calibration),
        "energy": _plot_energy(os.path.join(out_dir, "energy.png"), calibration),
        "battery": _plot_battery(os.path.join(out_dir, "battery.png"), projections),
    }
    paths["html"] = os.path.join(out_dir, "report.html")
    with open(paths["html"], "w") as out:
        out.write(_html(trace, calibration, profile, projections, battery))
    return paths


def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=(10, 4.5), dpi=100, layout="constrained")


def _plot_current(path, trace, events, calibration):
    figure = _figure()
    axes = figure.subplots()
    times, current_ma = trace.times_s, trace.current_a * 1000
    if trace.samples > 2 * _PLOT_POINTS:
        slices = np.array_split(np.arange(trace.samples), _PLOT_POINTS)
        middle = np.array([times[s[len(s) // 2]] for s in slices])
        axes.fill_between(middle, [current_ma[s].min() for s in slices], [current_ma[s].max() for s in slices],
                          color="0.3", linewidth=0.5, label="current (span of each slice)")
    else:
        axes.plot(times, current_ma, color="0.3", linewidth=0.6, label="current")
    colours = dict(zip(ledger.OPERATIONS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                                           "tab:brown")))
    aligned = events.times_s + calibration.offset_s
    for op in ledger.OPERATIONS:
        at = aligned[np.array([o == op for o in events.operations])]
        if at.size:
            axes.vlines(at, 0.86, 1, transform=axes.get_xaxis_transform(), colors=colours[op], linewidth=1,
                        label=op)
    axes.set_ylim(top=float(current_ma.max()) * 1.2)  # the events' ticks above the highest pulse
    axes.set_xlabel("time on the instrument's clock (s)")
    axes.set_ylabel("current (mA)")
    axes.set_title(f"{trace.file_name}: events at offset {calibration.offset_s:+.3f} s")
    axes.legend(loc="upper right", fontsize="small")
    figure.savefig(path)
    return path


def _plot_energy(path, calibration):
    figure = _figure()
    axes = figure.subplots()
    operations = list(calibration.fitted_uj)
    x = np.arange(len(operations))
    axes.bar(x - 0.2, [calibration.profile_uj[op] for op in operations], 0.4, label="profile", color="tab:gray")
    axes.bar(x + 0.2, [calibration.fitted_uj[op] for op in operations], 0.4, label="fitted (measured)",
             yerr=[calibration.standard_error_uj[op] for op in operations], color="tab:blue")
    axes.set_xticks(x, operations)
    axes.set_yscale("log")
    axes.set_ylabel("energy per operation (uJ)")
    axes.set_title(f"{calibration.board}: energy per operation")
    axes.legend()
    figure.savefig(path)
    return path


def _plot_battery(path, projections):
    figure = _figure()
    axes = figure.subplots()
    x = np.arange(len(_DAYS))
    for shift, (costs, colour) in zip((-0.2, 0.2), (("profile", "tab:gray"), ("fitted", "tab:blue"))):
        years = [projections[costs]["days"][day]["production_years"] for day, _ in _DAYS]
        axes.bar(x + shift, years, 0.4, label=f"{costs} costs", color=colour)
    axes.axhline(15, color="tab:red", linestyle="--", label="15 years")
    axes.set_xticks(x, [label for _, label in _DAYS])
    axes.set_ylabel("battery life (years), production meter")
    axes.set_title(f"{projections['profile']['battery']}")
    axes.legend()
    figure.savefig(path)
    return path


def _html(trace, calibration, profile, projections, battery):
    e = html.escape
    cost_rows = "".join(
        f"<tr><td>{e(op)}</td><td>{calibration.fitted_uj[op]:,.2f} &plusmn; {calibration.standard_error_uj[op]:,.2f}"
        f"</td><td>{calibration.profile_uj[op]:,}</td><td>{calibration.ratios[op]:.3f}</td></tr>"
        for op in calibration.fitted_uj)
    unexercised = (", ".join(calibration.unexercised) + " (the log never exercised them: their costs stay the "
                   "profile's in the projection)") if calibration.unexercised else "none"
    life_rows = "".join(
        f"<tr><td>{e(label)}</td><td>{projections[c]['days'][day]['uj_a_day']:,}</td>"
        f"<td>{projections[c]['days'][day]['production_years']:.2f}</td>"
        f"<td>{projections[c]['days'][day]['dev_board_years']:.2f}</td><td>{c}</td></tr>"
        for day, label in _DAYS for c in ("profile", "fitted"))
    window_rows = "".join(
        f"<tr><td>{w.start_s:.3f}</td><td>{w.end_s:.3f}</td><td>{e(', '.join(f'{op} x{n}' for op, n in w.counts.items()))}"
        f"</td><td>{w.measured_uj:,.1f}</td><td>{w.fitted_uj:,.1f}</td><td>{w.residual_uj:+,.1f}</td></tr>"
        for w in calibration.windows)
    sources = "".join(f"<li><b>{e(key)}</b>: {e(text)}</li>" for key, text in sorted(profile.sources.items()))
    alignment = (f"found by cross-correlation: score {calibration.alignment_score:.2f}, runner-up a second or more "
                 f"away {calibration.runner_up_score:.2f}" if np.isfinite(calibration.alignment_score)
                 else "given, not searched for")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Power report: {e(calibration.board)}</title>
<style>body {{ font-family: sans-serif; max-width: 64em; margin: 1em auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
td:first-child {{ text-align: left; }}</style></head><body>
<h1>Power report: {e(calibration.board)}</h1>
<p>Trace <code>{e(trace.file_name)}</code> ({e(trace.source_format)}, {trace.samples:,} samples, {trace.duration_s:.3f} s at
{trace.sample_rate_hz:,.0f} samples/s, mean {trace.mean_current_a * 1000:.3f} mA);
event log <code>{e(calibration.events_file)}</code>.
Clock offset (instrument &minus; board): <b>{calibration.offset_s:+.4f} s</b>, {alignment}.
Energy is the current's integral at the profile's supply, {calibration.supply_v} V.</p>
<h2>Current over time</h2><img src="current.png" alt="current over time with the firmware's events">
<h2>Energy per operation</h2>
<table><tr><th>operation</th><th>fitted (uJ)</th><th>profile (uJ)</th><th>fitted / profile</th></tr>{cost_rows}</table>
<p>Sleep current fitted: {calibration.sleep_a * 1000:.4f} mA (the profile: {profile.sleep_ma(True)} mA on the dev board,
{profile.sleep_ma(False)} mA for the bare module). Not exercised: {e(unexercised)}.</p>
<img src="energy.png" alt="energy per operation, fitted and the profile's">
<h2>Fit</h2>
<p>{len(calibration.windows)} windows (one burst of events each; {calibration.bursts_outside} outside the trace),
RMS residual {calibration.rms_residual_uj:,.2f} uJ.</p>
<table><tr><th>from (s)</th><th>to (s)</th><th>events</th><th>measured (uJ)</th><th>fitted (uJ)</th><th>residual (uJ)</th></tr>
{window_rows}</table>
<h2>Battery life</h2>
<p>A gas meter on a {e(battery.name)}: its normal day, and the worst day the DCC's thresholds and the ledger allow
(meterlab.power.gas_day), with the profile's costs and with the fitted ones.</p>
<table><tr><th>day</th><th>uJ a day</th><th>production meter (years)</th><th>dev board (years)</th><th>costs</th></tr>
{life_rows}</table>
<img src="battery.png" alt="projected battery life, normal and attack traffic">
<h2>Sources of the profile's numbers</h2><ul>{sources}</ul>
</body></html>
"""
