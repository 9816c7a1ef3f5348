"""`mrmp train`: one training run, its accuracy-vs-rate curve and its outputs."""

from __future__ import annotations

import argparse
import sys

EPILOG = """example:
  mrmp train --set method.name=mp --set train.epochs=200 --out runs/mp
  mrmp train best/srmp.yaml --out runs/srmp --objective acc@targets --targets 0.9   # as `mrmp export` says
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
    p.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="METRIC",
        help="also score the run by a sweep objective (acc@targets, acc@0.9, auc, ...; repeatable), on "
        "validation and test: what a sweep's trial recorded for this config",
    )
    p.add_argument("--targets", default=None, metavar="R,...", help="the target rates of acc@targets")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(func=run)


def objectives(args: argparse.Namespace) -> tuple[list[str], list[float] | None]:
    """The --objective and --targets values, checked before anything runs."""
    from mrmp.sweep.objectives import metric_problem
    from mrmp.validation import ConfigError, Issue

    issues = [Issue("--objective", "", p) for m in args.objective if (p := metric_problem(m))]
    targets = None
    if args.targets:
        try:
            targets = [float(r) for r in args.targets.split(",")]
        except ValueError:
            issues.append(Issue("--targets", "", f"expected comma-separated rates, got {args.targets!r}"))
    if "acc@targets" in args.objective and not targets:
        issues.append(Issue("--objective", "", "acc@targets needs --targets R,..."))
    if issues:
        raise ConfigError(issues)
    return list(args.objective), targets


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from mrmp.config import load_config
    from mrmp.train import prepare_data
    from mrmp.train import run as train_run

    metrics, targets = objectives(args)
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
    if metrics:
        from mrmp.sweep.objectives import metric_value

        scored = {}
        for m in metrics:
            val, test = (metric_value(m, result.curve, targets, split) for split in ("val", "test"))
            scored[m] = {"val": val, "test": test, "targets": targets}
            shown = "undefined" if val is None else f"{val * 100:.2f} %"
            tail = "" if test is None else f" (test {test * 100:.2f} %)"
            print(f"objective {m} on validation: {shown}{tail}")
        path = Path(args.out) / "summary.json"
        summary = json.loads(path.read_text(encoding="utf-8"))
        summary["objectives"] = scored
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    print(f"wall time {s['wall_time_s']:.1f} s on {s['device']}; outputs in {args.out}/", file=sys.stdout)
    return 0
