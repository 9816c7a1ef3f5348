"""Reading a sweep back (for `mrmp export`, `mrmp report`, `mrmp ui` and the driver's final table).

A sweep is found by its sweep file, its folder (`<storage.root>/<name>`, holding `sweep.json`) or its name
under the default root `runs/sweeps`. `sweep.json` says where its tracking store, study and Tune experiment are.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrmp.tracking import FINISHED, RunRecord, Tracker, TrackerSpec
from mrmp.train import CurvePoint
from mrmp.validation import ConfigError, Issue

from .spec import Objective

STATE_FILE = "sweep.json"
DEFAULT_ROOT = "runs/sweeps"


@dataclass
class SweepState:
    """A launched sweep, as recorded in its `sweep.json`."""

    dir: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def parent_run_id(self) -> str:
        return self.data["parent_run_id"]

    @property
    def tracking(self) -> TrackerSpec:
        return TrackerSpec(**self.data["tracking"])

    @property
    def objectives(self) -> list[Objective]:
        return [Objective(**o) for o in self.data["objectives"]]

    def save(self) -> None:
        path = self.dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def read_state(sweep_dir: Path) -> SweepState | None:
    path = sweep_dir / STATE_FILE
    if not path.is_file():
        return None
    return SweepState(sweep_dir, json.loads(path.read_text(encoding="utf-8")))


def open_sweep(ref: str) -> SweepState:
    """The sweep named by `ref`: a sweep file, a sweep folder, or a name under runs/sweeps."""
    p = Path(ref)
    if p.is_file():
        from .spec import load_sweep

        sweep_dir = load_sweep(p).dir
    elif p.is_dir():
        sweep_dir = p.resolve()
    else:
        sweep_dir = Path(DEFAULT_ROOT, ref).resolve()
    state = read_state(sweep_dir)
    if state is None:
        raise ConfigError(
            [
                Issue(
                    ref,
                    "",
                    f"no launched sweep at {sweep_dir} (no {STATE_FILE}); run `mrmp sweep <file>` first",
                )
            ]
        )
    return state


def trials(tracker: Tracker, state: SweepState) -> list[RunRecord]:
    """Every child run of the sweep, oldest first."""
    return tracker.find_runs(state.parent_run_id)


def outcome_counts(runs: list[RunRecord]) -> dict[str, int]:
    """How many trials ended each way (`completed`, `stopped_early`, `failed`, ...)."""
    counts: dict[str, int] = {}
    for r in runs:
        key = r.tags.get("mrmp.outcome", r.status.lower())
        counts[key] = counts.get(key, 0) + 1
    return counts


def completed(runs: list[RunRecord]) -> list[RunRecord]:
    """Trials that trained to the end (not stopped early, not failed)."""
    return [r for r in runs if r.status == FINISHED and r.tags.get("mrmp.outcome") == "completed"]


def best_by(runs: list[RunRecord], key: str, mode: str) -> RunRecord | None:
    scored = [r for r in runs if key in r.metrics]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda r: r.metrics[key])


def best_per_method(
    runs: list[RunRecord], objective: Objective, stopped_too: bool = False
) -> dict[str, RunRecord]:
    """The best completed trial of each method by `objective` (methods in first-seen order).

    `stopped_too`: a method with no completed trial gets its best early-stopped one instead (tag
    `mrmp.outcome=stopped_early`: judged on fewer epochs, so the report marks it)."""
    out: dict[str, RunRecord] = {}
    for m in dict.fromkeys(r.tags.get("mrmp.method", "?") for r in runs):
        mine = [r for r in runs if r.tags.get("mrmp.method") == m and r.status == FINISHED]
        best = best_by(completed(mine), objective.key, objective.mode)
        if best is None and stopped_too:
            best = best_by(mine, objective.key, objective.mode)
        if best is not None:
            out[m] = best
    return out


def parse_curve(text: str) -> list[CurvePoint]:
    """A `curve.csv` (the core's format) back into points."""
    return [
        CurvePoint(
            rate=float(row["rate"]),
            val_accuracy=float(row["val_accuracy"]) if row["val_accuracy"] else None,
            test_accuracy=float(row["test_accuracy"]),
            observed_rate=float(row["observed_rate"]),
            effective_rate=float(row["effective_rate"]),
            disconnected=int(row["disconnected"]),
            seen=int(row["seen"]),
        )
        for row in csv.DictReader(io.StringIO(text))
    ]


def load_curve(tracker: Tracker, run_id: str) -> list[CurvePoint]:
    return parse_curve(tracker.read_artifact(run_id, "curve.csv").decode("utf-8"))
