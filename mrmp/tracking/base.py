"""The logger interface every sweep writes through, and the null tracker.

A `Tracker` is explicit about runs: every call names its run id, so one tracker (one writer: the sweep's
driver) serves every trial. Backends implement a few primitives; what a trial's run holds is decided once, in
`mrmp.sweep.lifecycle`.
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)

TAG_PARENT = "mrmp.parent"  # a child run's parent, in every backend (MLflow also nests by its own tag)


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
    start_time: float | None = None  # seconds since the epoch, when the run was created
    end_time: float | None = None  # when it last ended (None if it never did)


class Tracker(abc.ABC):
    """Runs, params, metrics, artifacts. Implementations: MLflow, local files, null."""

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
    def log_metrics(self, run_id: str, metrics: Mapping[str, float | None], step: int) -> None:
        """Numeric values only; None (undefined) is skipped."""
        self.log_series(run_id, [(k, float(v), step) for k, v in metrics.items() if v is not None])

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
