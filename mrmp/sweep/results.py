"""Reading a sweep back from its tracking store (for the driver's summary, `mrmp report`, `mrmp export`, `mrmp
bench`): trials with their outcome and scores, the best per method, per-rate curves and frontiers.

Works after the cluster is gone: it needs the tracking store only, never Ray. Selection reads validation only:
a trial's score is its first objective's validation mean over repeats, with the interval beside it. A trial
that missed a scored rate by more than `sweep.rate_tolerance` (`rate_ok` 0) ranks after every trial that held
its rates, and the frontier skips the points that missed theirs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mrmp.stats import Estimate
from mrmp.tracking import RunRecord, Tracker

from .lifecycle import Outcome, Tag, outcome_of
from .objectives import RATE_MISS, RATE_OK, Objective, within
from .state import SweepState


@dataclass
class TrialRecord:
    """One trial as its tracking run recorded it."""

    run: RunRecord
    outcome: Outcome
    method: str
    number: int | None
    sample: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def metric(self, key: str) -> float | None:
        return self.run.metrics.get(key)

    @property
    def rate_ok(self) -> bool:
        """Whether it held the rates its objectives score (a trial recorded without the check counts as held)."""
        return self.metric(RATE_OK) != 0.0

    @property
    def rate_miss(self) -> float | None:
        """Its largest |observed − asked| rate where scored, as a fraction (None: not recorded)."""
        return self.metric(RATE_MISS)

    def estimate(self, key: str) -> Estimate | None:
        """The recorded mean and interval of `key` (e.g. `val_acc_at_targets`)."""
        mean = self.metric(key)
        if mean is None:
            return None
        lo, hi = self.metric(f"{key}_ci95_lo"), self.metric(f"{key}_ci95_hi")
        n = 1 if lo is None else 2
        return Estimate(mean, n, self.metric(f"{key}_std"), lo, hi)


def trials(tracker: Tracker, state: SweepState) -> list[TrialRecord]:
    """Every trial of the sweep, oldest first."""
    out = []
    for run in tracker.find_runs(state.parent_run_id):
        number = run.tags.get(Tag.OPTUNA)
        out.append(
            TrialRecord(
                run=run,
                outcome=outcome_of(run),
                method=run.tags.get(Tag.METHOD, "?"),
                number=int(number) if number is not None else None,
                sample=json.loads(run.tags.get(Tag.SAMPLE, "{}")),
            )
        )
    return out


def outcome_counts(records: Sequence[TrialRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return counts


def ranked(
    records: Sequence[TrialRecord], objective: Objective, stopped_too: bool = False
) -> list[TrialRecord]:
    """Trials with a validation score, best first: completed ones that held their rates, then completed ones that
    missed a scored rate (`rate_ok` 0), and, with `stopped_too`, early-stopped ones, judged on fewer epochs."""
    sign = -1 if objective.mode == "max" else 1
    done = [r for r in records if r.outcome is Outcome.COMPLETED and r.metric(objective.key) is not None]
    out = sorted(done, key=lambda r: (not r.rate_ok, sign * r.metric(objective.key)))
    if stopped_too:
        stopped = [
            r for r in records if r.outcome is Outcome.STOPPED_EARLY and r.metric(objective.key) is not None
        ]
        out += sorted(stopped, key=lambda r: sign * r.metric(objective.key))
    return out


def best_per_method(
    records: Sequence[TrialRecord], objective: Objective, stopped_too: bool = False
) -> dict[str, TrialRecord]:
    """The best trial of each method by `objective` (validation), methods in first-seen order."""
    out: dict[str, TrialRecord] = {}
    for method in dict.fromkeys(r.method for r in records):
        mine = ranked([r for r in records if r.method == method], objective, stopped_too)
        if mine:
            out[method] = mine[0]
    return out


def rate_rows(tracker: Tracker, run_id: str) -> list[dict[str, Any]]:
    """A completed trial's per-rate estimates, from its `curve.csv` artifact."""
    text = tracker.read_artifact(run_id, "curve.csv").decode("utf-8")
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = {
            "rate": float(r["rate"]),
            "seen": int(r["seen"]),
            "observed_rate": float(r["observed_rate"]),
            "effective_rate": float(r["effective_rate"]),
            "disconnected": int(r["disconnected"]),
        }
        # recorded from the repeats' worst case; a store written before the column has the first repeat's only
        row["rate_miss"] = (
            float(r["rate_miss"])
            if r.get("rate_miss")
            else abs(row["observed_rate"] - row["rate"]) * (row["rate"] > 0)
        )
        for split in ("val", "test"):
            if r[f"{split}_mean"] == "":
                row[split] = None
                continue
            row[split] = {
                k: (float(r[f"{split}_{col}"]) if r[f"{split}_{col}"] != "" else None)
                for k, col in (("mean", "mean"), ("std", "std"), ("lo", "ci95_lo"), ("hi", "ci95_hi"))
            }
        rows.append(row)
    return rows


def frontier(
    tracker: Tracker,
    records: Sequence[TrialRecord],
    curves: dict[str, list[dict[str, Any]]] | None = None,
    tolerance: float | None = None,
) -> list[dict[str, Any]]:
    """Over the completed trials given (one method's): at each rate, the best validation mean among the points
    whose observed rate is within `tolerance` of it (every point when None), the test mean of that same trial's
    networks, and which trial it is. `curves` (run id -> `rate_rows`) memoises the curves read: a completed
    trial's never changes, so a report refreshed as a sweep goes reads each once."""
    curves = {} if curves is None else curves
    best: dict[float, dict[str, Any]] = {}
    for r in records:
        if r.outcome is not Outcome.COMPLETED:
            continue
        if r.run_id not in curves:
            curves[r.run_id] = rate_rows(tracker, r.run_id)
        for row in curves[r.run_id]:
            if row["val"] is None or row["rate"] <= 0:
                continue
            if tolerance is not None and not within(row["rate_miss"], tolerance):
                continue
            key = round(row["rate"], 6)
            if key not in best or row["val"]["mean"] > best[key]["val"]:
                best[key] = {
                    "rate": row["rate"],
                    "val": row["val"]["mean"],
                    "val_lo": row["val"]["lo"],
                    "val_hi": row["val"]["hi"],
                    "test": row["test"]["mean"] if row["test"] else None,
                    "trial": r.name,
                    "run_id": r.run_id,
                }
    return [best[k] for k in sorted(best)]


def unit_curve(tracker: Tracker, run_id: str, index: int) -> list[Any]:
    """One unit's curve (validation and test at each rate it was scored at), from `units/curve_<i>.csv`."""
    from mrmp.train import CurvePoint

    text = tracker.read_artifact(run_id, f"units/curve_{index}.csv").decode("utf-8")
    return [
        CurvePoint(
            rate=float(r["rate"]),
            val_accuracy=float(r["val_accuracy"]) if r["val_accuracy"] else None,
            test_accuracy=float(r["test_accuracy"]),
            observed_rate=float(r["observed_rate"]),
            effective_rate=float(r["effective_rate"]),
            disconnected=int(r["disconnected"]),
            seen=int(r["seen"]),
        )
        for r in csv.DictReader(io.StringIO(text))
    ]
