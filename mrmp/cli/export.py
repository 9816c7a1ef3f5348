"""`mrmp export`: the best configs of a sweep as YAML that `mrmp train` runs as it is."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  mrmp export sweeps/quickstart.yaml --out best/
  mrmp train best/mrmp.yaml --out runs/mrmp-best           # re-run the winner
  mrmp export runs/sweeps/quickstart --out best/ --rates 0.9,0.95 --metric mean_unseen
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write the best config per method of a sweep (and a manifest)",
        description="Write <method>.yaml for the best completed trial of each method (by the sweep's first "
        "objective, or --metric), <method>@<rate>.yaml for the best accuracy at each --rates value, and "
        "manifest.json (metric, value, run id, trial id, command). SWEEP is the sweep file, its folder "
        "(<storage.root>/<name>) or its name under runs/sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", metavar="SWEEP", help="sweep file, sweep folder or sweep name")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--metric", default=None, help="select by this metric instead (auc, mean_unseen, acc@0.9, ...)"
    )
    p.add_argument("--mode", choices=("max", "min"), default=None, help="with --metric (default max)")
    p.add_argument("--rates", default=None, help="comma-separated rates: also export the best config at each")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.sweep.export import export_best
    from mrmp.sweep.results import open_sweep
    from mrmp.sweep.runner import apply_env_defaults
    from mrmp.validation import ConfigError, Issue

    apply_env_defaults()
    from mrmp.sweep.spec import metric_problem

    if args.metric and (problem := metric_problem(args.metric)):
        raise ConfigError([Issue("--metric", "", problem)])
    try:
        rates = [float(r) for r in args.rates.split(",")] if args.rates else []
    except ValueError:
        raise ConfigError(
            [Issue("--rates", "", f"expected comma-separated numbers, got {args.rates!r}")]
        ) from None
    state = open_sweep(args.sweep)
    entries = export_best(state, args.out, args.metric, args.mode, rates)
    if not entries:
        print(f"sweep {state.name}: no completed trial to export")
        return 1
    for e in entries:
        value = f"{e['value']:.4f}" if isinstance(e["value"], float) else e["value"]
        print(f"{e['file']:<22} {e['metric']} = {value}  ({e['trial']}, run {e['run_id']})")
    print(f"manifest: {args.out}/manifest.json; re-run one with: {entries[0]['command']}")
    return 0
