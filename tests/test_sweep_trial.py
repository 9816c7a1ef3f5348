"""One sweep trial in its worker, without Ray: a session double stands in for Tune (checkpoints and reports).

A trial keeps its trainers across reports; what it reports is what a straight training computes; a checkpoint
restores it exactly; a diverged loss is an outcome, not an exception; units (repeats x targets) are scored as
means with intervals.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import yaml

from mrmp.config import config_from_dict
from mrmp.sweep.spec import data_key, load_sweep
from mrmp.sweep.trial import (
    EPOCH,
    OUTCOME,
    PAYLOAD,
    NonFiniteLoss,
    Trial,
    TrialContext,
    curve_points,
    run_trial,
)
from mrmp.testing.contract import TOY_MODEL
from mrmp.train import Trainer
from tests.toy import toy_data


class Session:
    """Records reports and checkpoints as Tune would keep them."""

    def __init__(self, start: dict[str, Any] | None = None):
        self.start = start
        self.results: list[dict[str, Any]] = []
        self.states: list[dict[str, Any] | None] = []

    def checkpoint(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.start)

    def report(self, result: dict[str, Any], state: dict[str, Any] | None) -> None:
        self.results.append(result)
        self.states.append(copy.deepcopy(state))


def spec_for(tmp_path, space: dict, **sweep: Any):
    doc = {
        "sweep": {"name": "t", "report_every": 4, "checkpoint_every": 0, **sweep},
        "base": {"model": dict(TOY_MODEL), "train": {"epochs": 12, "device": "cpu", "batch_size": 32}},
        "space": space,
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_sweep(path)


def context(spec) -> TrialContext:
    assignment = spec.resolve({})
    keys = {data_key(cfg.data) for _, cfg in spec.configs(assignment)}
    return TrialContext(spec, {k: toy_data() for k in keys})


METHODS = {"method.name": {"type": "categorical", "choices": ["srmp", "mrmp", "mp"]}}


def test_a_completed_trial_reports_what_a_straight_training_computes(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7])
    ctx = context(spec)
    session = Session()
    run_trial({"method.name": "mrmp"}, ctx, session)
    # MRMP trains round(1.2 x 12) = 14 epochs (its epochs_factor), then calibrates round(0.15 x 12) = 2: the trial
    # follows the method's own length
    assert [r[EPOCH] for r in session.results] == [4, 8, 12, 16]
    assert [r[OUTCOME] for r in session.results] == ["running", "running", "running", "completed"]
    rows = [row["epoch"] for r in session.results for row in r[PAYLOAD]["rows"]]
    assert rows == list(range(1, 17))  # every epoch reported once
    ((_, cfg),) = spec.configs({"method.name": "mrmp"})
    ref = Trainer(cfg, toy_data())
    ref.fit()
    final = session.results[-1][PAYLOAD]
    (unit,) = final["units"]
    assert curve_points(unit["curve"]) == ref.evaluate()  # bit for bit: nothing rebuilt between reports
    assert session.results[-1]["val_acc_at_targets"] == pytest.approx(ref.validation_accuracy([0.7])[0.7])
    network = session.states[-1]["network"]
    for key, value in ref.model.state_dict().items():
        assert torch.equal(network["model"][key], value)
    assert config_from_dict(network["config"]) == cfg


def test_intermediate_objectives_read_validation_at_the_rates_they_need(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.5, 0.9], seeds=[0, 1])
    trial = Trial(spec, {"method.name": "srmp"}, context(spec))
    assert [(u.repeat["train.seed"], u.target) for u, _ in trial.units] == [
        (0, 0.5),
        (0, 0.9),
        (1, 0.5),
        (1, 0.9),
    ]
    trial.advance()
    values = trial.objective_values()
    val = [t.evaluate()[0].val_accuracy for t in trial.trainers]  # each single-rate network at its own rate
    assert values["val_acc_at_targets"] == pytest.approx(sum(val) / 4)


def test_a_checkpoint_restores_the_trial_exactly(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7], seeds=[0, 1])
    ctx = context(spec)
    straight = Session()
    run_trial({"method.name": "srmp"}, ctx, straight)
    retried = Session(start=straight.states[0])  # the process died after the first report
    run_trial({"method.name": "srmp"}, ctx, retried)
    assert [r[EPOCH] for r in retried.results] == [8, 12]
    assert [row["epoch"] for r in retried.results for row in r[PAYLOAD]["rows"]] == list(range(5, 13))
    assert retried.results[-1][PAYLOAD]["scores"] == straight.results[-1][PAYLOAD]["scores"]

    def curves(session: Session) -> list[Any]:  # the units without their wall times
        return [{k: v for k, v in u.items() if k != "train_s"} for u in session.results[-1][PAYLOAD]["units"]]

    assert curves(retried) == curves(straight)


def test_checkpoints_go_out_only_when_due_and_always_at_the_end(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7], checkpoint_every=3600)
    session = Session()
    run_trial({"method.name": "mp"}, context(spec), session)
    assert [s is not None for s in session.states] == [False, False, True]
    assert "network" in session.states[-1]


def test_repeats_train_in_lockstep_and_score_a_mean_with_an_interval(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7], seeds=[0, 1, 2])
    session = Session()
    run_trial({"method.name": "mp"}, context(spec), session)
    final = session.results[-1][PAYLOAD]
    per_seed = [
        [p.val_accuracy for p in curve_points(u["curve"]) if p.rate == 0.7][0] for u in final["units"]
    ]
    scores = final["scores"]
    mean = sum(per_seed) / 3
    assert scores["val_acc_at_targets"] == pytest.approx(mean)
    assert scores["val_acc_at_targets_ci95_lo"] <= mean <= scores["val_acc_at_targets_ci95_hi"]
    assert "test_acc_at_targets" in scores and "val_auc" in scores  # MP is read at any rate: grid scores too
    rows = [row for r in session.results for row in r[PAYLOAD]["rows"]]
    assert [r["epoch"] for r in rows] == list(range(1, 13))  # means over the three seeds, one row per epoch


def test_a_diverged_loss_ends_the_trial_as_an_outcome_naming_the_epoch(tmp_path):
    space = {"train.lr": {"type": "categorical", "choices": [1.0e10]}}
    spec = spec_for(tmp_path, space, objectives=["dense"], seeds=[0, 1])
    session = Session()
    run_trial({"train.lr": 1.0e10}, context(spec), session)  # returns: no exception drives it
    last = session.results[-1]
    assert last[OUTCOME] == "diverged" and session.states[-1] is None
    assert last[PAYLOAD]["error"].startswith("non-finite loss at epoch ")
    assert "[train.seed=" in last[PAYLOAD]["error"]  # which unit
    retrying = spec_for(tmp_path, space, objectives=["dense"], retry_on=["nonfinite"])
    with pytest.raises(NonFiniteLoss, match="non-finite loss at epoch"):
        run_trial({"train.lr": 1.0e10}, context(retrying), Session())


def test_a_trial_with_one_report_keeps_its_unit_labels_apart_from_its_units(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7], report_every=100)
    session = Session()
    run_trial({"method.name": "mp"}, context(spec), session, host={"host": "h"})
    (result,) = session.results  # its first report is its last
    payload = result[PAYLOAD]
    assert payload["unit_labels"] == ["single"] and payload["host"] == {"host": "h"}
    assert [u["label"] for u in payload["units"]] == ["single"] and "curve" in payload["units"][0]


def test_a_completed_trial_records_how_far_it_missed_the_rates_it_is_scored_at(tmp_path):
    spec = spec_for(tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7], seeds=[0, 1])
    session = Session()
    run_trial({"method.name": "mrmp"}, context(spec), session)
    final = session.results[-1]
    units = [curve_points(u["curve"]) for u in final[PAYLOAD]["units"]]
    at_target = [abs(p.observed_rate - 0.7) for c in units for p in c if p.rate == 0.7]
    elsewhere = [abs(p.observed_rate - p.rate) for c in units for p in c if p.rate not in (0.0, 0.7)]
    assert len(at_target) == 2 and max(elsewhere) > max(at_target)  # only the scored rate counts
    scores = final[PAYLOAD]["scores"]
    assert final["rate_miss"] == scores["rate_miss"] == pytest.approx(max(at_target))
    assert scores["rate_ok"] == float(max(at_target) <= 0.01)
    rows = {r["rate"]: r for r in final[PAYLOAD]["rates"]}
    assert rows[0.7]["rate_miss"] == pytest.approx(max(at_target))  # per rate: the worst repeat

    strict = spec_for(
        tmp_path, METHODS, objectives=["acc@targets"], target_rates=[0.7], seeds=[0, 1],
        rate_tolerance=max(at_target) / 2,
    )  # fmt: skip
    again = Session()
    run_trial({"method.name": "mrmp"}, context(strict), again)
    assert again.results[-1][PAYLOAD]["scores"]["rate_miss"] == scores["rate_miss"]
    assert again.results[-1][PAYLOAD]["scores"]["rate_ok"] == 0.0
