"""`mrmp train`: one training run, its accuracy-vs-rate curve and its outputs."""

from __future__ import annotations

import argparse
import sys

EPILOG = """example:
  mrmp train --set method.name=mp --set train.epochs=200 --out runs/mp
  mrmp train sweeps/exported/srmp.yaml --out runs/srmp   # a config written by `mrmp export`
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one configuration and evaluate it at every pruning rate",
        description="Train one configuration (defaults: synthetic SBU, small GCN, dense) and write "
        "config.yaml, curve.csv, summary.json and model.pt to --out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="run config YAML (optional; every key has a default)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=50 (repeatable)",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrmp.config import load_config
    from mrmp.train import prepare_data
    from mrmp.train import run as train_run

    cfg = load_config(args.config, args.overrides)  # validated before anything runs
    data = prepare_data(cfg.data)
    every = max(1, cfg.train.epochs // 10)

    def progress(ev) -> None:
        if not args.quiet and (ev.epoch % every == 0 or ev.epoch == ev.total_epochs):
            m = ev.metrics
            print(
                f"epoch {ev.epoch:>5}/{ev.total_epochs} [{ev.phase}] loss {m['loss']:.4f} "
                f"reg {m['regularizer']:.4f} train_acc {m['train_accuracy']:.3f} lr {m['lr']:.2e}",
                flush=True,
            )

    print(
        f"mrmp train: {cfg.method.name} on {cfg.data.name} fold {cfg.data.fold} (train {len(data.y_train)}, "
        f"validation {len(data.y_val)}, test {len(data.y_test)}), preset {cfg.model.preset}",
        flush=True,
    )
    result = train_run(cfg, data, out_dir=args.out, callback=progress)
    s = result.summary
    if result.trainer.diverged:
        print(f"error: training diverged: {result.trainer.diverged}; nothing written", file=sys.stderr)
        return 1
    if not args.quiet:
        print("parameters per layer:")
        for row in s["params"]["layers"]:
            flag = "prunable" if row["prunable"] else ""
            print(f"  {row['name']:<20} {str(tuple(row['shape'])):<14} {row['params']:>9,} {flag}")
        print(f"  {'total':<20} {'':<14} {s['params']['total']:>9,} ({s['params']['prunable']:,} prunable)")
    print("rate   val_acc  test_acc  observed  effective  disconnected  seen")
    for p in result.curve:
        if p.rate == 0 or p.seen or round(p.rate * 100) % 10 == 0 or p.rate >= 0.95:
            val = "      -" if p.val_accuracy is None else f"{p.val_accuracy:7.4f}"
            print(
                f"{p.rate:4.2f}   {val}  {p.test_accuracy:8.4f}  {p.observed_rate:8.4f}  {p.effective_rate:9.4f}  "
                f"{p.disconnected:12d}  {p.seen}"
            )
    print(f"wall time {s['wall_time_s']:.1f} s on {s['device']}; outputs in {args.out}/", file=sys.stdout)
    return 0
