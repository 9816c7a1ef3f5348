"""`mrmp report`: what a sweep found, for people: the best trial per method, every trial ranked with its interval,
each method's frontier."""

from __future__ import annotations

import argparse

EPILOG = """example:
  mrmp report sweeps/quickstart.yaml --out results/sweeps/quickstart
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="markdown report of a sweep: best trial per method, ranking with intervals, frontiers",
        description="Write report.md (the best trial per method by validation score, with its 95 %% interval "
        "over repeats and the test score beside; every completed trial ranked, marking those whose interval "
        "overlaps the best one; each method's frontier), frontier.png, frontier.csv and trials.csv (one flat "
        "row per trial). The sweep's parent run in MLflow carries the same files. SWEEP is the sweep file, "
        "its folder or its name under runs/sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", metavar="SWEEP", help="sweep file, sweep folder or sweep name")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.sweep.driver import apply_env_defaults
    from mrmp.sweep.report import build_report
    from mrmp.sweep.state import open_sweep

    apply_env_defaults()
    md = build_report(open_sweep(args.sweep), args.out)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and frontier.png, frontier.csv, trials.csv beside it")
    return 0
