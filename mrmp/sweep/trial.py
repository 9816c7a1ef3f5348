"""One sweep trial: the core's `mrmp.train.run`, wrapped for reporting, checkpoints, retries and tracking.

A trial trains every repeat of its sample (seeds, folds) in lockstep, `report_every` epochs at a time: the core
trains until the next boundary, hands back its exact state (`EpochEvent.state()`), and continues from it with
`resume_state`. At each boundary the trial logs the epochs to the tracker, scores the mean curve, and reports
to the session (Ray Tune, or a test double) with a checkpoint of every repeat's state. A retried or resumed
trial continues from that checkpoint, in the same tracking run.

Outcomes: completed (the trial ends its run FINISHED), failed (FAILED, with the error as a tag and
`error.txt`), stopped early by the scheduler: Tune raises SystemExit inside `report` and kills the trial's
process moments later, too soon to log from inside it, so the driver closes that run from the trial's last
checkpoint (`finish_stopped`; FINISHED with tag `mrmp.outcome=stopped_early`).

Faults (docs/reliability.md): a NaN or infinite training loss fails the trial at once (`NonFiniteLoss`, naming
the epoch). A failure `sweep.retry_on` does not cover is marked `mrmp.retry=no`, and a retry of that trial fails
again at once (`NotRetried`) without training or touching its run. A trial whose run already ended FINISHED
(it finished after Tune last saved its state, before the driver was killed) reports what its run recorded and
trains nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import platform
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mrmp.config import RunConfig, config_from_dict
from mrmp.tracking import FAILED, FINISHED, TAG_KIND, RunRecord, Tracker
from mrmp.train import CurvePoint, PreparedData, curve_csv

from .objectives import curve_metrics, mean_curve, metric_value
from .spec import SweepSpec, data_key

STATE_FILE = "trial.pt"
EPOCH_KEY = "loss"  # a metric the core reports every epoch: its last step is the last epoch logged
OPTUNA_TRIAL_KEY = "_optuna_trial"  # in a trial's config (set by the searcher): its Optuna trial number
FINITE_KEYS = ("loss", "regularizer")  # epoch metrics that must stay finite
DONE_OUTCOMES = ("completed", "stopped_early")


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss: the trial diverged (retried only with `retry_on: [nonfinite]`)."""


class NotRetried(RuntimeError):
    """A retry of a trial whose failure `sweep.retry_on` does not cover: fails at once, trains nothing."""


class Session(Protocol):
    """What a trial needs from its scheduler: who it is, its last checkpoint, and a way to report."""

    trial_id: str
    trial_name: str

    def load(self) -> dict[str, Any] | None: ...

    def report(self, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        """Report `metrics`; with `state`, a checkpoint of it (None: no checkpoint)."""


@dataclass
class TrialContext:
    """Everything a trial gets from the driver (picklable: Tune ships it once through the object store)."""

    spec: SweepSpec
    parent_run_id: str
    tracker: Tracker
    data: dict[str, Any]  # data_key -> PreparedData or a Ray ObjectRef to one
    tags: dict[str, str] = field(default_factory=dict)

    def dataset(self, cfg: RunConfig) -> PreparedData:
        value = self.data[data_key(cfg.data)]
        if isinstance(value, PreparedData):
            return value
        import ray

        data = ray.get(value)  # zero-copy, read-only arrays: copy them (kB to MB) so torch may own them
        arrays = {
            k: np.array(getattr(data, k))
            for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "adjacency")
        }
        return dataclasses.replace(data, **arrays)


class _Pause(Exception):
    """Raised from the epoch callback at a report boundary: the core's run stops, its state is kept."""


@dataclass
class _Repeat:
    """Progress of one repeat (one seed / fold) of a trial."""

    cfg: RunConfig
    data: PreparedData | None = None  # None when only reading a checkpoint back (closing a stopped run)
    state: dict[str, Any] | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    epoch: int = 0
    done: bool = False
    summary: dict[str, Any] | None = None

    def checkpoint(self) -> dict[str, Any]:
        return {
            "state": None if self.done else self.state,
            "curve": [dataclasses.asdict(p) for p in self.curve],
            "epoch": self.epoch,
            "done": self.done,
            "summary": json.loads(json.dumps(self.summary, default=str)) if self.summary else None,
        }

    def restore(self, saved: dict[str, Any]) -> None:
        self.state = saved["state"]
        self.curve = [CurvePoint(**p) for p in saved["curve"]]
        self.epoch = int(saved["epoch"])
        self.done = bool(saved["done"])
        self.summary = saved["summary"]

    def advance(self, every: int) -> list[dict[str, float]]:
        """Train to the next multiple of `every` epochs (or to the end); return the epochs' metrics."""
        from mrmp.train import run

        rows: list[dict[str, float]] = []

        def on_epoch(ev: Any) -> None:
            bad = [k for k in FINITE_KEYS if not math.isfinite(ev.metrics.get(k, 0.0))]
            if bad:
                values = ", ".join(f"{k} {ev.metrics[k]}" for k in bad)
                raise NonFiniteLoss(f"non-finite loss at epoch {ev.epoch} ({values})")
            rows.append({"epoch": ev.epoch, **ev.metrics})
            if ev.epoch % every == 0 and ev.epoch < ev.total_epochs:
                self.state = ev.state()
                self.curve = ev.evaluate(list(self.cfg.eval.rates))
                self.epoch = ev.epoch
                raise _Pause

        try:
            result = run(self.cfg, self.data, callback=on_epoch, resume_state=self.state)
        except _Pause:
            return rows
        if result.trainer.diverged:
            raise NonFiniteLoss(result.trainer.diverged)
        self.curve, self.summary = result.curve, result.summary
        self.epoch, self.done, self.state = result.trainer.epoch, True, None
        return rows


def _mean_rows(per_repeat: list[list[dict[str, float]]]) -> dict[int, dict[str, float]]:
    """Per-epoch training metrics averaged over the repeats that trained that epoch."""
    acc: dict[int, list[dict[str, float]]] = {}
    for rows in per_repeat:
        for row in rows:
            acc.setdefault(int(row["epoch"]), []).append(row)
    return {
        e: {k: sum(r[k] for r in rs) / len(rs) for k in rs[0] if k != "epoch"}
        for e, rs in sorted(acc.items())
    }


def _scores(spec: SweepSpec, repeats: list[_Repeat]) -> tuple[list[CurvePoint], dict[str, float | None]]:
    """The trial's mean curve and every score of it (curve metrics and the objectives)."""
    curve = mean_curve([r.curve for r in repeats])
    target = repeats[0].cfg.method.rate
    scores = curve_metrics(curve, target)
    for obj in spec.objectives:
        scores[obj.key] = metric_value(obj.metric, curve, target)
    if len(repeats) > 1:
        for obj in spec.objectives:
            values = [metric_value(obj.metric, r.curve, target) for r in repeats]
            if all(v is not None for v in values):
                m = sum(values) / len(values)
                scores[f"{obj.key}_std"] = (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5
    return curve, scores


def _objective_result(spec: SweepSpec, scores: dict[str, float | None], epoch: int) -> dict[str, float]:
    """What the searcher and scheduler read. An objective the curve cannot define counts as the worst value
    (0 accuracy when maximising), so the search moves away from it instead of failing."""
    out: dict[str, float] = {"epoch": float(epoch)}
    for obj in spec.objectives:
        v = scores.get(obj.key)
        out[obj.key] = float(v) if v is not None else (0.0 if obj.mode == "max" else 1.0)
    return out


def _configs(spec: SweepSpec, sample: dict[str, Any], trial_name: str) -> list[RunConfig]:
    """The run config of each repeat of a sample (validated by the core, like any config)."""
    assignment = spec.decode(sample)
    source = f"{spec.path} (trial {trial_name})"
    return [config_from_dict(spec.trial_config(assignment, r), source) for r in spec.repeat_list()]


def run_trial(sample: dict[str, Any], ctx: TrialContext, session: Session) -> dict[str, float]:
    """Train one sample of the sweep; returns the final objective values.

    A SystemExit from `session.report` (the scheduler stopping the trial) propagates with the run still
    RUNNING: whoever stops trials closes their runs with `finish_stopped`."""
    spec, tracker = ctx.spec, ctx.tracker
    assignment = spec.decode(sample)
    number = sample.get(OPTUNA_TRIAL_KEY)
    # A trial re-proposed after its driver was killed (same Optuna trial, new Tune id) continues its old run.
    adopt = {"mrmp.optuna_trial": str(number), "mrmp.outcome": "lost"} if number is not None else None
    prev = tracker.find_child(ctx.parent_run_id, session.trial_id, adopt)
    if prev is not None and prev.status == FINISHED and prev.tags.get("mrmp.outcome") in DONE_OUTCOMES:
        result = _recorded_result(spec, prev)  # it ended after Tune last saved its state: nothing to train
        session.report(result, None)
        return result
    if prev is not None and prev.status == FAILED and prev.tags.get("mrmp.retry") == "no":
        raise NotRetried(f"{prev.tags.get('mrmp.error')} (not retried: sweep.retry_on is {spec.retry_on})")
    tags = {
        **ctx.tags,
        TAG_KIND: "trial",
        "mrmp.trial_id": session.trial_id,
        "mrmp.method": str(assignment.get("method.name", spec.base_value("method.name"))),
        "mrmp.sample": json.dumps(assignment),
        "mrmp.host": platform.node(),
        "mrmp.outcome": "running",
        "mrmp.attempts": str(int(prev.tags.get("mrmp.attempts", "0")) + 1 if prev else 1),
    }
    if number is not None:
        tags["mrmp.optuna_trial"] = str(number)
    if prev is not None and "mrmp.error" in prev.tags:  # why the last attempt ended; this one starts clean
        tags["mrmp.previous_error"] = prev.tags["mrmp.error"]
    # The run exists before anything can fail, so every failure is recorded in it.
    run_id = tracker.start_child(ctx.parent_run_id, session.trial_name, session.trial_id, tags)
    for stale in ("mrmp.error", "mrmp.retry"):  # they described the last attempt
        if prev is not None and stale in prev.tags:
            tracker.delete_tag(run_id, stale)
    try:
        cfgs = _configs(spec, sample, session.trial_name)
        repeats = [_Repeat(c, ctx.dataset(c)) for c in cfgs]
        params = cfgs[0].flat()
        if spec.repeats:
            params["sweep.repeats"] = json.dumps(spec.repeats)
        tracker.log_params(run_id, params)
        tracker.set_tags(
            run_id,
            {
                "mrmp.config_hash": cfgs[0].hash(),
                "mrmp.split_hash": ",".join(dict.fromkeys(r.data.split_hash() for r in repeats)),
                "mrmp.seeds": json.dumps(sorted({c.train.seed for c in cfgs})),
                "mrmp.repeats": str(len(cfgs)),
            },
        )
        # Epochs this run already holds: a trial that restarts from an older checkpoint (a retry, a resumed
        # sweep) trains them again, deterministically; logging them twice would only duplicate points.
        logged = max((step for step, _ in tracker.metric_history(run_id, EPOCH_KEY)), default=0)
        saved = session.load()
        if saved is not None:
            for rep, s in zip(repeats, saved["repeats"]):
                rep.restore(s)
        while True:
            rows = [rep.advance(spec.report_every) if not rep.done else [] for rep in repeats]
            rows_by_epoch = _mean_rows(rows).items()
            tracker.log_series(
                run_id, [(k, v, e) for e, row in rows_by_epoch if e > logged for k, v in row.items()]
            )
            epoch = max(rep.epoch for rep in repeats)
            curve, scores = _scores(spec, repeats)
            if all(rep.done for rep in repeats):
                break
            if epoch > logged:
                tracker.log_metrics(run_id, scores, step=epoch)
            tracker.flush()  # everything up to this checkpoint is stored
            session.report(
                _objective_result(spec, scores, epoch), {"repeats": [r.checkpoint() for r in repeats]}
            )
    except SystemExit:
        raise
    except BaseException as e:
        _fail(
            tracker,
            run_id,
            e,
            retry=("nonfinite" if isinstance(e, NonFiniteLoss) else "error") in spec.retry_on,
        )
        raise
    _finish(tracker, run_id, spec, repeats, curve, scores, epoch, "completed")
    result = _objective_result(spec, scores, epoch)
    session.report(result, {"repeats": [r.checkpoint() for r in repeats]})  # after the run is closed
    return result


def _recorded_result(spec: SweepSpec, run: RunRecord) -> dict[str, float]:
    """The objective values a finished run recorded, as the trial reported them."""
    scores = {o.key: run.metrics.get(o.key) for o in spec.objectives}
    return _objective_result(spec, scores, int(run.tags.get("mrmp.epochs", "0")))


def finish_stopped(
    tracker: Tracker, spec: SweepSpec, run_id: str, sample: dict[str, Any], saved: dict[str, Any] | None
) -> None:
    """Close the run of a trial the scheduler stopped, with the curve of its last checkpoint."""
    repeats = [_Repeat(c) for c in _configs(spec, sample, run_id)]
    if saved is None:
        tracker.set_tags(run_id, {"mrmp.outcome": "stopped_early", "mrmp.epochs": "0"})
        tracker.end(run_id, FINISHED)
        tracker.flush()
        return
    for rep, s in zip(repeats, saved["repeats"]):
        rep.restore(s)
    curve, scores = _scores(spec, repeats)  # already logged at that epoch, before the report that stopped it
    _finish(
        tracker, run_id, spec, repeats, curve, scores, max(r.epoch for r in repeats), "stopped_early", False
    )


def _finish(
    tracker: Tracker,
    run_id: str,
    spec: SweepSpec,
    repeats: list[_Repeat],
    curve: list[CurvePoint],
    scores: dict[str, float | None],
    epoch: int,
    outcome: str,
    log_scores: bool = True,
) -> None:
    """Log the final curve (and `scores` at `epoch` unless already logged), artifacts, tags; end FINISHED."""
    import yaml

    cfg = repeats[0].cfg
    if curve and not tracker.metric_history(run_id, "acc"):  # a run closed twice keeps one curve
        tracker.log_curve(run_id, curve, plot_title=f"{cfg.method.name} ({outcome}, {epoch} epochs)")
    if log_scores:
        tracker.log_metrics(run_id, scores, step=epoch)
    tracker.log_artifact(run_id, "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if len(repeats) > 1:
        for i, rep in enumerate(repeats):
            tracker.log_artifact(run_id, f"repeats/curve_{i}.csv", curve_csv(rep.curve))
    summary = {
        "outcome": outcome,
        "epochs": epoch,
        "scores": scores,
        "repeats": [
            {
                "overrides": r,
                "config_hash": rep.cfg.hash(),
                "scores": {
                    o.key: metric_value(o.metric, rep.curve, rep.cfg.method.rate) for o in spec.objectives
                },
                "summary": rep.summary,
            }
            for r, rep in zip(spec.repeat_list(), repeats)
        ],
    }
    tracker.log_artifact(run_id, "summary.json", json.dumps(summary, indent=2, default=str))
    tracker.set_tags(run_id, {"mrmp.outcome": outcome, "mrmp.epochs": str(epoch)})
    tracker.end(run_id, FINISHED)
    tracker.flush()


def _fail(tracker: Tracker, run_id: str, error: BaseException, retry: bool = True) -> None:
    """Record the error and end the run FAILED; never hide the original error behind a tracking one.

    `retry=False` (a failure `sweep.retry_on` does not cover) tags the run `mrmp.retry=no`: a retry of the
    trial then fails at once."""
    try:
        text = "".join(traceback.format_exception(error))
        tracker.log_artifact(run_id, "error.txt", text)
        tracker.set_tags(
            run_id,
            {
                "mrmp.outcome": "failed",
                "mrmp.error": f"{type(error).__name__}: {error}"[:4000],
                "mrmp.retry": "yes" if retry else "no",
            },
        )
        tracker.end(run_id, FAILED)
        tracker.flush()
    except Exception:  # noqa: BLE001  (best effort: the driver closes runs left open)
        pass


class TuneSession:
    """The Ray Tune side of `Session` (only valid inside a Tune trial)."""

    def __init__(self) -> None:
        from ray import tune

        context = tune.get_context()
        self.trial_id = context.get_trial_id()
        self.trial_name = context.get_trial_name()

    def load(self) -> dict[str, Any] | None:
        from ray import tune

        return load_checkpoint(tune.get_checkpoint())

    def report(self, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        import torch
        from ray import tune

        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="mrmp-ckpt-") as d:
            torch.save(state, Path(d) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


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
    run_trial(config, dataclasses.replace(ctx, tags={**ctx.tags, **device_tags()}), TuneSession())
