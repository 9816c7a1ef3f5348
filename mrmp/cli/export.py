"""`mrmp export`: the best configs of a sweep as YAML that `mrmp train` runs as it is."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  mrmp export sweeps/quickstart.yaml --out best/
  mrmp train best/mrmp.yaml --out runs/mrmp-best           # re-run the winner
  mrmp export runs/sweeps/quickstart --out best/ --rates 0.9,0.95
  mrmp export sweeps/quickstart.yaml --out best/ --networks          # + the pruned networks, sparse on disk
  mrmp export sweeps/quickstart.yaml --out best/ --networks --network-rates 0.8,0.97   # any rate of an MRMP net
  mrmp predict best/networks/mrmp-0.97.pt                           # check that one runs
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write the best config per method of a sweep (and a manifest)",
        description="Write <method>.yaml for the best completed trial of each method (by the sweep's first "
        "objective on the validation split, or --metric), <method>@<rate>.yaml for the trial on each method's "
        "validation frontier at each --rates value, and manifest.json (validation score with its 95 %% "
        "interval, test score, run id, Optuna number, command). Each file starts with a comment naming its "
        "sweep, trial, run and score. SWEEP is the sweep file, its folder (<storage.root>/<name>) or its "
        "name under runs/sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", metavar="SWEEP", help="sweep file, sweep folder or sweep name")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--metric", default=None, help="select by this metric instead (auc, mean_unseen, acc@0.9, ...)"
    )
    p.add_argument("--mode", choices=("max", "min"), default=None, help="with --metric (default max)")
    p.add_argument(
        "--rates", default=None, help="comma-separated rates: also export each method's best there"
    )
    p.add_argument(
        "--networks",
        action="store_true",
        help="also write each best trial's network, pruned, under networks/ (sparse on disk, weights_only-loadable)",
    )
    p.add_argument(
        "--network-rates",
        default=None,
        metavar="R,...",
        help="rates for networks read at any rate (MRMP, MP without fine-tuning); single-rate ones keep theirs",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.stats import interval_text
    from mrmp.sweep.cluster import apply_env_defaults
    from mrmp.sweep.export import export_best
    from mrmp.sweep.objectives import metric_problem
    from mrmp.sweep.state import open_sweep
    from mrmp.validation import ConfigError, Issue

    apply_env_defaults()
    if args.metric and (problem := metric_problem(args.metric)):
        raise ConfigError([Issue("--metric", "", problem)])
    rates = _rates("--rates", args.rates)
    network_rates = _rates("--network-rates", args.network_rates)
    if network_rates and not args.networks:
        raise ConfigError([Issue("--network-rates", "", "goes with --networks")])
    state = open_sweep(args.sweep)
    entries = export_best(
        state, args.out, args.metric, args.mode, rates, args.networks, network_rates or None
    )
    if not entries:
        print(f"sweep {state.name}: no completed trial to export")
        return 1
    for e in entries:
        val = e["validation"] or {}
        lo, hi = val.get("ci95") or (None, None)
        shown = "–" if val.get("mean") is None else interval_text(val["mean"], lo, hi)
        test = (e["test"] or {}).get("mean")
        tail = f", test {test * 100:.1f}" if test is not None else ""
        print(f"{e['file']:<22} validation {e['metric']} {shown}{tail}  ({e['trial']}, run {e['run_id']})")
        if not e["rate_ok"]:
            print(f"  warning: every completed {e['method']} trial missed a scored rate; this one by "
                  f"{e['rate_miss'] * 100:.1f} points (sweep.rate_tolerance)")  # fmt: skip
        for n in e.get("networks", []):
            print(f"  {n['file']:<28} rate {n['rate']:g}: {n['kept']:,} of {n['prunable']:,} prunable weights kept, "
                  f"{n['bytes']:,} bytes")  # fmt: skip
    print(f"manifest: {args.out}/manifest.json; re-run one with: {entries[0]['command']}")
    return 0


def _rates(flag: str, text: str | None) -> list[float]:
    from mrmp.validation import ConfigError, Issue

    if not text:
        return []
    try:
        rates = [float(r) for r in text.split(",")]
    except ValueError:
        raise ConfigError([Issue(flag, "", f"expected comma-separated numbers, got {text!r}")]) from None
    if any(not 0.0 <= r < 1.0 for r in rates):
        raise ConfigError([Issue(flag, "", f"rates are in [0, 1), got {text}")])
    return rates
