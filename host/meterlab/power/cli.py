"""`meterlab power`: import a current trace, calibrate the board's power profile against the firmware's event
log, write the report; and synthesize a trace to try it all without a power analyser.

    from meterlab.power.cli import add_power_commands
    add_power_commands(commands)    # commands: the `meterlab` parser's add_subparsers()

Each handler returns an exit code. An expected failure (a file that does not parse, a log that does not
line up) prints one line, `meterlab power: ...`, to stderr and returns 1, like every meterlab command;
numpy and matplotlib are imported only when a power command runs.
"""
import json
import sys
import time


def add_power_commands(commands):
    power = commands.add_parser("power", help="power traces (PPK2, Joulescope, CSV): import, calibrate the board's "
                                              "power profile against its event log, report")
    power_commands = power.add_subparsers(dest="power_command", required=True, metavar="COMMAND")

    imported = power_commands.add_parser("import", help="read a trace, print its summary, save it normalised")
    imported.add_argument("file", help="a PPK2 CSV export, a Joulescope CSV, or a CSV with time_s,current_a")
    imported.add_argument("--format", default="auto", choices=("auto", "ppk2", "joulescope", "csv"))
    imported.add_argument("--out", metavar="TRACE.npz", help="save the trace here for calibrate and report")
    imported.set_defaults(handler=cmd_power_import)

    for name, help_text, handler in (
            ("calibrate", "fit each operation's cost to a trace and the firmware's event log", cmd_power_calibrate),
            ("report", "an HTML report with plots: current and events, energy per operation, battery life",
             cmd_power_report)):
        parser = power_commands.add_parser(name, help=help_text)
        parser.add_argument("trace", help="a trace saved by `power import` (.npz), or a CSV it reads")
        parser.add_argument("--events", required=True, metavar="EVENTS.csv", help="the firmware's event log "
                                                                                  "(time_s,operation,count)")
        parser.add_argument("--board", required=True, help="the board description with the power profile")
        parser.add_argument("--offset", type=float, metavar="SECONDS",
                            help="instrument time - board time, if known (default: found by cross-correlation)")
        parser.set_defaults(handler=handler)
        if name == "calibrate":
            parser.add_argument("--json", metavar="OUT", help="write the calibration here as JSON")
        else:
            parser.add_argument("--out", required=True, metavar="DIR", help="where report.html and its PNGs go")

    synthesize = power_commands.add_parser("synthesize", help="a synthetic trace and its event log from a board's "
                                                              "profile, to try the pipeline without hardware")
    synthesize.add_argument("--board", required=True)
    synthesize.add_argument("--format", required=True, choices=("ppk2", "joulescope", "csv"))
    synthesize.add_argument("--out", required=True, metavar="FILE", help="the trace, as that instrument exports it")
    synthesize.add_argument("--events", required=True, metavar="EVENTS.csv", help="the matching event log")
    synthesize.add_argument("--seed", type=int, default=0)
    synthesize.add_argument("--noise-ua", type=float, default=20.0, help="Gaussian noise (uA RMS)")
    synthesize.set_defaults(handler=cmd_power_synthesize)
    return power


def _errors():
    from meterlab.boards.descriptions import BoardDescriptionError
    from meterlab.power.calibrate import CalibrationError
    from meterlab.power.events import EventLogError
    from meterlab.power.trace import TraceError

    return TraceError, EventLogError, CalibrationError, BoardDescriptionError, OSError


def _failing(command):
    """The handler, with expected failures as one line on stderr and exit code 1."""
    def handler(args):
        try:
            return command(args)
        except _errors() as error:
            sys.stdout.flush()
            print(f"meterlab power: {error}", file=sys.stderr)
            return 1
    handler.__name__ = command.__name__
    handler.__doc__ = command.__doc__
    return handler


def _progress(done, total):
    print(f"\r  read {done / 1e6:.1f} of {total / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)


@_failing
def cmd_power_import(args):
    from meterlab.power.trace import read_trace, save_trace

    started = time.monotonic()
    trace = read_trace(args.file, args.format, progress=_progress)
    if time.monotonic() - started >= 1.0:
        print(file=sys.stderr)
    print(f"{args.file}: {trace.source_format}, {trace.samples} samples, {trace.duration_s:.6g} s at "
          f"{trace.sample_rate_hz:.6g} samples/s, mean {trace.mean_current_a * 1000:.6g} mA, "
          f"charge {trace.charge_c * 1000:.6g} mC")
    if args.out:
        save_trace(trace, args.out)
        print(f"saved to {args.out}")
    return 0


def _calibration(args):
    from meterlab.power.calibrate import calibrate
    from meterlab.power.events import read_events
    from meterlab.power.profile import PowerProfile
    from meterlab.power.trace import load_trace

    profile = PowerProfile.of(args.board)
    trace = load_trace(args.trace)
    events = read_events(args.events)
    return profile, trace, events, calibrate(trace, events, profile, offset_s=args.offset)


@_failing
def cmd_power_calibrate(args):
    _, _, _, result = _calibration(args)
    print(f"{result.board}: {result.trace_file} against {result.events_file}")
    print(f"offset (instrument - board) {result.offset_s:+.4f} s; {len(result.windows)} windows, "
          f"RMS residual {result.rms_residual_uj:.2f} uJ; sleep {result.sleep_a * 1000:.4f} mA")
    print(f"  {'operation':<17} {'fitted uJ':>14} {'profile uJ':>12} {'ratio':>7}")
    for op, fitted in result.fitted_uj.items():
        print(f"  {op:<17} {fitted:>14.2f} {result.profile_uj[op]:>12} {result.ratios[op]:>7.3f}")
    if result.unexercised:
        print(f"not exercised by the log (not fitted): {', '.join(result.unexercised)}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result.to_json(), out, indent=1)
        print(f"calibration in {args.json}")
    return 0


@_failing
def cmd_power_report(args):
    from meterlab.power.report import write_report

    profile, trace, events, result = _calibration(args)
    paths = write_report(args.out, trace, events, result, profile)
    print(f"report in {paths['html']}")
    return 0


@_failing
def cmd_power_synthesize(args):
    from meterlab.power.events import write_events
    from meterlab.power.profile import PowerProfile
    from meterlab.power.synthetic import synthesize, write_trace_csv

    profile = PowerProfile.of(args.board)
    bench = synthesize(profile, seed=args.seed, noise_a=args.noise_ua * 1e-6)
    write_trace_csv(bench.trace, args.out, args.format, profile.supply_v)
    write_events(bench.events, args.events)
    print(f"{args.out}: {bench.trace.samples} samples, {len(bench.events)} events in {args.events}, "
          f"offset {bench.offset_s:+.3f} s (instrument - board), the profile's costs")
    return 0
