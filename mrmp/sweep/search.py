"""The sweep's searcher: Ray Tune's OptunaSearch over the sweep's Optuna study (RDB), safe to resume after a crash.

Tune saves its state (trials, searcher) every few seconds, while the Optuna study records every ask and tell at
once. A driver killed in between leaves the two out of step, and `--resume` reconciles them:

- each Optuna trial records the Tune trial that runs it (user attr `mrmp.trial_id`), and each trial's config
  carries its Optuna trial number (`_optuna_trial`), so a tracking run can be matched to its Optuna trial;
- a trial the study already holds as finished (it ended after Tune's last save) is not told again (Optuna would
  refuse: the value is already there);
- `requeue_lost` puts back the Optuna trials whose Tune trial the saved state does not know (started after its
  last save): they are asked again, with the parameters they already had, by the next new Tune trial, so the
  study keeps one trial per sweep trial.

Imports Ray and Optuna: only the driver uses it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from .trial import OPTUNA_TRIAL_KEY

logger = logging.getLogger(__name__)

TRIAL_ID_ATTR = "mrmp.trial_id"  # on an Optuna trial: the Tune trial that runs it


class SweepSearch(OptunaSearch):
    """OptunaSearch that links Tune and Optuna trials and never tells a finished Optuna trial again."""

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        params = super().suggest(trial_id)
        if not isinstance(params, dict):
            return params  # None (wait) or Searcher.FINISHED
        ot_trial = self._ot_trials[trial_id]
        ot_trial.set_user_attr(TRIAL_ID_ATTR, trial_id)
        return {**params, OPTUNA_TRIAL_KEY: ot_trial.number}

    def _finished(self, trial_id: str) -> bool:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            return False
        # optuna.Trial keeps its storage id private; the storage is the study's RDB
        return ot_trial.storage.get_trial(ot_trial._trial_id).state.is_finished()

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._finished(trial_id):
            return
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._completed_trials and self._finished(trial_id):
            logger.info(
                "Optuna already holds trial %s as finished (told before the driver stopped)", trial_id
            )
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)


def requeue_lost(url: str, study_name: str, known_trial_ids: Iterable[str]) -> list[int]:
    """Put the study's RUNNING trials that no known Tune trial runs back in the queue (WAITING, parameters kept);
    returns their numbers. Run before `Tuner.restore(...).fit()`: the next asks take them first."""
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    known = set(known_trial_ids)
    storage = RDBStorage(url)
    study_id = storage.get_study_id_from_name(study_name)
    lost = [
        t.number
        for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get(TRIAL_ID_ATTR) not in known
    ]
    for number in lost:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        storage.set_trial_state_values(trial_id, TrialState.WAITING)
    return lost
