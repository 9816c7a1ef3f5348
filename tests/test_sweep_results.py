"""Selection holds trials to the rates they are scored at: one that missed a scored rate by more than
`sweep.rate_tolerance` ranks after every trial that held its rates, and the frontier skips points that missed."""

from __future__ import annotations

from mrmp.sweep.lifecycle import Outcome
from mrmp.sweep.objectives import Objective
from mrmp.sweep.results import TrialRecord, best_per_method, frontier, ranked
from mrmp.sweep.views import rates_csv
from mrmp.tracking import RunRecord, TrackerSpec

OBJ = Objective("acc@targets")


def record(
    name: str, method: str, value: float, rate_ok: float | None, outcome=Outcome.COMPLETED
) -> TrialRecord:
    metrics = {OBJ.key: value} | (
        {} if rate_ok is None else {"rate_ok": rate_ok, "rate_miss": 0.02 * (1 - rate_ok)}
    )
    return TrialRecord(RunRecord(name, name, "FINISHED", metrics=metrics), outcome, method, None)


def test_a_trial_that_missed_its_rate_ranks_after_every_trial_that_held_it():
    missed = record("mrmp-0", "mrmp", 0.95, 0.0)
    held = record("mrmp-1", "mrmp", 0.80, 1.0)
    older = record("mrmp-2", "mrmp", 0.85, None)  # recorded before the check: counts as held
    stopped = record("mrmp-3", "mrmp", 0.99, 1.0, Outcome.STOPPED_EARLY)
    assert [r.name for r in ranked([missed, held, older, stopped], OBJ)] == ["mrmp-2", "mrmp-1", "mrmp-0"]
    assert [r.name for r in ranked([missed, held, stopped], OBJ, stopped_too=True)] == [
        "mrmp-1",
        "mrmp-0",
        "mrmp-3",
    ]
    assert best_per_method([missed, held], OBJ)["mrmp"].name == "mrmp-1"
    assert (
        best_per_method([missed], OBJ)["mrmp"].name == "mrmp-0"
    )  # the only one: shown, flagged by its record


def _row(rate: float, val: float, observed: float) -> dict:
    est = {"mean": val, "std": None, "lo": None, "hi": None, "n": 1}
    return {
        "rate": rate,
        "seen": 1,
        "observed_rate": observed,
        "effective_rate": observed,
        "disconnected": 0,
        "rate_miss": abs(observed - rate),
        "val": est,
        "test": est,
    }


def test_the_frontier_skips_points_pruned_off_their_rate(tmp_path):
    tracker = TrackerSpec("local", str(tmp_path / "records"), "fr").create()
    records = []
    for name, rows in (
        ("a", [_row(0.5, 0.90, 0.47), _row(0.9, 0.70, 0.899)]),  # 3 points short at 0.5
        ("b", [_row(0.5, 0.85, 0.502), _row(0.9, 0.75, 0.93)]),  # 3 points over at 0.9
    ):
        run_id = tracker.create_run(name, None, {})
        tracker.log_artifact(run_id, "curve.csv", rates_csv(rows))
        records.append(TrialRecord(RunRecord(run_id, name, "FINISHED"), Outcome.COMPLETED, "mrmp", None))
    every = frontier(tracker, records)
    assert [(r["rate"], r["trial"]) for r in every] == [(0.5, "a"), (0.9, "b")]
    held = frontier(tracker, records, tolerance=0.01)
    assert [(r["rate"], r["trial"], r["val"]) for r in held] == [(0.5, "b", 0.85), (0.9, "a", 0.70)]
