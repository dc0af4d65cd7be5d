"""The attack run's report as one HTML page: each scenario, the property it tests, whether the design's
claims held, the numbers, and the evidence (the DCC's alarms and quarantine, the meters' reject counters)."""
import html
import time


def write_html(path, outcomes, backend, meters, threshold):
    def cell(text):
        return html.escape(str(text))

    held = sum(o.held for o in outcomes)
    failed = sum(not o.held and not o.not_run for o in outcomes)
    parts = [
        "<!doctype html><meta charset='utf-8'><title>meterlab attack report</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;"
        "padding:.3em .5em;vertical-align:top}table{border-collapse:collapse}.held{color:#070}.failed{color:#b00}"
        ".notrun{color:#777}</style>",
        "<h1>The threat model, run</h1>",
        f"<p>{cell(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}: {len(outcomes)} scenarios on "
        f"{cell(backend)} meters ({meters} in each estate; the DCC's threshold {threshold} disconnects a day). "
        f"<b>{held} held, {failed} failed, {len(outcomes) - held - failed} not run.</b></p>",
        "<table><tr><th>scenario</th><th>property</th><th>outcome</th><th>numbers</th><th>evidence</th></tr>",
    ]
    for outcome in outcomes:
        if outcome.not_run:
            verdict = f"<span class='notrun'>not run: {cell(outcome.not_run)}</span>"
        else:
            verdict = "<br>".join(f"<span class='{'held' if ok else 'failed'}'>{'&#10003;' if ok else '&#10007;'} "
                                  f"{cell(claim)}</span>" for claim, ok in outcome.claims)
        numbers = "<br>".join(f"{cell(key.replace('_', ' '))}: {cell(value)}" for key, value in outcome.numbers.items())
        evidence = "<br>".join(cell(line) for line in outcome.evidence)
        parts.append(f"<tr><td><b>{cell(outcome.name)}</b><br>{cell(outcome.title)}</td><td>{cell(outcome.property)}"
                     f"</td><td>{verdict}</td><td>{numbers}</td><td>{evidence}</td></tr>")
    parts.append("</table>")
    with open(path, "w") as out:
        out.write("\n".join(parts) + "\n")
