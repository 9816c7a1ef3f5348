"""`mrmp sweep`: run (or resume) a sweep file on Ray Tune with Optuna, recorded in MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  mrmp sweep sweeps/quickstart.yaml                       # local Ray, local MLflow, synthetic data
  mrmp sweep sweeps/quickstart.yaml --resume              # continue after Ctrl-C: finished trials are kept
  mrmp sweep sweeps/quickstart.yaml --add-trials 8        # grow a finished sweep: same study, same experiment
  mrmp sweep sweeps/sbu_paper.yaml --set data.root=/data/SBU
  mrmp sweep sweeps/quickstart.yaml --set sweep.trials=4 --set train.epochs=50 --set sweep.name=qs-small
  mrmp sweep sweeps/quickstart.yaml --address auto        # join a running Ray cluster (`ray start --head`)
  mrmp sweep sweeps/quickstart.yaml --address 10.0.0.5:6379 --set sweep.storage.root=/shared/sweeps
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep file: Ray Tune trials, Optuna search, MLflow records",
        description="Validate the sweep file, prepare its data once, then run its trials on Ray Tune. "
        "Everything goes under <storage.root>/<name>/ (default runs/sweeps/<name>): the Tune experiment, "
        "the Optuna study (optuna.db) and the MLflow store (mlflow.db, artifacts/). "
        "`--set` keys starting with `sweep.` change the sweep section, other keys the base run config. "
        "Exit codes: 0 done; 1 no trial has a score (all failed or diverged); 2 invalid file or missing data "
        "(nothing started); 3 a trial's process was lost for good (--resume retries it); 130 interrupted "
        "(resumable).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", help="sweep YAML file (see docs/sweeps.md)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key, e.g. --set data.root=/data/SBU or --set sweep.trials=4 (repeatable)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the same sweep (same file and --set values; sweep.trials may grow)",
    )
    p.add_argument(
        "--add-trials",
        type=int,
        default=0,
        metavar="N",
        help="grow a launched sweep by N trials, in the same Optuna study and MLflow experiment (implies --resume)",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDRESS",
        help="join a Ray cluster: `auto` (the cluster RAY_ADDRESS names, else a `ray start` cluster on this "
        "machine), HOST:PORT (the head's GCS address, e.g. 10.0.0.5:6379) or ray://HOST:10001 (Ray Client); "
        "default: start a local Ray (RAY_ADDRESS is then ignored)",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    p.add_argument("--quiet", action="store_true", help="no live progress; only the final summary")
    p.set_defaults(func=run)


def relative_storage_warnings(spec) -> list[str]:
    """Storage paths written relative (the default `runs/sweeps` included), for a sweep that joins a cluster."""
    storage = spec.raw["sweep"].get("storage") or {}
    written = {
        "sweep.storage.root": storage.get("root", "runs/sweeps"),
        "sweep.storage.tune": storage.get("tune"),
    }
    out = []
    for key, value in written.items():
        if not isinstance(value, str) or "://" in value or Path(value).expanduser().is_absolute():
            continue
        out.append(
            f"{key} {value!r} is relative, so it resolves against this process's working directory "
            f"({Path.cwd()}). Under `ray job submit` that is a temporary copy, deleted with the job; on a "
            "multi-node cluster a path only this machine has breaks the retry of a trial on another node. "
            f"Give an absolute path on storage every node mounts: --set {key}=/shared/sweeps"
        )
    return out


def describe(spec) -> str:
    """The plan of a sweep, as `--dry-run` prints it."""
    lines = [
        f"sweep {spec.name}: {spec.trials} trials, {spec.concurrency} at a time, searcher {spec.searcher} "
        f"(seed {spec.seed}), scheduler {('asha ' + str(spec.scheduler)) if spec.scheduler else 'none'}",
        "objectives (validation split): "
        + ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives)
        + (f"; target rates {', '.join(f'{r:g}' for r in spec.targets)}" if spec.targets else ""),
        f"resources per trial: cpu {spec.cpu}, gpu {spec.gpu}; report every {spec.report_every} epochs; "
        f"max failures {spec.section.max_failures}",
    ]
    if spec.repeats:
        lines.append(
            "repeats (each trial trains all, reports the mean): "
            + ", ".join(f"{k}={v}" for k, v in spec.repeats.items())
        )
    lines.append("space:")
    for p in spec.space:
        when = f"   when {p.when}" if p.when else ""
        lines.append(f"  {p.key:<24} {p.describe()}{when}")
    lines.append(f"data configs prepared once: {len(spec.data_configs())}")
    lines.append(f"storage: {spec.dir} (Tune: {spec.tune_location})")
    lines.append(f"tracking: {spec.tracking.backend} {spec.tracking.uri or ''}")
    lines.append(f"optuna study: {spec.optuna_url} (study {spec.name})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mrmp.sweep.driver import apply_env_defaults
    from mrmp.sweep.spec import load_sweep
    from mrmp.validation import ConfigError, Issue

    spec = load_sweep(args.sweep, args.overrides)  # ConfigError -> exit 2, before anything starts
    if args.add_trials < 0:
        raise ConfigError([Issue("--add-trials", "", f"expected a positive number, got {args.add_trials}")])
    if args.address:
        for warning in relative_storage_warnings(spec):
            print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        print(describe(spec))
        return 0
    apply_env_defaults(local=args.address is None)  # before Ray is imported
    from mrmp.data.errors import DataError
    from mrmp.sweep.driver import Sweep

    sweep = Sweep(spec, address=args.address, quiet=args.quiet)
    try:
        outcome = sweep.run(resume=args.resume or args.add_trials > 0, add_trials=args.add_trials)
    except DataError as e:  # raised while preparing data: nothing has started yet
        hint = "give your copy with --set data.root=/path/to/data" if spec.base_value("data.root") else ""
        raise ConfigError([Issue(args.sweep, "base.data", f"{e}{'; ' + hint if hint else ''}")]) from None
    return outcome.exit_code
