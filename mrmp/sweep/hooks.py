"""Where mrmp meets Ray Tune: the trainable (worker side) and the callback that drives the trial lifecycle
(driver side). Both are thin: the work is in `mrmp.sweep.trial` and `mrmp.sweep.lifecycle`.
"""

from __future__ import annotations

import logging
import platform
import queue
import re
import tempfile
import threading
import time
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
    from .cluster import device_tags, isolate_devices, limit_threads

    ended = ctx.ended.get(tune.get_context().get_trial_id())
    if ended is not None:  # its run already holds its end (see TrialContext.ended)
        tune.report(ended)
        return
    isolate_devices(ctx.spec.gpu)  # before anything touches CUDA: a CPU trial sees no GPU
    limit_threads(ctx.spec.cpu)
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)  # a line per checkpoint
    run_trial(config, ctx, TuneSession(), host={"host": platform.node(), **device_tags()})


class Lifecycle(tune.Callback):
    """Drives each trial's tracking run from Tune's events, in the driver: the one writer of the store.

    Tune waits for its callbacks before it lets a trial go on, so the work runs on two background threads (each
    callback only queues what its event carries). The record thread writes runs, metrics and closes in the order
    Tune's events came; it is drained when Tune registers a checkpoint and when a trial ends (so whatever Tune's
    saved state says happened, a checkpoint or an end, is stored before Tune can save it). The views thread
    draws what is read from stored records (a run's curve plot, the sweep's report: a fraction of a second to
    seconds, growing with the sweep) and only reads runs and adds artifacts, with its own tracker; a view is
    queued by the record it shows, once that record is stored, so no record and no Tune wait ever queues behind
    a view. Everything is drained when the experiment ends. Picklable: Tune saves it with the experiment; the
    threads and their trackers start again lazily after a restore."""

    def __init__(
        self, make_runs: Callable[[], TrialRuns], on_finished: Callable[[TrialRuns], None] | None = None
    ):
        self.make_runs = make_runs
        self.on_finished = on_finished
        self._reset()

    def _reset(self) -> None:
        self._records_queue: queue.Queue | None = None
        self._views_queue: queue.Queue | None = None
        self._threads: list[threading.Thread] = []
        self._records = threading.Condition()
        self._submitted = self._stored = 0  # records queued, records written (in queue order)

    def __getstate__(self) -> dict[str, Any]:
        keep = ("make_runs", "on_finished")
        return {k: v for k, v in self.__dict__.items() if k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # --- the two threads ------------------------------------------------------------------------------------
    def _start(self) -> None:
        self._records_queue, self._views_queue = queue.Queue(), queue.Queue()
        self._threads = [
            threading.Thread(
                target=self._write, args=(self._records_queue, True), name="mrmp-records", daemon=True
            ),
            threading.Thread(
                target=self._write, args=(self._views_queue, False), name="mrmp-views", daemon=True
            ),
        ]
        for t in self._threads:
            t.start()

    def _submit(self, op: Callable[[TrialRuns], None]) -> None:
        """Queue a record (a write Tune's waits cover)."""
        if not self._threads:
            self._start()
        with self._records:
            self._submitted += 1
        self._records_queue.put(op)

    def _view(self, op: Callable[[TrialRuns], None]) -> None:
        """Queue a view (called from a record op, so that what it reads is stored)."""
        self._views_queue.put(op)

    def _write(self, ops: queue.Queue, records: bool) -> None:
        runs = self.make_runs()  # each thread opens its own tracker and only ever uses it in this thread
        while True:
            op = ops.get()
            if op is None:
                return
            try:
                op(runs)
            except Exception:  # noqa: BLE001  (bookkeeping never stops a sweep: the driver closes runs left open)
                logger.exception("a tracking %s failed", "write" if records else "view")
            finally:
                if records:
                    with self._records:
                        self._stored += 1
                        self._records.notify_all()

    def flush(self) -> None:
        """Wait until every record queued so far is stored (views may still be pending or drawing)."""
        with self._records:
            target = self._submitted
            self._records.wait_for(lambda: self._stored >= target)

    def _finished(self, runs: TrialRuns) -> None:
        if self.on_finished is not None:
            self.on_finished(runs)

    # --- Tune's events --------------------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid, config = trial.trial_id, dict(trial.config)
        started = time.time()  # now, not when the writer gets to it
        self._submit(lambda runs: runs.open(tid, config, started))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        tid, config, result = trial.trial_id, dict(trial.config), dict(result)
        self._submit(lambda runs: runs.record(tid, result, config))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid, config, last, checkpoint = (
            trial.trial_id,
            dict(trial.config),
            dict(trial.last_result),
            trial.checkpoint,
        )

        def finish(runs: TrialRuns) -> None:
            try:
                runs.finish(tid, last, config, lambda: (load_checkpoint(checkpoint) or {}).get("network"))
            finally:  # its views, once the record is stored (or failed: the report still shows the rest)
                plots = runs.take_plots()

                def views(view_runs: TrialRuns) -> None:
                    view_runs.draw(plots)
                    self._finished(view_runs)

                self._view(views)

        self._submit(finish)
        self.flush()  # the run's record, before Tune marks the trial ended (and may save that)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid, text = trial.trial_id, error_text(trial)
        self._submit(lambda runs: runs.retrying(tid, text))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from .compat import is_lost_process

        tid, config, text = trial.trial_id, dict(trial.config), error_text(trial)
        lost = is_lost_process(text)

        def fail(runs: TrialRuns) -> None:
            try:
                runs.fail(tid, config, text, lost=lost)
            finally:
                self._view(self._finished)

        self._submit(fail)
        self.flush()

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        self.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._threads:
            records, views = self._threads
            self._records_queue.put(None)  # after every record (which may still queue views)
            records.join()
            self._views_queue.put(None)  # then after every view
            views.join()
            self._reset()


# Tune writes a trial's error (error.txt) to the trial's folder in the driver's staging area, and copies it to
# the storage later: `trial.get_error()` reads that copy, which is missing or stale when these callbacks run (a
# killed worker's retry then said only "the trial failed", and a lost process was not recognised). The staged
# file is read first.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the tracebacks it writes


def error_text(trial: Any) -> str:
    """The trial's last error as Tune wrote it, without colour codes."""
    path = trial.error_file
    if path and Path(path).is_file():
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    else:
        text = trial.get_error() or "the trial failed"
    return _ANSI.sub("", text)


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
