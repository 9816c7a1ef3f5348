"""The trial lifecycle in the driver, without Ray: real trial results (from `run_trial` with a session double)
fed to `TrialRuns` over a real tracking store. Every path opens, records and closes a run exactly once, with
the outcome, metrics and artifacts a user reads.
"""

from __future__ import annotations

import io
import json

import pytest
import torch
import yaml

from mrmp.config import config_from_dict
from mrmp.sweep.lifecycle import Outcome, Tag, TrialRuns
from mrmp.sweep.trial import OUTCOME, run_trial
from mrmp.tracking import FAILED, FINISHED, KILLED, RUNNING, TrackerSpec
from tests.test_sweep_trial import METHODS, Session, context, spec_for


class Study:
    """The Optuna side, as a dict: tune id -> number, number -> run id."""

    def __init__(self, numbers: dict[str, int]):
        self.numbers, self.runs = numbers, {}

    def number_of(self, tune_id: str) -> int | None:
        return self.numbers.get(tune_id)

    def set_run(self, number: int, run_id: str) -> None:
        self.runs[number] = run_id


@pytest.fixture(params=["mlflow", "local"])
def tracker(request, tmp_path):
    if request.param == "mlflow":
        return TrackerSpec(
            "mlflow", f"sqlite:///{tmp_path / 'mlflow.db'}", "lc", (tmp_path / "art").as_uri()
        ).create()
    return TrackerSpec("local", str(tmp_path / "records"), "lc").create()


@pytest.fixture(scope="module")
def trial_results(tmp_path_factory):
    """The results of one completed MRMP trial (2 seeds, 12 epochs, reports every 4) and its final state."""
    spec = spec_for(
        tmp_path_factory.mktemp("spec"), METHODS, objectives=["acc@targets"], target_rates=[0.7], seeds=[0, 1]
    )
    session = Session()
    run_trial({"method.name": "mrmp"}, context(spec), session, host={"host": "h1", "gpu_ids": ""})
    return spec, session


def make_runs(tracker, spec, numbers=None):
    parent = tracker.create_run("sweep", None, {Tag.KIND: "sweep"})
    study = Study(numbers or {"t1": 7})
    return TrialRuns(tracker, spec, parent, {"mrmp.version": "x"}, study), study


def test_a_completed_trial_run_holds_scores_curves_config_and_network(tracker, trial_results):
    spec, session = trial_results
    runs, study = make_runs(tracker, spec)
    sample = {"method.name": "mrmp"}
    run_id = runs.open("t1", sample)
    assert study.runs == {7: run_id}
    for result in session.results:
        runs.record("t1", result, sample)
    outcome = runs.finish("t1", session.results[-1], sample, lambda: session.states[-1]["network"])
    assert outcome is Outcome.COMPLETED and runs.take_finished() == [run_id]
    run = tracker.get_run(run_id)
    assert run.name == "mrmp-007" and run.status == FINISHED
    assert (
        run.tags[Tag.OUTCOME] == "completed" and run.tags[Tag.OPTUNA] == "7" and run.tags["mrmp.host"] == "h1"
    )
    assert run.tags[Tag.NOTE].startswith("mrmp · ") and "val acc@targets" in run.tags[Tag.NOTE]
    assert json.loads(run.tags[Tag.UNITS]) == ["train.seed=0", "train.seed=1"]
    assert run.params["method.name"] == "mrmp" and json.loads(run.params["sweep.units"]) == [
        "train.seed=0",
        "train.seed=1",
    ]
    scores = session.results[-1]["mrmp"]["scores"]
    for key in ("val_acc_at_targets", "val_acc_at_targets_ci95_lo", "test_acc_at_targets", "val_auc"):
        assert run.metrics[key] == pytest.approx(scores[key])
    # every epoch of MRMP's 16 (round(1.2 x 12) = 14, its epochs_factor, and 2 calibrating), once
    assert [s for s, _ in tracker.metric_history(run_id, "train/loss")] == list(range(1, 17))
    assert [s for s, _ in tracker.metric_history(run_id, "val_acc_at_targets")] == [
        4,
        8,
        12,
        16,
    ]  # one per report
    curve = tracker.metric_history(run_id, "curve/val_acc")
    assert [s for s, _ in curve] == [500 + 10 * i for i in range(50)]  # per mille, rate 0 apart
    assert not tracker.metric_history(run_id, "curve/val_acc_unseen") or all(s > 0 for s, _ in curve)
    seen = {s for s, _ in tracker.metric_history(run_id, "curve/val_acc_seen")}
    unseen = {s for s, _ in tracker.metric_history(run_id, "curve/val_acc_unseen")}
    assert seen and unseen and not seen & unseen and seen | unseen == {s for s, _ in curve}
    text = tracker.read_artifact(run_id, "config.yaml").decode()
    assert text.startswith("# from sweep t, trial 7 (MLflow run ")
    assert config_from_dict(yaml.safe_load(text)).method.name == "mrmp"  # the comment does not get in the way
    head = tracker.read_artifact(run_id, "curve.csv").decode().splitlines()[0]
    assert head.startswith(
        "rate,seen,observed_rate,effective_rate,disconnected,rate_miss,val_mean,val_std,val_ci95"
    )
    assert run.metrics["rate_miss"] == pytest.approx(scores["rate_miss"]) and "rate_ok" in run.metrics
    runs.draw(runs.take_plots())  # the plot is a view, drawn after the record
    assert tracker.read_artifact(run_id, "curve.png")[:4] == b"\x89PNG"
    assert tracker.read_artifact(run_id, "units/curve_1.csv").startswith(b"rate,val_accuracy,test_accuracy")
    blob = torch.load(io.BytesIO(tracker.read_artifact(run_id, "model.pt")), weights_only=True)
    assert set(blob) == {"model", "method", "config"}


def test_a_retry_and_a_resume_continue_the_same_run_without_logging_an_epoch_twice(tracker, trial_results):
    spec, session = trial_results
    runs, _ = make_runs(tracker, spec)
    sample = {"method.name": "mrmp"}
    run_id = runs.open("t1", sample)
    runs.record("t1", session.results[0], sample)  # epochs 1..4
    runs.record("t1", session.results[1], sample)  # epochs 5..8, then the process dies
    runs.retrying("t1", "Traceback ...\nRuntimeError: worker lost")
    assert runs.open("t1", sample) == run_id  # the retry: same run, one more attempt
    run = tracker.get_run(run_id)
    assert (
        run.status == RUNNING
        and run.tags[Tag.ATTEMPTS] == "2"
        and run.tags[Tag.PREVIOUS_ERROR].endswith("worker lost")
    )
    runs.record("t1", session.results[1], sample)  # restored from the first checkpoint: 5..8 sent again
    runs.record("t1", session.results[2], sample)
    runs.finish("t1", session.results[2], sample)
    assert [s for s, _ in tracker.metric_history(run_id, "train/loss")] == list(range(1, 13))


def test_every_other_ending_closes_the_run_once_with_its_outcome(tracker, trial_results):
    spec, session = trial_results
    runs, _ = make_runs(tracker, spec, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    sample = {"method.name": "mrmp"}
    ids = {k: runs.open(k, sample) for k in "abcde"}
    runs.record("a", session.results[0], sample)
    assert runs.finish("a", session.results[0], sample) is Outcome.STOPPED_EARLY  # the scheduler stopped it
    diverged = {
        **session.results[0],
        OUTCOME: "diverged",
        "mrmp": {"error": "non-finite loss at epoch 3 (loss nan)"},
    }
    assert runs.finish("b", diverged, sample) is Outcome.DIVERGED
    assert runs.fail("c", sample, "Traceback\nValueError: bad", lost=False) is Outcome.FAILED
    assert runs.fail("d", sample, "Traceback\nActorDiedError: gone", lost=True) is Outcome.LOST
    assert runs.close_leftovers(interrupted=True) == 1  # e: the sweep was interrupted
    expect = {
        "a": (FINISHED, "stopped_early", None),
        "b": (FAILED, "diverged", "non-finite loss at epoch 3 (loss nan)"),
        "c": (FAILED, "failed", "ValueError: bad"),
        "d": (FAILED, "lost", "ActorDiedError: gone"),
        "e": (KILLED, "interrupted", "the sweep was interrupted: --resume continues this trial"),
    }
    for k, (status, outcome, error) in expect.items():
        run = tracker.get_run(ids[k])
        assert (run.status, run.tags[Tag.OUTCOME], run.tags.get(Tag.ERROR)) == (status, outcome, error), k
    assert tracker.read_artifact(ids["c"], "error.txt").decode().endswith("ValueError: bad")
    assert sorted(runs.take_finished()) == sorted(ids.values())  # each closed exactly once
    assert runs.close_leftovers(interrupted=False) == 0


def test_a_lost_trial_asked_again_adopts_its_run(tracker, trial_results):
    spec, session = trial_results
    runs, study = make_runs(tracker, spec, {"old": 4})
    sample = {"method.name": "mrmp"}
    run_id = runs.open("old", sample)
    runs.record("old", session.results[0], sample)
    lost = tracker.get_run(run_id)
    runs.mark_lost(lost, "the driver stopped before Tune saved this trial")
    study.numbers["new"] = 4  # the same Optuna trial, asked again under a new Tune id
    assert runs.open("new", sample) == run_id
    run = tracker.get_run(run_id)
    assert run.status == RUNNING and run.tags[Tag.TUNE_ID] == "new" and run.tags[Tag.ATTEMPTS] == "2"
    assert Tag.ERROR not in run.tags and "before Tune saved" in run.tags[Tag.PREVIOUS_ERROR]


def test_tunes_waits_never_queue_behind_a_view():
    """Views (a run's curve plot, the sweep's report: up to seconds on a large sweep) have their own thread:
    `flush` (what Tune waits on at a checkpoint or a trial's end) returns once the records queued so far are
    stored, even while a view is drawing; a view runs after the record that queued it is stored; the
    experiment's end waits for both."""
    import threading

    from mrmp.sweep.hooks import Lifecycle

    done: list[str] = []
    drawing, view_may_end = threading.Event(), threading.Event()
    life = Lifecycle(lambda: object())

    def view(_runs):
        drawing.set()
        view_may_end.wait(30)
        done.append("view")

    def record_with_view(_runs):
        done.append("record 1")
        life._view(view)

    life._submit(record_with_view)
    assert drawing.wait(10)  # the view is drawing now
    life._submit(lambda _runs: done.append("record 2"))
    flushing = threading.Thread(target=life.flush)
    flushing.start()
    flushing.join(10)
    assert not flushing.is_alive() and done == ["record 1", "record 2"]
    view_may_end.set()
    life.on_experiment_end([])
    assert done == ["record 1", "record 2", "view"]


def test_a_trials_wall_time_counts_from_when_tune_started_it(tracker, trial_results):
    """`time/trial_s` counts from the event (Tune started the trial), not from when the writer thread, which may
    be busy drawing a plot, got to open the run."""
    import time

    spec, session = trial_results
    runs, _ = make_runs(tracker, spec)
    sample = {"method.name": "mrmp"}
    run_id = runs.open("t1", sample, started=time.time() - 100.0)
    runs.finish("t1", session.results[-1], sample)
    assert 100.0 <= tracker.get_run(run_id).metrics["time/trial_s"] < 160.0
