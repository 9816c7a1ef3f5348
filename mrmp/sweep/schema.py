"""The sweep file's `sweep:` section as typed dataclasses, validated by `mrmp.validation.build` (every problem at
once, `file:line: key: message`, did-you-mean). The `base:` section is a run config (the core's schema) and
`space:` is parsed by `mrmp.sweep.space`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mrmp.tracking import BACKENDS
from mrmp.validation import spec

SEARCHERS = ("tpe", "nsga2", "random", "grid")
RETRY_KINDS = ("error", "nonfinite")  # what a failed trial may be retried for (lost processes always are)
TOP_LEVEL = ("sweep", "base", "space")
SECTIONS = ("data", "model", "method", "train", "eval")


@dataclass
class Scheduler:
    """Early stopping: ASHA over the first objective, in epochs (`scheduler: asha` is `{name: asha}`)."""

    name: str = field(default="none", metadata=spec(choices=("asha", "none")))
    grace_period: int | None = field(
        default=None, metadata=spec(ge=1, help="epochs before a trial may be stopped (default report_every)")
    )
    reduction_factor: float = field(default=2.0, metadata=spec(gt=1))
    max_t: int | None = field(default=None, metadata=spec(ge=1, help="epoch cap (default: none)"))

    @classmethod
    def shorthand(cls, value: Any) -> dict[str, Any] | None:
        return {"name": value} if isinstance(value, str) else None


@dataclass
class ObjectiveSpec:
    metric: str = field(default="acc@targets", metadata=spec(help="see mrmp.sweep.objectives"))
    mode: str = field(default="max", metadata=spec(choices=("max", "min")))

    @classmethod
    def shorthand(cls, value: Any) -> dict[str, Any] | None:
        return {"metric": value} if isinstance(value, str) else None


@dataclass
class Resources:
    cpu: float = field(default=1.0, metadata=spec(gt=0, help="CPUs per trial"))
    gpu: float = field(
        default=0.0, metadata=spec(ge=0, help="GPUs per trial; a share such as 0.25 packs four")
    )


@dataclass
class Storage:
    root: str = field(default="runs/sweeps", metadata=spec(help="folder of the sweep's files: <root>/<name>"))
    optuna: str | None = field(
        default=None, metadata=spec(help="Optuna RDB URL (default sqlite in the folder)")
    )
    tune: str | None = field(
        default=None,
        metadata=spec(help="Tune's experiments: a path or s3://... (default <root>/<name>/tune)"),
    )


@dataclass
class Tracking:
    backend: str = field(default="mlflow", metadata=spec(choices=BACKENDS))
    uri: str | None = field(
        default=None, metadata=spec(help="MLflow URI (default sqlite in the sweep folder)")
    )
    experiment: str | None = field(default=None, metadata=spec(help="MLflow experiment (default: the name)"))


@dataclass
class SweepSection:
    name: str | None = field(default=None, metadata=spec(help="sweep name (default: the file's stem)"))
    trials: int | None = field(default=None, metadata=spec(ge=1, help="trials (grid: the grid's size)"))
    concurrency: int = field(default=2, metadata=spec(ge=1, help="trials running at once"))
    searcher: str = field(default="tpe", metadata=spec(choices=SEARCHERS))
    seed: int = field(default=0, metadata=spec(help="searcher seed"))
    scheduler: Scheduler = field(default_factory=Scheduler)
    objectives: list[ObjectiveSpec] = field(default_factory=lambda: [ObjectiveSpec()])
    target_rates: list[float] | None = field(
        default=None,
        metadata=spec(
            ge=0.0,
            lt=1.0,
            help="rates the methods are compared at: single-rate methods train at each, others are read there",
        ),
    )
    rate_tolerance: float = field(
        default=0.01,
        metadata=spec(
            gt=0.0,
            le=1.0,
            help="a completed trial whose observed rate misses a rate its objectives score by more than this "
            "(in every repeat's worst case; 0.01 = 1 point) ranks after every trial that holds its rates, and "
            "Optuna is told it is infeasible: a network pruned less than asked would otherwise win on accuracy",
        ),
    )
    resources: Resources = field(default_factory=Resources)
    seeds: list[int] | None = field(default=None, metadata=spec(help="repeats over train.seed"))
    repeats: dict[str, list[Any]] | None = field(
        default=None, metadata=spec(help="run-config key -> values: every trial trains each combination")
    )
    report_every: int = field(
        default=25, metadata=spec(ge=1, help="epochs between reports (what ASHA reads)")
    )
    checkpoint_every: int = field(
        default=60, metadata=spec(ge=0, help="seconds between a trial's checkpoints (0: at every report)")
    )
    max_failures: int = field(default=1, metadata=spec(ge=0, help="retries of a failed trial"))
    retry_on: list[str] = field(
        default_factory=lambda: ["error"],
        metadata=spec(choices=RETRY_KINDS, help="failures worth a retry: error, nonfinite (a NaN/inf loss)"),
    )
    keep_checkpoints: int = field(default=2, metadata=spec(ge=1))
    storage: Storage = field(default_factory=Storage)
    tracking: Tracking = field(default_factory=Tracking)
