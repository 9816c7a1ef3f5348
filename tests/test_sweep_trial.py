"""The trial wrapper without Ray: lockstep repeats, exact pause/resume, retries, early stops, failures.

A fake session stands in for Ray Tune (checkpoints round-trip through torch.save / weights_only load, as in Tune).
"""

from __future__ import annotations

import io
import json

import pytest
import torch
import yaml

from mrmp.config import config_from_dict
from mrmp.sweep.objectives import curve_metrics
from mrmp.sweep.spec import load_sweep
from mrmp.sweep.trial import NonFiniteLoss, NotRetried, TrialContext, finish_stopped, run_trial
from mrmp.tracking.local import LocalTracker
from mrmp.train import run
from tests.toy import toy_data

SWEEP = """\
sweep:
  name: trialtest
  report_every: 4
  objectives: [{metric: auc, mode: max}, {metric: acc@target, mode: max}]
  SEEDS
base:
  train: {epochs: 6, lr: 0.02}
  eval: {rates: [0.0, 0.5, 0.7, 0.9]}
space:
  method.name: {type: categorical, choices: [mp]}
  method.rate: {type: categorical, choices: [0.7]}
  method.finetune_epochs: {type: categorical, choices: [4]}
"""
SAMPLE = {"method.name": "mp", "method.rate": 0.7, "method.finetune_epochs": 4}  # 10 epochs over 2 phases


class FakeSession:
    """Reports go nowhere; checkpoints are kept like Tune keeps them; it can stop or crash the trial."""

    def __init__(self, trial_id="00001", saved=None, stop_at=None, crash_at=None):
        self.trial_id, self.trial_name = trial_id, f"trial_{trial_id}"
        self.saved, self.stop_at, self.crash_at = saved, stop_at, crash_at
        self.reports: list[dict] = []

    def load(self):
        return self.saved

    def report(self, metrics, state):
        if state is not None:  # None: a report without a checkpoint
            buf = io.BytesIO()
            torch.save(state, buf)
            buf.seek(0)
            self.saved = torch.load(buf, weights_only=True)
        self.reports.append(metrics)
        if self.stop_at == len(self.reports):
            raise SystemExit(0)  # what Tune raises inside report when the scheduler stops a trial
        if self.crash_at == len(self.reports):
            raise RuntimeError("worker lost")


@pytest.fixture
def setup(tmp_path):
    def make(seeds: str = ""):
        path = tmp_path / "s.yaml"
        path.write_text(SWEEP.replace("SEEDS", seeds))
        spec = load_sweep(path)
        data = toy_data()
        tracker = LocalTracker(tmp_path / "track")
        parent = tracker.start_parent("trialtest")
        ctx = TrialContext(spec, parent, tracker, {k: data for k in spec.data_configs()})
        return spec, ctx, tracker, parent, data

    return make


def straight(spec, data, repeat=None):
    """The same config trained in one go by the core (no pauses)."""
    cfg = config_from_dict(spec.trial_config(spec.decode(SAMPLE), repeat))
    return run(cfg, data)


def test_completed_trial_equals_one_straight_run(setup):
    spec, ctx, tracker, parent, data = setup()
    session = FakeSession()
    result = run_trial(SAMPLE, ctx, session)
    ref = straight(spec, data)
    assert [m["epoch"] for m in session.reports] == [4, 8, 10]  # boundaries cross the fine-tuning phase
    assert result["auc"] == curve_metrics(ref.curve)["auc"]  # pausing at boundaries changes nothing
    assert result["acc_at_target"] == curve_metrics(ref.curve, 0.7)["acc_at_target"]

    (child,) = tracker.find_runs(parent)
    assert child.status == "FINISHED" and child.tags["mrmp.outcome"] == "completed"
    assert child.tags["mrmp.method"] == "mp" and child.tags["mrmp.config_hash"] == ref.config.hash()
    assert [s for s, _ in tracker.metric_history(child.run_id, "loss")] == list(range(1, 11))
    acc = tracker.metric_history(child.run_id, "acc")
    seen = tracker.metric_history(child.run_id, "acc_seen")
    unseen = tracker.metric_history(child.run_id, "acc_unseen")
    assert sorted(acc) == sorted(seen + unseen) and [s for s, _ in acc] == [700]  # fine-tuned: scored there
    assert [s for s, _ in seen] == [700]  # MP fine-tuned at 0.7: the rate it saw
    assert [a for _, a in acc] == [p.test_accuracy for p in ref.curve]
    exported = config_from_dict(yaml.safe_load(tracker.read_artifact(child.run_id, "config.yaml")))
    assert exported.hash() == ref.config.hash()
    assert tracker.read_artifact(child.run_id, "curve.png")[:4] == b"\x89PNG"


def test_crash_then_retry_continues_the_same_run_exactly(setup):
    spec, ctx, tracker, parent, data = setup()
    first = FakeSession(crash_at=2)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_trial(SAMPLE, ctx, first)
    (child,) = tracker.find_runs(parent)
    assert child.status == "FAILED" and "worker lost" in child.tags["mrmp.error"]
    assert b"RuntimeError: worker lost" in tracker.read_artifact(child.run_id, "error.txt")

    retry = FakeSession(saved=first.saved)  # Tune restores the trial from its last checkpoint
    result = run_trial(SAMPLE, ctx, retry)
    (again,) = tracker.find_runs(parent)  # the same run, reopened
    assert again.run_id == child.run_id and again.status == "FINISHED"
    assert [m["epoch"] for m in retry.reports] == [10]
    assert result["auc"] == curve_metrics(straight(spec, data).curve)["auc"]
    assert [s for s, _ in tracker.metric_history(child.run_id, "loss")] == list(range(1, 11))  # no duplicate


def test_stopped_trial_is_closed_from_its_last_checkpoint(setup):
    spec, ctx, tracker, parent, data = setup()
    session = FakeSession(stop_at=1)
    with pytest.raises(SystemExit):
        run_trial(SAMPLE, ctx, session)
    (child,) = tracker.find_runs(parent)
    assert child.status == "RUNNING"  # Tune kills the process right after: the driver closes the run
    finish_stopped(tracker, spec, child.run_id, SAMPLE, session.saved)
    child = tracker.get_run(child.run_id)
    assert child.status == "FINISHED" and child.tags["mrmp.outcome"] == "stopped_early"
    assert child.tags["mrmp.epochs"] == "4" and child.metrics["auc"] == session.reports[0]["auc"]
    assert len(tracker.metric_history(child.run_id, "acc")) == 4
    assert [s for s, _ in tracker.metric_history(child.run_id, "auc")] == [4]  # scored once, at the stop


def test_failure_ends_the_run_failed_with_the_error(setup, monkeypatch):
    spec, ctx, tracker, parent, data = setup()

    def boom(*a, **k):
        raise ValueError("diverged: loss is nan")

    monkeypatch.setattr("mrmp.train.run", boom)
    with pytest.raises(ValueError):
        run_trial(SAMPLE, ctx, FakeSession())
    (child,) = tracker.find_runs(parent)
    assert child.status == "FAILED" and child.tags["mrmp.outcome"] == "failed"
    assert child.tags["mrmp.error"] == "ValueError: diverged: loss is nan"


def test_a_trial_failing_before_training_still_has_a_failed_run(setup):
    spec, ctx, tracker, parent, data = setup()
    ctx.data.clear()  # e.g. driver and worker disagree on the data config: no prepared dataset for it
    with pytest.raises(KeyError):
        run_trial(SAMPLE, ctx, FakeSession())
    (child,) = tracker.find_runs(parent)
    assert child.status == "FAILED" and child.tags["mrmp.method"] == "mp"
    assert b"KeyError" in tracker.read_artifact(child.run_id, "error.txt")


def test_seed_repeats_train_in_lockstep_and_report_the_mean(setup):
    spec, ctx, tracker, parent, data = setup("seeds: [0, 1]")
    result = run_trial(SAMPLE, ctx, FakeSession())
    per_seed = [curve_metrics(straight(spec, data, {"train.seed": s}).curve)["auc"] for s in (0, 1)]
    assert result["auc"] == pytest.approx(sum(per_seed) / 2, abs=1e-12)  # AUC is linear in the curve
    (child,) = tracker.find_runs(parent)
    assert child.tags["mrmp.seeds"] == "[0, 1]" and child.metrics["auc_std"] == pytest.approx(
        abs(per_seed[0] - per_seed[1]) / 2
    )
    summary = json.loads(tracker.read_artifact(child.run_id, "summary.json"))
    assert [r["overrides"] for r in summary["repeats"]] == [{"train.seed": 0}, {"train.seed": 1}]
    assert tracker.read_artifact(child.run_id, "repeats/curve_1.csv").startswith(
        b"rate,val_accuracy,test_accuracy"
    )


# --- faults (docs/reliability.md) ------------------------------------------------------------------------------
def test_a_non_finite_loss_fails_the_trial_naming_the_epoch(setup, monkeypatch):
    spec, ctx, tracker, parent, data = setup()
    monkeypatch.setitem(spec.base["train"], "lr", 1.0e10)  # Adam with this rate diverges at epoch 2
    first = FakeSession()
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at epoch 2 \(loss nan"):
        run_trial(SAMPLE, ctx, first)
    (child,) = tracker.find_runs(parent)
    assert (
        child.status == "FAILED" and child.tags["mrmp.retry"] == "no" and child.tags["mrmp.attempts"] == "1"
    )
    assert child.tags["mrmp.error"].startswith("NonFiniteLoss: non-finite loss at epoch 2")
    assert b"NonFiniteLoss" in tracker.read_artifact(child.run_id, "error.txt")

    def no_training(*a, **k):
        raise AssertionError("a retry of a diverged trial trained")

    monkeypatch.setattr("mrmp.train.run", no_training)
    with pytest.raises(
        NotRetried, match=r"non-finite loss at epoch 2 .*not retried: sweep.retry_on is \['error'\]"
    ):
        run_trial(SAMPLE, ctx, FakeSession(saved=first.saved))
    again = tracker.get_run(child.run_id)
    assert (again.status, again.tags["mrmp.attempts"]) == ("FAILED", "1")  # the run is left as it was


def test_retry_on_nonfinite_retries_a_diverged_trial(setup, monkeypatch):
    spec, ctx, tracker, parent, data = setup()
    monkeypatch.setitem(spec.base["train"], "lr", 1.0e10)
    monkeypatch.setattr(spec, "retry_on", ["error", "nonfinite"])
    for attempt in (1, 2):
        with pytest.raises(NonFiniteLoss):
            run_trial(SAMPLE, ctx, FakeSession())
        (child,) = tracker.find_runs(parent)
        assert child.tags["mrmp.retry"] == "yes" and child.tags["mrmp.attempts"] == str(attempt)
    monkeypatch.setitem(
        spec.base["train"], "lr", 0.02
    )  # (not a real retry: the config changed) it now trains
    run_trial(SAMPLE, ctx, FakeSession())
    child = tracker.get_run(child.run_id)
    assert child.status == "FINISHED" and child.tags["mrmp.attempts"] == "3"
    assert "mrmp.retry" not in child.tags and "mrmp.error" not in child.tags  # nothing stale
    assert child.tags["mrmp.previous_error"].startswith("NonFiniteLoss")


def test_an_error_not_in_retry_on_is_not_retried(setup, monkeypatch):
    spec, ctx, tracker, parent, data = setup()
    monkeypatch.setattr(spec, "retry_on", [])

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("mrmp.train.run", boom)
    with pytest.raises(OSError):
        run_trial(SAMPLE, ctx, FakeSession())
    with pytest.raises(NotRetried, match="OSError: disk full"):
        run_trial(SAMPLE, ctx, FakeSession())


def test_a_trial_whose_run_already_finished_reports_it_and_trains_nothing(setup, monkeypatch):
    """Tune restores a trial as running when it finished after Tune's last save (then the driver was killed)."""
    spec, ctx, tracker, parent, data = setup()
    result = run_trial(SAMPLE, ctx, FakeSession())
    (child,) = tracker.find_runs(parent)

    def no_training(*a, **k):
        raise AssertionError("a finished trial trained again")

    monkeypatch.setattr("mrmp.train.run", no_training)
    session = FakeSession(saved={"repeats": []})
    assert run_trial(SAMPLE, ctx, session) == result
    assert session.reports == [result] and session.saved == {"repeats": []}  # reported, no new checkpoint
    again = tracker.get_run(child.run_id)
    assert again.status == "FINISHED" and again.tags["mrmp.attempts"] == "1"


def test_a_lost_trial_asked_again_continues_its_run(setup):
    """The driver was killed before Tune saved trial 00001: `--resume` marks its run lost and Optuna asks its
    trial (number 3) again under a new Tune trial, which takes the run over: one run, every epoch once."""
    spec, ctx, tracker, parent, data = setup()
    first = FakeSession(trial_id="00001", crash_at=1)
    with pytest.raises(RuntimeError):
        run_trial({**SAMPLE, "_optuna_trial": 3}, ctx, first)
    (run,) = tracker.find_runs(parent)
    tracker.set_tags(run.run_id, {"mrmp.outcome": "lost", "mrmp.error": "the driver stopped"})
    tracker.end(run.run_id, "KILLED")
    other = run_trial({**SAMPLE, "_optuna_trial": 4}, ctx, FakeSession(trial_id="00002"))  # not adopted
    result = run_trial({**SAMPLE, "_optuna_trial": 3}, ctx, FakeSession(trial_id="00009"))
    assert result == other  # same sample, same deterministic training
    runs = {r.tags["mrmp.key"]: r for r in tracker.find_runs(parent)}
    assert set(runs) == {"00002", "00009"}
    adopted = runs["00009"]
    assert adopted.run_id == run.run_id and adopted.tags["mrmp.former_key"] == "00001"
    assert adopted.status == "FINISHED" and adopted.tags["mrmp.outcome"] == "completed"
    assert adopted.tags["mrmp.attempts"] == "2" and "mrmp.error" not in adopted.tags
    assert adopted.tags["mrmp.previous_error"] == "the driver stopped"
    assert [s for s, _ in tracker.metric_history(run.run_id, "loss")] == list(range(1, 11))
