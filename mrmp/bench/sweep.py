"""Item 4: what the sweep layer (Ray Tune, Optuna, tracking) costs on top of the trainings it runs.

A small grid sweep file is written to a temporary folder and run through the real entry point (`mrmp sweep
FILE --quiet`, in this process), with its default MLflow store. Then, from what the sweep recorded:

- trial time: what the core spent training and evaluating, Σ `epoch_time_s` (logged every epoch) + the final
  curve's `eval_time_s` (the trial's summary artifact);
- Tune time: `time_total_s` of the trial's last result (Tune's own clock, from the trial function's start);
- ratio = sweep wall ÷ (Σ trial times ÷ concurrency): 1 would be a sweep that only trains;
- per-trial overhead = Tune time − trial time (tracking, checkpoints, intermediate curves, data fetch), median;
- fixed overhead = wall − span of the trials (starting Ray, the stores, shutting down).

Ray is imported only here, lazily (the core never imports it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .timing import median

SWEEP_NAME = "bench"


def sweep_file(root: Path, methods: list[str], seeds: list[int], epochs: int, report_every: int) -> Path:
    """A grid sweep over methods × seeds on synthetic SBU, small GCN, 2 trials at a time, 1 CPU each."""
    doc = {
        "sweep": {
            "name": SWEEP_NAME,
            "searcher": "grid",
            "concurrency": 2,
            "scheduler": "none",
            "objectives": [{"metric": "auc", "mode": "max"}],
            "resources": {"cpu": 1, "gpu": 0},
            "report_every": report_every,
            "storage": {"root": str(root / "sweeps")},
        },
        "base": {
            "data": {"name": "synthetic-sbu"},
            "model": {"preset": "small"},
            "train": {"epochs": epochs},
        },
        "space": {
            "method.name": {"type": "categorical", "choices": methods},
            "train.seed": {"type": "categorical", "choices": seeds},
        },
    }
    path = root / "bench_sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _tune_result(tune_dir: Path, trial_id: str) -> dict[str, Any] | None:
    path = tune_dir / trial_id / "result.json"
    if not path.is_file():
        return None
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return json.loads(lines[-1]) if lines else None


def sweep_overhead(
    methods: list[str] | None = None,
    seeds: list[int] | None = None,
    epochs: int = 300,
    report_every: int = 50,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Run the bench sweep and split its wall time into training and overhead (see the module docstring)."""
    from mrmp.cli.main import main
    from mrmp.sweep.results import read_state, trials

    methods = methods or ["srmp", "mrmp", "tcmp"]
    seeds = seeds or [0, 1]
    with contextlib.ExitStack() as stack:
        root = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mrmp-bench-")))
        path = sweep_file(root, methods, seeds, epochs, report_every)
        sink = io.StringIO()
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        t0 = time.time()
        with contextlib.redirect_stdout(sink):
            code = main(["sweep", str(path), "--quiet"])
        t1 = time.time()
        if code != 0:
            raise RuntimeError(f"the bench sweep exited {code}:\n{sink.getvalue()[-2000:]}")
        state = read_state(root / "sweeps" / SWEEP_NAME)
        assert state is not None
        tracker = state.tracking.create()
        tune_dir = Path(state.data["tune_dir"])
        rows = []
        for r in trials(tracker, state):
            epoch_s = sum(v for _, v in tracker.metric_history(r.run_id, "epoch_time_s"))
            summary = json.loads(tracker.read_artifact(r.run_id, "summary.json"))
            eval_s = sum((rep.get("summary") or {}).get("eval_time_s", 0.0) for rep in summary["repeats"])
            result = _tune_result(tune_dir, r.tags.get("mrmp.trial_id", ""))
            tune_s = float(result["time_total_s"]) if result else None
            end = float(result["timestamp"]) if result else None
            rows.append(
                {
                    "trial": r.name,
                    "method": r.tags.get("mrmp.method"),
                    "trial_s": epoch_s + eval_s,
                    "tune_s": tune_s,
                    "overhead_s": tune_s - (epoch_s + eval_s) if tune_s is not None else None,
                    "start": end - tune_s if end is not None and tune_s is not None else None,
                    "end": end,
                }
            )
        tracker.close()
    wall = t1 - t0
    concurrency = 2
    total = sum(r["trial_s"] for r in rows)
    starts = [r["start"] for r in rows if r["start"] is not None]
    ends = [r["end"] for r in rows if r["end"] is not None]
    overheads = [r["overhead_s"] for r in rows if r["overhead_s"] is not None]
    return {
        "ratio": wall / (total / concurrency),
        "wall_s": wall,
        "trials": len(rows),
        "concurrency": concurrency,
        "epochs": epochs,
        "report_every": report_every,
        "sum_trial_s": total,
        "median_trial_overhead_s": median(overheads) if overheads else None,
        "median_trial_overhead_fraction": median(
            [r["overhead_s"] / r["trial_s"] for r in rows if r["overhead_s"] is not None]
        )
        if overheads
        else None,
        "startup_s": min(starts) - t0 if starts else None,
        "teardown_s": t1 - max(ends) if ends else None,
        "per_trial": [{k: v for k, v in r.items() if k not in ("start", "end")} for r in rows],
    }
