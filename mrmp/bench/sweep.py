"""Item 4: what the sweep layer (Ray Tune, Optuna, tracking) costs on top of the trainings it runs.

A small grid sweep file is written to a temporary folder and run through the API (`Sweep(spec).run()`, in this
process), with its default MLflow store. Every figure is then read from what the sweep recorded in its tracker:

- training time of a trial: `time/train_s` (the trainers' epoch times, summed over the trial's units), or the
  `train/epoch_time_s` history times the number of units for a trial that did not complete;
- trial wall time: `time/trial_s` (from the moment Tune started the trial's worker to the close of its run);
- ratio = sweep wall ÷ (Σ training times ÷ concurrency): 1 would be a sweep that only trains;
- per-trial overhead = trial wall − its training time (the worker's set-up, validation at each report,
  checkpoints, the final curve, recording), median over trials;
- time to training: from the API call to the moment the first trial's training started
  (`time/train_started_unix`, after its worker's set-up); time to the first epoch adds that epoch's time;
- start-up = API call → first run start; teardown = last run end → the API call returns.

Ray is imported only here, lazily (the core never imports it).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .timing import median

SWEEP_NAME = "bench"
CONCURRENCY = 2


def sweep_file(
    root: Path,
    methods: list[str],
    seeds: list[int],
    epochs: int,
    report_every: int,
    rates: list[float] | None = None,
) -> Path:
    """A grid sweep over methods × seeds on synthetic SBU, small GCN, compared at rate 0.9, 2 trials at a time,
    1 CPU each."""
    doc = {
        "sweep": {
            "name": SWEEP_NAME,
            "searcher": "grid",
            "concurrency": CONCURRENCY,
            "scheduler": "none",
            "target_rates": [0.9],
            "resources": {"cpu": 1, "gpu": 0},
            "report_every": report_every,
            "storage": {"root": str(root / "sweeps")},
        },
        "base": {
            "data": {"name": "synthetic-sbu"},
            "model": {"preset": "small"},
            "train": {"epochs": epochs},
            **({"eval": {"rates": rates}} if rates else {}),
        },
        "space": {
            "method.name": {"type": "categorical", "choices": methods},
            "train.seed": {"type": "categorical", "choices": seeds},
        },
    }
    path = root / "bench_sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def trial_times(tracker: Any, record: Any) -> dict[str, Any]:
    """One trial's figures, from its tracking run (see the module docstring)."""
    run = record.run
    epochs = tracker.metric_history(record.run_id, "train/epoch_time_s")
    units = len(json.loads(run.tags.get("mrmp.units", '["single"]')))
    train_s = record.metric("time/train_s")
    if train_s is None:
        train_s = units * sum(v for _, v in epochs)
    trial_s = record.metric("time/trial_s")
    started = [v for _, v in tracker.metric_history(record.run_id, "time/train_started_unix")]
    first = min(started) + min(epochs)[1] * units if started and epochs else None
    return {
        "trial": record.name,
        "method": record.method,
        "outcome": record.outcome.value,
        "train_s": train_s,
        "trial_s": trial_s,
        "overhead_s": trial_s - train_s if trial_s is not None else None,
        "start": run.start_time,
        "end": run.end_time,
        "first_epoch_at": first,  # unix time: the end of its first epoch
        "train_started_at": min(started) if started else None,  # unix time: its training began
    }


def sweep_overhead(
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    epochs: int = 300,
    report_every: int = 50,
    keep: Path | None = None,
    rates: list[float] | None = None,
) -> dict[str, Any]:
    """Run the bench sweep and split its wall time into training and overhead (see the module docstring).
    `rates`: the evaluation grid (default: the run config's)."""
    from mrmp.sweep.driver import Sweep
    from mrmp.sweep.results import trials
    from mrmp.sweep.spec import load_sweep
    from mrmp.sweep.state import read_state

    methods = methods or ["srmp", "mrmp", "tcmp"]
    seeds = seeds or [0, 1]
    with contextlib.ExitStack() as stack:
        root = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mrmp-bench-")))
        spec = load_sweep(sweep_file(root, methods, seeds, epochs, report_every, rates))
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        said: list[str] = []
        t0 = time.time()
        outcome = Sweep(spec, quiet=True, log=said.append).run()
        t1 = time.time()
        if outcome.exit_code != 0:
            raise RuntimeError(
                f"the bench sweep ended with exit code {outcome.exit_code}:\n" + "\n".join(said)
            )
        state = read_state(spec.dir)
        assert state is not None
        tracker = state.tracking.create()
        rows = [trial_times(tracker, r) for r in trials(tracker, state)]
        tracker.close()
    wall = t1 - t0
    total = sum(r["train_s"] for r in rows)
    starts = [r["start"] for r in rows if r["start"] is not None]
    ends = [r["end"] for r in rows if r["end"] is not None]
    overheads = [r["overhead_s"] for r in rows if r["overhead_s"] is not None]
    fractions = [r["overhead_s"] / r["train_s"] for r in rows if r["overhead_s"] is not None and r["train_s"]]
    first = [r["first_epoch_at"] for r in rows if r["first_epoch_at"] is not None]
    began = [r["train_started_at"] for r in rows if r["train_started_at"] is not None]
    return {
        "ratio": wall / (total / CONCURRENCY),
        "wall_s": wall,
        "trials": len(rows),
        "concurrency": CONCURRENCY,
        "epochs": epochs,
        "report_every": report_every,
        "sum_train_s": total,
        "median_trial_overhead_s": median(overheads) if overheads else None,
        "median_trial_overhead_fraction": median(fractions) if fractions else None,
        "train_start_s": min(began) - t0 if began else None,
        "first_epoch_s": min(first) - t0 if first else None,
        "startup_s": min(starts) - t0 if starts else None,
        "called_at": t0,  # seconds since the epoch: when `Sweep(spec).run()` was called
        "teardown_s": t1 - max(ends) if ends else None,
        "per_trial": [
            {k: v for k, v in r.items() if k not in ("start", "end", "first_epoch_at", "train_started_at")}
            for r in rows
        ],
    }
