"""`mrmp report`: a markdown table and an overlay plot of the best trial per method of a sweep."""

from __future__ import annotations

import argparse

EPILOG = """example:
  mrmp report sweeps/quickstart.yaml --out results/sweeps/quickstart
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="markdown table + accuracy-vs-rate overlay of a sweep's best trials",
        description="Write report.md (best completed trial per method: objectives, AUC, mean seen/unseen, "
        "worst unseen, accuracy at a few rates), curves.png (their curves overlaid, seen rates filled), "
        "curves.csv and trials.csv (every trial: outcome, scores, sampled values). SWEEP is the sweep file, its folder or its name under runs/sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", metavar="SWEEP", help="sweep file, sweep folder or sweep name")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.sweep.export import build_report
    from mrmp.sweep.results import open_sweep
    from mrmp.sweep.runner import apply_env_defaults

    apply_env_defaults()

    md = build_report(open_sweep(args.sweep), args.out)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and curves.png, curves.csv, trials.csv beside it")
    return 0
