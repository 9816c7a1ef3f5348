"""Driver-side Tune callback: closes the tracking run of every trial the scheduler stops.

Tune stops a trial by raising SystemExit inside `report` and kills its process moments later; logging from
inside the trial at that point races with the kill. The driver knows when a trial ends and can read the trial's
last checkpoint, so it closes the run there, through the same tracking actor (still one writer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ray
from ray import tune

from mrmp.tracking import FAILED, KILLED, RUNNING, TAG_KEY, Tracker

from .spec import SweepSpec
from .trial import finish_stopped, load_checkpoint

logger = logging.getLogger(__name__)


def close_open_run(
    tracker: Tracker,
    spec: SweepSpec,
    parent_run_id: str,
    trial_id: str,
    sample: dict[str, Any],
    load_saved: Callable[[], dict[str, Any] | None],
    how: str,
) -> bool:
    """Close the trial's run if it is still RUNNING; True when it was.

    `how`: `stopped` (the scheduler stopped it: FINISHED with its last checkpoint's curve), `error` (its process
    died: FAILED) or `interrupted` (the sweep stopped: KILLED, reopened by --resume)."""
    runs = [r for r in tracker.find_runs(parent_run_id, {TAG_KEY: trial_id}) if r.status == RUNNING]
    for r in runs:
        if how == "stopped":
            finish_stopped(tracker, spec, r.run_id, sample, load_saved())
            continue
        why = {
            "error": "the trial process died (see the Tune error under the sweep's tune/ folder)",
            "interrupted": "the sweep was interrupted: resume it to continue this trial",
        }[how]
        tracker.set_tags(
            r.run_id, {"mrmp.outcome": "lost" if how == "error" else "interrupted", "mrmp.error": why}
        )
        tracker.end(r.run_id, FAILED if how == "error" else KILLED)
    tracker.flush()
    return bool(runs)


class CloseStoppedTrials(tune.Callback):
    """Finds the tracking actor by name (a restored sweep pickles this callback; actor handles go stale)."""

    def __init__(self, spec: SweepSpec, parent_run_id: str, actor_name: str):
        self.spec = spec
        self.parent_run_id = parent_run_id
        self.actor_name = actor_name

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from mrmp.tracking.remote import RemoteTracker

        try:
            tracker = RemoteTracker(ray.get_actor(self.actor_name))
            close_open_run(
                tracker,
                self.spec,
                self.parent_run_id,
                trial.trial_id,
                trial.config,
                lambda: load_checkpoint(trial.checkpoint),
                "stopped",
            )
        except Exception:  # never break the sweep over bookkeeping; the driver closes leftovers at the end
            logger.exception("could not close the tracking run of trial %s", trial.trial_id)
