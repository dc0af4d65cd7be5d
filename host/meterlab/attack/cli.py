"""`meterlab attack list` and `meterlab attack run NAME|all`: the scenarios of meterlab.attack.scenarios, each
on a fresh estate, their outcomes printed and (--json) written; the exit status says whether every claim
held."""
import json
import sys
import tempfile
import time
from pathlib import Path

PASS, FAIL = "\u2713", "\u2717"


def add_attack_commands(commands):
    from meterlab.attack.scenarios import SCENARIOS
    from meterlab.attack.site import BACKENDS

    attack = commands.add_parser("attack", help="the threat model, run: attacks with their outcomes measured")
    attack_commands = attack.add_subparsers(dest="attack_command", required=True, metavar="COMMAND")
    listing = attack_commands.add_parser("list", help="the scenarios and the design property each tests")
    listing.set_defaults(handler=cmd_attack_list)
    run = attack_commands.add_parser("run", help="run a scenario (or all) on a fresh estate")
    run.add_argument("name", choices=[s.name for s in SCENARIOS] + ["all"], metavar="NAME|all")
    run.add_argument("--meters", type=int, default=3, help="electricity meters in the estate (default %(default)s)")
    run.add_argument("--backend", choices=BACKENDS, default="virtual",
                     help="virtual boards, or fleet: the firmware core in this process, for large estates")
    run.add_argument("--threshold", type=int, default=2,
                     help="disconnects a day the DCC lets one supplier send (default %(default)s)")
    run.add_argument("--json", metavar="FILE", help="write the outcomes as JSON")
    run.add_argument("--html", metavar="FILE", help="write a report: each scenario, its property, its outcome, "
                                                    "its evidence")
    run.add_argument("--workdir", help="keep the estates here (default: a temporary folder)")
    run.set_defaults(handler=cmd_attack_run)
    sweep = attack_commands.add_parser(
        "sweep", help="the compromised supplier's disconnect flood in fleet mode, once per DCC threshold")
    sweep.add_argument("--meters", type=int, default=100_000, help="meters in the estate (default %(default)s)")
    sweep.add_argument("--thresholds", default="1,10,100,1000,10000",
                       help="disconnects a day the DCC lets one supplier send, comma-separated (default %(default)s)")
    sweep.add_argument("--json", metavar="FILE", help="write the table as JSON")
    sweep.add_argument("--plot", metavar="FILE.png", help="plot meters affected against the threshold")
    sweep.add_argument("--workdir", help="keep the estate here (default: a temporary folder)")
    sweep.set_defaults(handler=cmd_attack_sweep)


def cmd_attack_list(args):
    from meterlab.attack.scenarios import SCENARIOS

    for number, scenario in enumerate(SCENARIOS, 1):
        only = "" if len(scenario.backends) > 1 else f"  ({scenario.backends[0]} boards only)"
        print(f"{scenario.name:<26} {scenario.title}{only}\n{'':<26} property {scenario.property}")
    return 0


def cmd_attack_run(args):
    from meterlab.attack import scenarios

    if args.meters < 1 or args.threshold < 0:
        print("meterlab: --meters is at least 1 and --threshold at least 0", file=sys.stderr)
        return 1
    names = [s.name for s in scenarios.SCENARIOS] if args.name == "all" else [args.name]
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="meterlab-attack-") as scratch:
        root = Path(args.workdir or scratch)
        for name in names:
            started = time.monotonic()
            print(f"\n== {name}: {scenarios.scenario(name).title}", flush=True)
            outcome = scenarios.run(name, root / name, meters=args.meters, backend=args.backend,
                                    threshold=args.threshold, progress=lambda text: print(f"   {text}", flush=True))
            _print(outcome, time.monotonic() - started)
            outcomes.append(outcome)
    held = [o for o in outcomes if o.held]
    not_run = [o for o in outcomes if o.not_run]
    failed = [o for o in outcomes if not o.held and not o.not_run]
    print(f"\n{len(held)} held, {len(failed)} failed, {len(not_run)} not run (backend: {args.backend})")
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": args.backend, "meters": args.meters,
                                               "threshold": args.threshold,
                                               "outcomes": [o.to_json() for o in outcomes]}, indent=2))
        print(f"outcomes in {args.json}")
    if args.html:
        from meterlab.attack.report import write_html

        write_html(args.html, outcomes, args.backend, args.meters, args.threshold)
        print(f"report in {args.html}")
    return 1 if failed else 0


def _print(outcome, seconds):
    print(f"   property {outcome.property}")
    if outcome.not_run:
        print(f"   not run: {outcome.not_run}")
        return
    print("   " + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in outcome.numbers.items()))
    for claim, held in outcome.claims:
        print(f"   {PASS if held else FAIL} {claim}")
    for line in outcome.evidence:
        print(f"     evidence: {line}")
    print(f"   ({seconds:.1f}s)", flush=True)


def cmd_attack_sweep(args):
    from meterlab.attack.sweep import plot, run_sweep, table

    try:
        thresholds = sorted({int(value) for value in args.thresholds.split(",")})
    except ValueError:
        print(f"meterlab: --thresholds {args.thresholds!r}: whole numbers, comma-separated", file=sys.stderr)
        return 1
    if args.meters < 1 or not thresholds or thresholds[0] < 0:
        print("meterlab: --meters is at least 1, and thresholds at least 0", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="meterlab-sweep-") as scratch:
        result = run_sweep(Path(args.workdir or scratch), args.meters, thresholds,
                           progress=lambda text: print(f"   {text}", flush=True))
    print(table(result))
    print(f"estate {result['estate_seconds']}s, flood signed in {result['signing_seconds']}s, "
          f"{result['total_seconds']}s in all")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"table in {args.json}")
    if args.plot:
        plot(result, args.plot)
        print(f"plot in {args.plot}")
    return 0
