"""Optuna behind Ray Tune's `Searcher` interface, through Optuna's public ask-and-tell API on the sweep's study.

The study lives in an RDB (sqlite by default), so it outlives the driver: a resumed or grown sweep continues the
same study, and optuna-dashboard reads it. What Optuna is told is what happened:

- each trial is asked define-by-run (only the parameters whose `when` holds), and its Optuna trial records the
  Tune trial that runs it (user attribute `tune_trial_id`) and, once the driver opened it, its tracking run
  (`mlflow_run_id`); the run records the Optuna number back;
- intermediate objective values are reported at their epoch (single objective);
- a trial that trained to the end is told COMPLETE with its values (the first objective's mean over repeats); one
  the scheduler stopped early is PRUNED; one that diverged or failed is FAIL;
- a completed trial carries the constraint `rate_miss` (its largest |observed − asked| rate where scored, minus
  `sweep.rate_tolerance`; > 0 is infeasible, Optuna's `Trial.set_constraint`): TPE and NSGA-II rank infeasible
  trials after feasible ones when they propose, and `study.best_trial` skips them;
- the study's metric names are the objectives' keys (`val_acc_at_targets`), so the dashboard names them.
- a study reopened with trials in it samples on from a seed of the sweep's seed and its trial count, so a
  resumed or grown sweep does not replay its first trials' draws.

Imports Optuna: only the driver uses it.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from .objectives import RATE_MISS
from .trial import EPOCH, OUTCOME

logger = logging.getLogger(__name__)

TUNE_ID_ATTR = "tune_trial_id"
RUN_ATTR = "mlflow_run_id"

SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda seed: optuna.samplers.RandomSampler(seed=seed),  # the grid's points are enqueued
}


def continued_seed(seed: int, trials: int) -> int:
    """The sampler's seed for a study reopened with `trials` trials: distinct per count, the same on every run."""
    return int(np.random.SeedSequence([seed, trials]).generate_state(1)[0])


def open_study(
    url: str, name: str, searcher: str, seed: int, keys: list[str], modes: list[str]
) -> optuna.Study:
    """The sweep's study (created on first use), its objectives named.

    A study reopened with trials in it (a resumed or grown sweep) gets a sampler seeded from the sweep's seed and
    its trial count: the sweep's own seed would replay the draws its first trials were given."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if m == "max" else "minimize" for m in modes]
    study = optuna.create_study(
        storage=url,
        study_name=name,
        load_if_exists=True,
        sampler=SAMPLERS[searcher](seed),
        directions=directions,
    )
    existing = len(study.get_trials(deepcopy=False))
    if existing:
        study.sampler = SAMPLERS[searcher](continued_seed(seed, existing))
    if list(study.metric_names or []) != keys:
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(keys)
    return study


def create_storage(url: str) -> None:
    """Build the study store's schema and SQLAlchemy's set-up of Optuna's models (about a second on 2 cores)
    ahead of the first ask; the driver does it while Ray starts."""
    optuna.storages.RDBStorage(url)


class StudyLink:
    """Between a Tune trial and its Optuna trial, by the user attribute the searcher sets (driver side)."""

    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self._storage: optuna.storages.BaseStorage | None = None
        self._numbers: dict[str, int] = {}

    @property
    def storage(self) -> optuna.storages.BaseStorage:
        if self._storage is None:
            self._storage = optuna.storages.RDBStorage(self.url)
        return self._storage

    def study_id(self) -> int:
        return self.storage.get_study_id_from_name(self.name)

    def number_of(self, tune_id: str) -> int | None:
        if tune_id not in self._numbers:
            for t in self.storage.get_all_trials(self.study_id(), deepcopy=False):
                if TUNE_ID_ATTR in t.user_attrs:
                    self._numbers[t.user_attrs[TUNE_ID_ATTR]] = t.number
        return self._numbers.get(tune_id)

    def set_run(self, number: int, run_id: str) -> None:
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id(), number)
        if self.storage.get_trial(trial_id).state.is_finished():  # told before: Optuna refuses any change
            return
        self.storage.set_trial_user_attr(trial_id, RUN_ATTR, run_id)

    def requeue(self, known_tune_ids: Iterable[str]) -> list[int]:
        """Put back RUNNING trials that no known Tune trial runs (the driver was killed before Tune saved them):
        WAITING, parameters kept (one killed before its parameters gets fresh ones), so the next asks take them
        first. Returns their numbers."""
        known = set(known_tune_ids)
        study_id = self.study_id()
        lost = [
            t.number
            for t in self.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
            if t.user_attrs.get(TUNE_ID_ATTR) not in known
        ]
        for number in lost:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
            self.storage.set_trial_state_values(trial_id, TrialState.WAITING)
        return lost

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "name": self.name, "_storage": None, "_numbers": {}}


class OptunaSearcher(Searcher):
    """Tune's searcher over the sweep's Optuna study (see the module docstring)."""

    def __init__(
        self,
        url: str,
        study_name: str,
        searcher: str,
        seed: int,
        space: Callable[[optuna.Trial], dict[str, Any]],
        metrics: list[str],
        modes: list[str],
        points: list[dict[str, Any]] | None = None,
        rate_tolerance: float | None = None,
    ):
        super().__init__(metric=metrics[0], mode=modes[0])
        self.url, self.study_name, self.sampler_name, self.seed = url, study_name, searcher, seed
        self.space, self.metrics, self.modes = space, metrics, modes
        self.rate_tolerance = rate_tolerance
        self.points = points or []
        self._trials: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        self._reported: dict[str, int] = {}  # Tune trial id -> last epoch reported to Optuna
        self._study: optuna.Study | None = None
        self._live: dict[str, optuna.Trial] = {}

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = open_study(
                self.url, self.study_name, self.sampler_name, self.seed, self.metrics, self.modes
            )
            if not self._study.get_trials(deepcopy=False):  # a grid, point by point, into a new study only
                for point in self.points:
                    self._study.enqueue_trial(point)
        return self._study

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # metric, mode and space are ours

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trial = self.study.ask()
        labels = self.space(trial)
        trial.set_user_attr(TUNE_ID_ATTR, trial_id)
        self._trials[trial_id] = trial.number
        self._live[trial_id] = trial
        return labels

    def _trial(self, trial_id: str) -> optuna.Trial | None:
        """The live Optuna trial (rebuilt from the storage after a restore)."""
        if trial_id not in self._live:
            number = self._trials.get(trial_id)
            if number is None:
                return None
            link = StudyLink(self.url, self.study_name)
            storage_id = link.storage.get_trial_id_from_study_id_trial_number(link.study_id(), number)
            self._live[trial_id] = optuna.trial.Trial(self.study, storage_id)
        return self._live[trial_id]

    def _frozen(self, trial_id: str) -> optuna.trial.FrozenTrial | None:
        number = self._trials.get(trial_id)
        if number is None:
            return None
        return self.study.get_trials(deepcopy=False)[number]

    def _state(self, trial_id: str) -> TrialState | None:
        frozen = self._frozen(trial_id)
        return None if frozen is None else frozen.state

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        frozen = self._frozen(trial_id)
        if (
            len(self.metrics) > 1
            or self.metric not in result
            or frozen is None
            or frozen.state != TrialState.RUNNING
        ):
            return  # Optuna takes intermediate values for one objective only
        epoch = int(result.get(EPOCH, 0))
        if epoch <= self._reported.get(trial_id, 0) or epoch in frozen.intermediate_values:
            return  # delivered again (a restored trial repeats the results after Tune's last save)
        trial = self._trial(trial_id)
        if trial is not None:
            trial.report(float(result[self.metric]), step=epoch)
            self._reported[trial_id] = epoch

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        number = self._trials.get(trial_id)
        if number is None or self._state(trial_id) != TrialState.RUNNING:
            return  # not ours, or told before the driver last stopped
        outcome = (result or {}).get(OUTCOME)
        if error or outcome == "diverged":
            self.study.tell(number, state=TrialState.FAIL)
        elif outcome == "completed":
            values = [float(result[m]) for m in self.metrics]
            trial = self._trial(trial_id)
            if trial is not None and self.rate_tolerance is not None and RATE_MISS in result:
                trial.set_constraint(RATE_MISS, float(result[RATE_MISS]) - self.rate_tolerance)
            self.study.tell(number, values if len(values) > 1 else values[0])
        else:  # stopped early by the scheduler
            if result:  # Tune hands the result it stopped on to on_trial_complete only: it is the last step
                self.on_trial_result(trial_id, result)
            self.study.tell(number, state=TrialState.PRUNED)  # Optuna takes the last step's value

    def save(self, checkpoint_path: str) -> None:
        """Which Optuna trial each Tune trial runs, and its last reported epoch (JSON: the study holds the rest)."""
        with open(checkpoint_path, "w", encoding="utf-8") as f:
            json.dump({"trials": self._trials, "reported": self._reported}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, encoding="utf-8") as f:
            state = json.load(f)
        self._trials, self._reported = state["trials"], state["reported"]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_study": None, "_live": {}}


def make_searcher(spec: Any) -> OptunaSearcher:
    """The searcher of a sweep spec (a grid is its points, enqueued one by one)."""
    points = [spec.label(a) for a in spec.grid_points()] if spec.searcher == "grid" else None
    return OptunaSearcher(
        url=spec.optuna_url,
        study_name=spec.name,
        searcher=spec.searcher,
        seed=spec.seed,
        space=spec.define_by_run,
        metrics=[o.key for o in spec.objectives],
        modes=[o.mode for o in spec.objectives],
        points=points,
        rate_tolerance=spec.section.rate_tolerance,
    )
