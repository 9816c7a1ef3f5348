"""The one owner of a trial's tracking run: its outcomes, its tag names, and every operation on it.

Everything here runs in the sweep's driver, one call at a time (Ray Tune's callbacks, `mrmp.sweep.hooks`), so the
tracking store has one writer whatever the number of trials and nodes. A run is opened (or adopted) when its
trial starts, receives each result, and is closed by `TrialRuns._close`, the only place a run ends:

| outcome         | run status | when                                                                        |
|-----------------|------------|-----------------------------------------------------------------------------|
| `completed`     | FINISHED   | the trial trained to the end; scores, curves, config, network recorded     |
| `stopped_early` | FINISHED   | the scheduler (ASHA) stopped it; its last objective values stand            |
| `diverged`      | FAILED     | a loss turned NaN or infinite (`mrmp.error` names the epoch); not retried   |
| `failed`        | FAILED     | the trial raised after its retries (`mrmp.error`, `error.txt`)              |
| `lost`          | FAILED     | its process or node died after its retries; `--resume` runs it again       |
| `interrupted`   | KILLED     | the sweep stopped (Ctrl-C, a signal); `--resume` continues it in this run  |

A run is found again by its Tune trial id; after the driver was killed outright, a trial Tune had not yet saved
is asked again under a new id with the same Optuna trial, and adopts its run by the Optuna number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from mrmp.tracking import FAILED, FINISHED, KILLED, RUNNING, RunRecord, Tracker

from .spec import SweepSpec
from .views import config_header, describe, describe_short, rates_csv


class Outcome(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED_EARLY = "stopped_early"
    DIVERGED = "diverged"
    FAILED = "failed"
    LOST = "lost"
    INTERRUPTED = "interrupted"

    @property
    def status(self) -> str:
        """The tracking run's status for this outcome."""
        return {
            Outcome.RUNNING: RUNNING,
            Outcome.COMPLETED: FINISHED,
            Outcome.STOPPED_EARLY: FINISHED,
            Outcome.INTERRUPTED: KILLED,
        }.get(self, FAILED)

    @property
    def scored(self) -> bool:
        """Whether the trial has a score (the searcher's value, a row in the report)."""
        return self in (Outcome.COMPLETED, Outcome.STOPPED_EARLY)


# Outcomes of trials that ended without an error: Tune holds them as done, and their runs are final.
SETTLED = (Outcome.COMPLETED.value, Outcome.STOPPED_EARLY.value, Outcome.DIVERGED.value)


def outcome_of(run: RunRecord) -> Outcome:
    """A run's outcome (runs of older sweeps without the tag: from their status)."""
    value = run.tags.get(Tag.OUTCOME)
    if value in Outcome._value2member_map_:
        return Outcome(value)
    return {FINISHED: Outcome.COMPLETED, RUNNING: Outcome.RUNNING, KILLED: Outcome.INTERRUPTED}.get(
        run.status, Outcome.FAILED
    )


class Tag:
    """Tag names mrmp sets on runs."""

    KIND = "mrmp.kind"  # sweep | trial
    OUTCOME = "mrmp.outcome"
    METHOD = "mrmp.method"
    TUNE_ID = "mrmp.tune_trial_id"
    OPTUNA = "mrmp.optuna_number"
    SAMPLE = "mrmp.sample"  # the sampled values, JSON
    UNITS = "mrmp.units"  # the trainings of the trial (repeats x target rates)
    EPOCHS = "mrmp.epochs"
    ERROR = "mrmp.error"
    PREVIOUS_ERROR = "mrmp.previous_error"
    ATTEMPTS = "mrmp.attempts"
    CONFIG_HASH = "mrmp.config_hash"
    SPLIT_HASH = "mrmp.split_hash"
    SEEDS = "mrmp.seeds"
    HOST = "mrmp.host"
    BEST_RUN = "mrmp.best_run_id"
    NOTE = "mlflow.note.content"  # the run's description in the MLflow UI


class StudyLink(Protocol):
    """The Optuna side of a trial, as the run needs it."""

    def number_of(self, tune_id: str) -> int | None: ...

    def set_run(self, number: int, run_id: str) -> None: ...


@dataclass
class _Open:
    run_id: str
    number: int | None
    last_epoch: int  # the last epoch whose training metrics the run holds
    started: float
    settled: bool = False  # the run ended before (SETTLED): nothing more is recorded in it


class TrialRuns:
    """Opens, feeds and closes the tracking run of every trial of one sweep (driver side)."""

    def __init__(
        self,
        tracker: Tracker,
        spec: SweepSpec,
        parent_id: str,
        tags: Mapping[str, str] | None = None,
        study: StudyLink | None = None,
    ):
        self.tracker = tracker
        self.spec = spec
        self.parent_id = parent_id
        self.tags = dict(tags or {})
        self.study = study
        self._open: dict[str, _Open] = {}
        self.finished: list[str] = []  # run ids closed since the last `take_finished`
        self._plots: list[tuple[str, dict[str, Any], str]] = []  # (run id, rows by method, title) to draw

    # --- opening ------------------------------------------------------------------------------------------
    def open(self, tune_id: str, sample: Mapping[str, Any], started: float | None = None) -> str:
        """The trial's run, RUNNING: its own (a retry, a restored trial), a lost one it takes over (same Optuna
        trial asked again after the driver was killed), or a new one. `started`: when Tune started the trial
        (unix time; default now), what `time/trial_s` counts from."""
        started = time.time() if started is None else started
        if tune_id in self._open:
            return self._open[tune_id].run_id
        number = self.study.number_of(tune_id) if self.study else None
        run = self._find(tune_id, number)
        if run is not None and run.status != RUNNING and outcome_of(run).value in SETTLED:
            self._open[tune_id] = _Open(run.run_id, number, 0, started, settled=True)
            return run.run_id
        assignment = self.spec.decode(dict(sample))
        method = str(assignment.get("method.name", self.spec.base_value("method.name")))
        if run is None:
            name = (
                f"{method}-{number:03d}" if number is not None else f"{method}-{tune_id.rsplit('_', 1)[-1]}"
            )
            tags = {
                **self.tags,
                Tag.KIND: "trial",
                Tag.TUNE_ID: tune_id,
                Tag.METHOD: method,
                Tag.SAMPLE: json.dumps(assignment),
                Tag.OUTCOME: Outcome.RUNNING.value,
                Tag.ATTEMPTS: "1",
                Tag.NOTE: describe(method, assignment),
            }
            if number is not None:
                tags[Tag.OPTUNA] = str(number)
            run_id = self.tracker.create_run(name, self.parent_id, tags)
            self.tracker.log_params(run_id, self._params(assignment))
            last = 0
        else:
            run_id = run.run_id
            attempts = int(run.tags.get(Tag.ATTEMPTS, "1")) + 1  # a retry, a resume or an adoption
            self.tracker.set_status(run_id, RUNNING)
            tags = {Tag.TUNE_ID: tune_id, Tag.OUTCOME: Outcome.RUNNING.value, Tag.ATTEMPTS: str(attempts)}
            if Tag.ERROR in run.tags:
                tags[Tag.PREVIOUS_ERROR] = run.tags[Tag.ERROR]
                self.tracker.delete_tag(run_id, Tag.ERROR)
            self.tracker.set_tags(run_id, tags)
            last = max((s for s, _ in self.tracker.metric_history(run_id, "train/loss")), default=0)
        if self.study is not None and number is not None:
            self.study.set_run(number, run_id)
        self._open[tune_id] = _Open(run_id, number, last, started)
        return run_id

    def _find(self, tune_id: str, number: int | None) -> RunRecord | None:
        found = self.tracker.find_runs(self.parent_id, {Tag.TUNE_ID: tune_id})
        if found:
            return found[0]
        if number is None:
            return None
        lost = [
            r
            for r in self.tracker.find_runs(self.parent_id, {Tag.OPTUNA: str(number)})
            if outcome_of(r) in (Outcome.LOST, Outcome.INTERRUPTED)
        ]
        return lost[0] if lost else None

    def _params(self, assignment: dict[str, Any]) -> dict[str, Any]:
        from mrmp.config import config_from_dict

        units = self.spec.units(assignment)
        params = config_from_dict(self.spec.trial_config(assignment, units[0]), self.spec.path).flat()
        if len(units) > 1:
            params["sweep.units"] = json.dumps([u.label for u in units])
        return params

    def run_id(self, tune_id: str) -> str | None:
        entry = self._open.get(tune_id)
        return entry.run_id if entry else None

    # --- results ------------------------------------------------------------------------------------------
    def record(self, tune_id: str, result: Mapping[str, Any], sample: Mapping[str, Any]) -> None:
        """Log a result: the epochs the run does not hold yet, the objectives at this epoch, the host."""
        from .trial import EPOCH, OUTCOME, PAYLOAD

        entry = self._open.get(tune_id)
        if entry is None:
            self.open(tune_id, sample)
            entry = self._open[tune_id]
        if entry.settled:
            return
        payload = result.get(PAYLOAD) or {}
        epoch = int(result.get(EPOCH, 0))
        points = [
            (f"train/{k}", float(v), int(row["epoch"]))
            for row in payload.get("rows", [])
            if row["epoch"] > entry.last_epoch
            for k, v in row.items()
            if k != "epoch"
        ]
        if (
            epoch > entry.last_epoch and result.get(OUTCOME) == Outcome.RUNNING.value
        ):  # final scores: at finish
            points += [(o.key, float(result[o.key]), epoch) for o in self.spec.objectives if o.key in result]
        self.tracker.log_series(entry.run_id, points)
        entry.last_epoch = max(entry.last_epoch, epoch)
        if "host" in payload:
            host = payload["host"]
            self.tracker.set_tags(
                entry.run_id,
                {
                    **{k if k.startswith("mrmp.") else f"mrmp.{k}": v for k, v in host.items()},
                    Tag.UNITS: json.dumps(payload.get("unit_labels", [])),
                },
            )
            if "started" in payload:  # unix time; one point per attempt
                self.tracker.log_series(
                    entry.run_id, [("time/train_started_unix", float(payload["started"]), 0)]
                )

    # --- closing ------------------------------------------------------------------------------------------
    def finish(
        self,
        tune_id: str,
        result: Mapping[str, Any] | None,
        sample: Mapping[str, Any],
        network: Callable[[], dict[str, Any] | None] = lambda: None,
    ) -> Outcome:
        """Close the run of a trial that ended without an error, by what its last result says: completed,
        diverged, or stopped early by the scheduler (its last result is an intermediate one)."""
        from .trial import OUTCOME, PAYLOAD

        entry = self._open.get(tune_id)
        if entry is None:
            self.open(tune_id, sample)
            entry = self._open[tune_id]
        if entry.settled:
            del self._open[tune_id]
            return outcome_of(self.tracker.get_run(entry.run_id))
        result = result or {}
        said = result.get(OUTCOME)
        payload = result.get(PAYLOAD) or {}
        epoch = str(result.get("epoch", 0))
        if said == Outcome.DIVERGED.value:
            return self._close(
                tune_id, Outcome.DIVERGED, {Tag.ERROR: payload.get("error", "diverged"), Tag.EPOCHS: epoch}
            )
        if said == Outcome.COMPLETED.value:
            self._record_final(entry, result, sample, network())
            return self._close(tune_id, Outcome.COMPLETED, {Tag.EPOCHS: epoch})
        return self._close(tune_id, Outcome.STOPPED_EARLY, {Tag.EPOCHS: epoch})

    def retrying(self, tune_id: str, error: str) -> None:
        """The trial raised (or its process died) and Tune retries it from its last checkpoint, in this run."""
        entry = self._open.get(tune_id)
        if entry is None:
            return
        self.tracker.set_tags(entry.run_id, {Tag.PREVIOUS_ERROR: error[:4000]})
        self.tracker.log_artifact(entry.run_id, "error_previous.txt", error)
        del self._open[tune_id]  # reopened (attempts + 1) when the retry starts

    def fail(self, tune_id: str, sample: Mapping[str, Any], error: str, lost: bool) -> Outcome:
        """The trial failed for good: raised after its retries, or its process was lost."""
        if tune_id not in self._open:
            self.open(tune_id, sample)
        entry = self._open[tune_id]
        self.tracker.log_artifact(entry.run_id, "error.txt", error)
        outcome = Outcome.LOST if lost else Outcome.FAILED
        first = error.strip().splitlines()[-1] if error.strip() else "unknown error"
        return self._close(tune_id, outcome, {Tag.ERROR: first[:4000]})

    def close_leftovers(self, interrupted: bool) -> int:
        """After the trials: close every run still RUNNING (interrupted: KILLED, resumable; else the process
        died without Tune noticing: lost). Returns how many."""
        n = 0
        for run in self.tracker.find_runs(self.parent_id):
            if run.status != RUNNING:
                continue
            tune_id = run.tags.get(Tag.TUNE_ID, run.run_id)
            self._open.setdefault(tune_id, _Open(run.run_id, None, 0, time.time()))
            if interrupted:
                why = "the sweep was interrupted: --resume continues this trial"
                self._close(tune_id, Outcome.INTERRUPTED, {Tag.ERROR: why})
            else:
                self._close(tune_id, Outcome.LOST, {Tag.ERROR: "the trial's process ended without a result"})
            n += 1
        return n

    def mark_lost(self, run: RunRecord, why: str) -> None:
        """A run whose trial the restored sweep does not know (it started after Tune's last save): closed as
        lost until its Optuna trial, asked again, adopts it."""
        tune_id = run.tags.get(Tag.TUNE_ID, run.run_id)
        self._open.setdefault(tune_id, _Open(run.run_id, None, 0, time.time()))
        self._close(tune_id, Outcome.LOST, {Tag.ERROR: why})

    def _close(self, tune_id: str, outcome: Outcome, tags: Mapping[str, str]) -> Outcome:
        """The one place a run ends."""
        entry = self._open.pop(tune_id)
        self.tracker.set_tags(entry.run_id, {Tag.OUTCOME: outcome.value, **tags})
        self.tracker.log_metrics(entry.run_id, {"time/trial_s": time.time() - entry.started}, step=0)
        self.tracker.end(entry.run_id, outcome.status)
        self.finished.append(entry.run_id)
        return outcome

    def _record_final(
        self,
        entry: _Open,
        result: Mapping[str, Any],
        sample: Mapping[str, Any],
        network: dict[str, Any] | None,
    ) -> None:
        """A completed trial's scores (with intervals), curves, config, summary and network."""
        import io

        import torch
        import yaml

        from mrmp.tracking import rate_step

        from .trial import PAYLOAD, curve_points

        payload = result[PAYLOAD]
        epoch = int(result.get("epoch", 0))
        scores = payload["scores"]
        self.tracker.log_metrics(entry.run_id, scores, step=epoch)
        rows = payload["rates"]
        series = []
        for row in rows:
            if row["rate"] <= 0:
                continue
            step = rate_step(row["rate"])
            for split in ("val", "test"):
                if row[split] is not None:
                    series.append((f"curve/{split}_acc", row[split]["mean"], step))
            if row["val"] is not None and any(r["seen"] for r in rows if r["rate"] > 0):
                series.append(
                    (f"curve/val_acc_{'seen' if row['seen'] else 'unseen'}", row["val"]["mean"], step)
                )
        self.tracker.log_series(entry.run_id, series)
        units = payload["units"]
        self.tracker.set_tags(
            entry.run_id,
            {
                Tag.CONFIG_HASH: units[0]["config_hash"],
                Tag.SPLIT_HASH: ",".join(dict.fromkeys(u["split_hash"] for u in units)),
                Tag.SEEDS: json.dumps(sorted({u["config"]["train"]["seed"] for u in units})),
                Tag.NOTE: describe(
                    units[0]["config"]["method"]["name"], self.spec.decode(dict(sample)), scores, self.spec
                ),
            },
        )
        self.tracker.log_metrics(entry.run_id, {"time/train_s": sum(u["train_s"] for u in units)}, step=0)
        header = config_header(self.spec, entry.number, entry.run_id, scores)
        self.tracker.log_artifact(
            entry.run_id, "config.yaml", header + yaml.safe_dump(units[0]["config"], sort_keys=False)
        )
        self.tracker.log_artifact(entry.run_id, "curve.csv", rates_csv(rows))
        method = units[0]["config"]["method"]["name"]
        self._plots.append((entry.run_id, {method: rows}, describe_short(self.spec, scores)))
        for i, u in enumerate(units):
            from mrmp.train import curve_csv

            self.tracker.log_artifact(
                entry.run_id, f"units/curve_{i}.csv", curve_csv(curve_points(u["curve"]))
            )
        summary = {
            "epochs": epoch,
            "scores": scores,
            "units": [{k: v for k, v in u.items() if k != "curve"} for u in units],
        }
        self.tracker.log_artifact(entry.run_id, "summary.json", json.dumps(summary, indent=2, default=str))
        if network is not None:
            buf = io.BytesIO()
            torch.save(network, buf)
            self.tracker.log_artifact(entry.run_id, "model.pt", buf.getvalue())

    def take_plots(self) -> list[tuple[str, dict[str, Any], str]]:
        """The curve plots (run id, rows, title) of the runs completed since the last call, to be drawn as a
        view once their records are stored (by these runs or by another `TrialRuns` on the same store)."""
        plots, self._plots = self._plots, []
        return plots

    def draw(self, plots: list[tuple[str, dict[str, Any], str]]) -> None:
        """Log the curve plot (curve.png) of each of `plots` (from `take_plots`): a view, drawn after the run's
        record is stored and closed, so that matplotlib's fraction of a second holds up no trial."""
        from mrmp.tracking.plots import estimates_png

        for run_id, rows, title in plots:
            self.tracker.log_artifact(run_id, "curve.png", estimates_png(rows, title=title))

    def take_finished(self) -> list[str]:
        out, self.finished = self.finished, []
        return out
