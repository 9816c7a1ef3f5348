"""Optuna sees what happened (no Ray cluster needed: the searcher is called as Tune calls it).

Early-stopped trials are PRUNED, diverged and failed ones FAIL, completed ones COMPLETE with their validation
value; objectives are named; intermediate values sit at their epoch; each Optuna trial knows its Tune trial and
its tracking run; a killed driver's unsaved trials are asked again with their parameters; a grid is enqueued once.
"""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("ray.tune")

from optuna.trial import TrialState  # noqa: E402

from mrmp.sweep.searcher import (  # noqa: E402
    RUN_ATTR,
    TUNE_ID_ATTR,
    OptunaSearcher,
    StudyLink,
    continued_seed,
)
from mrmp.sweep.spec import load_sweep  # noqa: E402


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "sweep: {name: st, objectives: [acc@targets], target_rates: [0.9]}\n"
        "space:\n"
        "  method.name: {type: categorical, choices: [srmp, mrmp]}\n"
        "  method.seen_rates: {type: categorical, choices: [[0.5, 0.9], [0.9]], when: {method.name: [mrmp]}}\n"
        "  train.lr: {type: float, low: 0.001, high: 0.1, log: true}\n"
    )
    return load_sweep(path)


def searcher(spec, tmp_path, metrics=("val_acc_at_targets",), modes=("max",), points=None) -> OptunaSearcher:
    return OptunaSearcher(
        f"sqlite:///{tmp_path / 'optuna.db'}",
        "st",
        "tpe",
        0,
        spec.define_by_run,
        list(metrics),
        list(modes),
        points,
    )


def result(outcome: str, epoch: int, value: float) -> dict:
    return {"epoch": epoch, "val_acc_at_targets": value, "mrmp_outcome": outcome}


def test_optuna_is_told_what_happened(spec, tmp_path):
    s = searcher(spec, tmp_path)
    for tid in ("a", "b", "c", "d"):
        config = s.suggest(tid)
        assert "method.name" in config and spec.decode(config)  # labels the trial decodes
    for tid in "abcd":
        s.on_trial_result(tid, result("running", 25, 0.4))
        s.on_trial_result(tid, result("running", 25, 0.4))  # delivered twice (a restore): one value
        s.on_trial_result(tid, result("running", 50, 0.5))
    s.on_trial_result("a", result("completed", 60, 0.6))
    s.on_trial_complete("a", result("completed", 60, 0.61))
    s.on_trial_complete("b", result("running", 75, 0.55))  # the scheduler stopped it on this result
    s.on_trial_complete("c", {**result("diverged", 12, 0.0)})
    s.on_trial_complete("d", None, error=True)
    study = optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.FAIL,
    ]
    assert trials[0].value == pytest.approx(0.61)
    assert trials[0].intermediate_values == {25: 0.4, 50: 0.5, 60: 0.6}  # at epoch steps
    # Tune gives the result it stopped a trial on to on_trial_complete alone: it is the pruned trial's last step
    assert trials[1].intermediate_values == {25: 0.4, 50: 0.5, 75: 0.55}
    assert trials[1].value == pytest.approx(0.55)
    assert study.metric_names == ["val_acc_at_targets"]
    assert [t.user_attrs[TUNE_ID_ATTR] for t in trials] == list("abcd")
    s.on_trial_complete("a", result("completed", 60, 0.7))  # told again (a restored driver): ignored
    assert study.get_trials()[0].value == pytest.approx(0.61)


def test_a_restored_searcher_finishes_its_trials(spec, tmp_path):
    s = searcher(spec, tmp_path)
    s.suggest("a")
    s.on_trial_result("a", result("running", 10, 0.3))
    s.save(str(tmp_path / "searcher.pkl"))
    import pickle

    again = pickle.loads(pickle.dumps(s))  # Tune pickles the searcher with the experiment
    again.restore(str(tmp_path / "searcher.pkl"))
    again.on_trial_result("a", result("running", 20, 0.4))
    again.on_trial_complete("a", result("completed", 30, 0.5))
    (t,) = optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path / 'optuna.db'}").get_trials()
    assert t.state == TrialState.COMPLETE and t.intermediate_values == {10: 0.3, 20: 0.4}


def test_several_objectives_are_told_together(spec, tmp_path):
    s = searcher(spec, tmp_path, ("val_mean_unseen", "val_worst_unseen"), ("max", "max"))
    s.suggest("a")
    s.on_trial_result(
        "a", {"epoch": 5, "val_mean_unseen": 0.5, "val_worst_unseen": 0.2, "mrmp_outcome": "running"}
    )
    s.on_trial_complete(
        "a", {"epoch": 9, "val_mean_unseen": 0.6, "val_worst_unseen": 0.3, "mrmp_outcome": "completed"}
    )
    study = optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    (t,) = study.get_trials()
    assert t.values == [0.6, 0.3] and study.metric_names == ["val_mean_unseen", "val_worst_unseen"]


def test_the_link_knows_runs_and_asks_lost_trials_again(spec, tmp_path):
    s = searcher(spec, tmp_path)
    first = s.suggest("a")
    s.suggest("b")
    link = StudyLink(f"sqlite:///{tmp_path / 'optuna.db'}", "st")
    assert link.number_of("b") == 1 and link.number_of("zzz") is None
    link.set_run(0, "run-0")
    assert link.requeue(known_tune_ids={"b"}) == [0]  # "a" started after Tune's last save
    fresh = searcher(spec, tmp_path)  # the resumed driver's
    assert fresh.suggest("c") == first  # the lost trial, asked again with its parameters
    trials = optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path / 'optuna.db'}").get_trials()
    assert (
        len(trials) == 2
        and trials[0].user_attrs[TUNE_ID_ATTR] == "c"
        and trials[0].user_attrs[RUN_ATTR] == "run-0"
    )


def test_a_reopened_study_does_not_replay_its_first_draws(spec, tmp_path):
    """A resumed or grown sweep reopens the study: its sampler must not start the seed's sequence over (it gave
    a resumed sweep's new trial the first trial's parameters), and a trial the killed driver had asked but given
    no parameters yet gets fresh ones."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = searcher(spec, tmp_path)
    drawn = [first.suggest(t) for t in ("a", "b")]
    optuna.load_study(study_name="st", storage=url).ask()  # killed between the ask and its parameters
    link = StudyLink(url, "st")
    assert link.requeue(known_tune_ids={"a", "b"}) == [2]
    resumed = searcher(spec, tmp_path)
    later = [resumed.suggest(t) for t in ("c", "d")]
    assert all(c["train.lr"] not in {d["train.lr"] for d in drawn} for c in later), (drawn, later)
    trials = optuna.load_study(study_name="st", storage=url).get_trials()
    assert len(trials) == 4 and trials[2].user_attrs[TUNE_ID_ATTR] == "c" and trials[2].params
    assert continued_seed(0, 3) == continued_seed(0, 3) != continued_seed(0, 4)  # reproducible per count


def test_a_grid_is_enqueued_once(spec, tmp_path):
    points = [{"method.name": "srmp", "train.lr": 0.01}, {"method.name": "srmp", "train.lr": 0.02}]
    s = searcher(spec, tmp_path, points=points)
    assert s.suggest("a") == points[0]
    again = searcher(spec, tmp_path, points=points)  # the same study, opened again (a resumed driver)
    assert again.suggest("b") == points[1]
    assert (
        len(optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path / 'optuna.db'}").get_trials())
        == 2
    )


def test_a_trial_that_missed_its_rate_is_infeasible_for_optuna(spec, tmp_path):
    s = OptunaSearcher(
        f"sqlite:///{tmp_path / 'optuna.db'}", "st", "tpe", 0, spec.define_by_run,
        ["val_acc_at_targets"], ["max"], None, rate_tolerance=0.01,
    )  # fmt: skip
    for tid in "ab":
        s.suggest(tid)
    s.on_trial_complete("a", {**result("completed", 60, 0.9), "rate_miss": 0.025})  # pruned 2.5 points off
    s.on_trial_complete("b", {**result("completed", 60, 0.7), "rate_miss": 0.004})
    study = optuna.load_study(study_name="st", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    a, b = study.get_trials()
    assert a.constraints == {"rate_miss": pytest.approx(0.015)}  # > 0: infeasible
    assert b.constraints == {"rate_miss": pytest.approx(-0.006)}
    assert study.best_trial.number == b.number  # the higher value missed its rate
