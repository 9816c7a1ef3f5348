"""`mrmp bench`: the performance suite (docs/performance.md); figures as ratios, written as JSON."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

EPILOG = """examples:
  mrmp bench --quick --out /tmp/bench.json        # about a minute: every figure, shrunk (CI runs this)
  mrmp bench --out results/bench/bench.json       # the full suite (minutes; run it on a quiet machine)
  mrmp bench --items 1,3 --out /tmp/steps.json    # only the train-step and curve figures
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure training, evaluation and sweep speed as ratios (JSON)",
        description="Run the benchmark suite of issue #7 on synthetic SBU fold 1 and print each figure with "
        "its goal. Every figure is a ratio of timings taken in this run (item 6 is seconds). Timings on a "
        "shared machine are noisy: check the load average, printed with the results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="shrunk suite (about a minute), noisier figures")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for every item (default 1)")
    p.add_argument("--items", default="1,2,3,4,5,6", help="comma-separated items to run (default: all, 1..6)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.bench import format_table, run_suite

    try:
        items = tuple(sorted({int(x) for x in args.items.split(",") if x.strip()}))
    except ValueError:
        print(f"error: --items {args.items!r}: expected numbers 1..6, e.g. 1,3", file=sys.stderr)
        return 2
    if not items or any(i < 1 or i > 6 for i in items) or args.threads < 1:
        print("error: --items takes numbers 1..6 and --threads a positive count", file=sys.stderr)
        return 2
    result = run_suite(quick=args.quick, threads=args.threads, items=items, log=_log)
    result["command"] = command_line(args)
    print(format_table(result))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=_json_default, allow_nan=True) + "\n")
        print(f"results in {out}")
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The `mrmp bench` command that reproduces this run (recorded in the JSON)."""
    parts = ["mrmp", "bench"]
    if args.quick:
        parts.append("--quick")
    if args.threads != 1:
        parts += ["--threads", str(args.threads)]
    if args.items != "1,2,3,4,5,6":
        parts += ["--items", args.items]
    if args.out:
        parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _json_default(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)
