"""What a resumed part squares before Tune runs it again, after the driver was killed outright (SIGKILL, OOM, a lost
head node): Tune saved its state a few seconds before, while the tracking store and the Optuna study record
every event at once.

- `reconcile`: runs of trials Tune had not saved are marked lost and their Optuna trials put back in the queue
  (asked again with their parameters by the next new trial, which adopts the run);
- `ended_trials`: trials whose run already ended (completed, stopped early, diverged) after Tune's last save:
  Tune restores them as unfinished, so the trial reports the end its run holds and trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mrmp.tracking import RUNNING, Tracker

from .lifecycle import SETTLED, Tag, TrialRuns
from .objectives import Objective


def reconcile(
    tuner: Any,
    tracker: Tracker,
    parent_id: str,
    link: Any,
    runs: TrialRuns,
    log: Callable[[str], None] = print,
) -> None:
    """Before a restored part runs: mark lost the runs of trials the restored experiment does not know, and put
    their Optuna trials back in the queue."""
    known = {Path(r.path).name for r in tuner.get_results()}
    lost = [
        r
        for r in tracker.find_runs(parent_id)
        if r.status == RUNNING and r.tags.get(Tag.TUNE_ID) not in known
    ]
    for r in lost:
        runs.mark_lost(
            r, "the sweep's driver stopped before Tune saved this trial; --resume runs its Optuna trial again"
        )
    requeued = link.requeue(known)
    if lost or requeued:
        log(
            f"resume: {len(lost)} run(s) of trials Tune had not saved; Optuna trial(s) {requeued} asked again"
        )


def ended_trials(
    tracker: Tracker, parent_id: str, objectives: Sequence[Objective]
) -> dict[str, dict[str, Any]]:
    """The last result of each trial whose run ended without an error (see `TrialContext.ended`)."""
    from .trial import EPOCH, OUTCOME

    out = {}
    for r in tracker.find_runs(parent_id):
        outcome = r.tags.get(Tag.OUTCOME)
        if r.status != RUNNING and outcome in SETTLED and Tag.TUNE_ID in r.tags:
            values = {o.key: r.metrics.get(o.key, o.worst()) for o in objectives}
            out[r.tags[Tag.TUNE_ID]] = {EPOCH: int(r.tags.get(Tag.EPOCHS, 0)), OUTCOME: outcome, **values}
    return out
