"""The logger interface every sweep writes through, and the backend-free pieces (null tracker, curve logging).

A `Tracker` is explicit about runs: every call names its run id, so one tracker (one writer) can serve many
trials at once. Backends implement a few primitives; `log_curve` and `start_child` are built on them once, here.
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)

# Tags mrmp sets on its runs (MLflow's own parent tag is added by the MLflow backend).
TAG_KIND = "mrmp.kind"  # "sweep" | "trial"
TAG_KEY = "mrmp.key"  # stable identity of a child inside its parent (the Tune trial id)
TAG_PARENT = "mrmp.parent"
TAG_FORMER_KEY = "mrmp.former_key"  # the key a child had before `find_child` gave it a new one


def rate_step(rate: float) -> int:
    """The metric step of a pruning rate: per mille, so MLflow plots accuracy against rate."""
    return int(round(rate * 1000))


@dataclass
class RunRecord:
    """What a tracker knows about one run: enough for `export` and `report`."""

    run_id: str
    name: str
    status: str
    parent_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each key (highest step)


class Tracker(abc.ABC):
    """Runs, params, metrics, artifacts. Implementations: MLflow, local files, null, remote (a Ray actor)."""

    # --- primitives -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self, name: str, parent_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """A new RUNNING run; returns its id."""

    @abc.abstractmethod
    def set_status(self, run_id: str, status: str) -> None:
        """Set a run's status (a terminal status also sets its end time)."""

    @abc.abstractmethod
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag (no error when the run does not have it)."""

    @abc.abstractmethod
    def log_series(self, run_id: str, points: Iterable[tuple[str, float, int]]) -> None:
        """Many metric points at once: (key, value, step)."""

    @abc.abstractmethod
    def log_artifact(self, run_id: str, name: str, data: bytes | str) -> None:
        """Store a file under the run's artifacts (`name` may contain '/')."""

    @abc.abstractmethod
    def find_runs(
        self, parent_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> list[RunRecord]:
        """Runs of this tracker's experiment, optionally only children of `parent_id` with matching tags."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord: ...

    @abc.abstractmethod
    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric, in logging order."""

    @abc.abstractmethod
    def read_artifact(self, run_id: str, name: str) -> bytes: ...

    # --- built on the primitives ----------------------------------------------------------------------------
    def start_parent(
        self, name: str, tags: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None
    ) -> str:
        run_id = self.create_run(name, None, _strs(tags))
        if params:
            self.log_params(run_id, params)
        return run_id

    def find_child(
        self, parent_id: str, key: str, adopt: Mapping[str, str] | None = None
    ) -> RunRecord | None:
        """The child of `parent_id` identified by `key`, or None.

        With `adopt`: when no child has `key`, the oldest child whose tags match `adopt` takes `key` over (a
        trial that lost its id, re-proposed under a new one, continues its run). Through the tracking actor
        this runs as one call, so two trials never adopt the same run."""
        found = self.find_runs(parent_id, {TAG_KEY: key})
        if found:
            return found[0]
        orphans = self.find_runs(parent_id, adopt) if adopt else []
        if not orphans:
            return None
        run = orphans[0]
        self.set_tags(run.run_id, {TAG_KEY: key, TAG_FORMER_KEY: run.tags.get(TAG_KEY, "")})
        return self.get_run(run.run_id)

    def start_child(
        self,
        parent_id: str,
        name: str,
        key: str,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """The child of `parent_id` identified by `key`: reopened (RUNNING again) if it exists, else created.

        A retried or resumed trial therefore keeps logging into the same run."""
        found = self.find_runs(parent_id, {TAG_KEY: key})
        tags = {**_strs(tags), TAG_KEY: key}
        if found:
            run_id = found[0].run_id
            self.set_status(run_id, RUNNING)
            self.set_tags(run_id, tags)
        else:
            run_id = self.create_run(name, parent_id, tags)
        if params:
            self.log_params(run_id, params)
        return run_id

    def log_metrics(self, run_id: str, metrics: Mapping[str, float | None], step: int) -> None:
        """Numeric values only; None (undefined) is skipped."""
        self.log_series(run_id, [(k, float(v), step) for k, v in metrics.items() if v is not None])

    def log_curve(self, run_id: str, points: Sequence[Any], plot_title: str | None = None) -> None:
        """The accuracy-vs-rate curve: metrics `acc` (every point), `acc_seen` / `acc_unseen` (each point in
        exactly one), step = rate in per mille; plus `curve.csv` and `curve.png` artifacts."""
        from mrmp.train import curve_csv

        series = []
        for p in points:
            step = rate_step(p.rate)
            series.append(("acc", float(p.test_accuracy), step))
            series.append(("acc_seen" if p.seen else "acc_unseen", float(p.test_accuracy), step))
        self.log_series(run_id, series)
        self.log_artifact(run_id, "curve.csv", curve_csv(list(points)))
        from .plots import curves_png

        self.log_artifact(run_id, "curve.png", curves_png({plot_title or "accuracy": list(points)}))

    def end(self, run_id: str, status: str = FINISHED) -> None:
        if status not in STATUSES or status == RUNNING:
            raise ValueError(f"end status must be one of FINISHED, FAILED, KILLED; got {status!r}")
        self.set_status(run_id, status)

    def flush(self) -> None:  # noqa: B027  (optional hook: synchronous backends store at once)
        """Wait until everything logged so far is stored (a no-op for synchronous backends)."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections and helper processes."""


class NullTracker(Tracker):
    """Records nothing (sweeps with `tracking.backend: none`); run ids are still unique."""

    def create_run(self, name, parent_id=None, tags=None) -> str:
        return uuid.uuid4().hex

    def set_status(self, run_id, status) -> None:
        pass

    def log_params(self, run_id, params) -> None:
        pass

    def set_tags(self, run_id, tags) -> None:
        pass

    def delete_tag(self, run_id, key) -> None:
        pass

    def log_series(self, run_id, points) -> None:
        pass

    def log_artifact(self, run_id, name, data) -> None:
        pass

    def log_curve(self, run_id, points, plot_title=None) -> None:
        pass  # skip building the CSV and the plot

    def find_runs(self, parent_id=None, tags=None) -> list[RunRecord]:
        return []

    def get_run(self, run_id) -> RunRecord:
        raise KeyError(f"the null tracker keeps no runs (asked for {run_id})")

    def metric_history(self, run_id, key) -> list[tuple[int, float]]:
        return []

    def read_artifact(self, run_id, name) -> bytes:
        raise FileNotFoundError(f"the null tracker keeps no artifacts (asked for {name})")


def param_value(value: Any) -> str:
    """Params are strings: lists and mappings as compact JSON, the rest as str()."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _strs(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): param_value(v) for k, v in (tags or {}).items()}
