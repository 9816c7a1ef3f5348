"""Where sweeps record runs: the `Tracker` interface and its backends (MLflow, local files, null, remote).

Only this package and `mrmp.sweep` import MLflow, always lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import (
    FAILED,
    FINISHED,
    KILLED,
    RUNNING,
    NullTracker,
    RunRecord,
    Tracker,
    rate_step,
)

BACKENDS = ("mlflow", "local", "none")


@dataclass(frozen=True)
class TrackerSpec:
    """How to open a tracker: picklable, so any thread or process (a sweep's writer threads, Tune's saved
    callbacks) can open the same one."""

    backend: str  # mlflow | local | none
    uri: str | None = None  # mlflow: tracking URI; local: the root folder
    experiment: str = "mrmp"
    artifact_location: str | None = None  # mlflow: where a new experiment keeps artifacts

    def create(self) -> Tracker:
        if self.backend == "mlflow":
            from .mlflow_backend import MlflowTracker

            return MlflowTracker(self.uri or "", self.experiment, self.artifact_location)
        if self.backend == "local":
            from .local import LocalTracker

            return LocalTracker(self.uri or ".")
        if self.backend == "none":
            return NullTracker()
        raise ValueError(f"unknown tracking backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")

    @property
    def single_writer_file(self) -> bool:
        """True when the store is a file on this machine (sqlite or local files), not a server."""
        if self.backend == "local":
            return True
        return self.backend == "mlflow" and (self.uri or "").startswith("sqlite:")


__all__ = [
    "BACKENDS",
    "FAILED",
    "FINISHED",
    "KILLED",
    "RUNNING",
    "NullTracker",
    "RunRecord",
    "Tracker",
    "TrackerSpec",
    "rate_step",
]
