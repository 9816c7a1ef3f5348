"""Where mrmp meets Ray Tune: the trainable (worker side) and the callback that drives the trial lifecycle
(driver side). Both are thin: the work is in `mrmp.sweep.trial` and `mrmp.sweep.lifecycle`.
"""

from __future__ import annotations

import logging
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune

from .lifecycle import TrialRuns
from .trial import TrialContext, run_trial

STATE_FILE = "trial.pt"
logger = logging.getLogger(__name__)


class TuneSession:
    """The Ray Tune side of `trial.Session` (valid inside a Tune trial only)."""

    def checkpoint(self) -> dict[str, Any] | None:
        return load_checkpoint(tune.get_checkpoint())

    def report(self, result: dict[str, Any], state: dict[str, Any] | None) -> None:
        if state is None:
            tune.report(result)
            return
        import torch

        with tempfile.TemporaryDirectory(prefix="mrmp-ckpt-") as d:
            torch.save(state, Path(d) / STATE_FILE)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(d))


def load_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    """A trial's saved state from a `ray.tune.Checkpoint` (None when it has none)."""
    import torch

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        return torch.load(Path(d) / STATE_FILE, weights_only=True)


def tune_trainable(config: dict[str, Any], ctx: TrialContext) -> None:
    """The function Ray Tune runs for each trial (`tune.with_parameters(tune_trainable, ctx=...)`)."""
    from .cluster import device_tags, isolate_devices

    isolate_devices(ctx.spec.gpu)  # before anything touches CUDA: a CPU trial sees no GPU
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # a line per checkpoint
    run_trial(config, ctx, TuneSession(), host={"host": platform.node(), **device_tags()})


class Lifecycle(tune.Callback):
    """Drives each trial's tracking run from Tune's events, in the driver (one writer). Picklable: Tune saves
    it with the experiment; the tracker is reopened lazily after a restore."""

    def __init__(
        self, make_runs: Callable[[], TrialRuns], on_finished: Callable[[TrialRuns], None] | None = None
    ):
        self.make_runs = make_runs
        self.on_finished = on_finished
        self._runs: TrialRuns | None = None

    @property
    def runs(self) -> TrialRuns:
        if self._runs is None:
            self._runs = self.make_runs()
        return self._runs

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_runs": None}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.runs.open(trial.trial_id, trial.config)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.runs.record(trial.trial_id, result, trial.config)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.runs.finish(trial.trial_id, trial.last_result, trial.config, lambda: _network(trial))
        self._finished()

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.runs.retrying(trial.trial_id, trial.get_error() or "the trial failed")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from .compat import is_lost_process

        text = trial.get_error() or "the trial failed"
        lost = is_lost_process(_pickled_error(trial))
        self.runs.fail(trial.trial_id, trial.config, text, lost=lost)
        self._finished()

    def _finished(self) -> None:
        if self.on_finished is not None:
            self.on_finished(self.runs)


def _pickled_error(trial: Any) -> Any:
    try:
        return trial.get_pickled_error()
    except Exception:  # noqa: BLE001  (an error that does not unpickle here: judged by its text only)
        return None


def _network(trial: Any) -> dict[str, Any] | None:
    """The trained network of a completed trial, from its last checkpoint."""
    state = load_checkpoint(trial.checkpoint)
    return (state or {}).get("network")


def make_scheduler(spec: Any) -> Any:
    """ASHA over the first objective, in epochs, or None."""
    if spec.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    s, first = spec.scheduler, spec.objectives[0]
    return ASHAScheduler(
        time_attr="epoch",  # grace_period and max_t are in epochs
        metric=first.key,
        mode=first.mode,
        grace_period=s["grace_period"],
        reduction_factor=s["reduction_factor"],
        max_t=s["max_t"] or 10**6,  # no cap by default: trials end when their training ends
    )
