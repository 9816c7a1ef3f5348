"""One sweep trial, in its worker process: train every unit of a sample in lockstep and report what happened.

A trial builds one `Trainer` per unit (each repeat, times each target rate for a single-rate method) once, and
advances them `report_every` epochs at a time with `Trainer.fit(until_epoch=...)`: nothing is rebuilt between
reports. At each report it sends the scheduler and the driver one result: the epochs' training metrics (means
over units), the objectives on the validation split, and, at the end, every unit's curve on validation and test
and the trial's scores with their intervals over repeats. A checkpoint (every unit's exact state) goes with a
report when `sweep.checkpoint_every` seconds have passed, and always with the last one, which also carries the
first unit's trained network.

The trial never writes to the tracking store: the driver does (`mrmp.sweep.lifecycle`), from these results.
A loss that turns NaN or infinite ends the trial with the outcome `diverged` in its last result, unless
`sweep.retry_on` names `nonfinite`: then it raises, and Ray Tune retries it from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mrmp.train import CurvePoint, PreparedData, Trainer

from .objectives import (
    RATE_MISS,
    RATE_OK,
    merge_units,
    metric_value,
    objective_rates,
    rate_miss,
    score_trial,
    summary_metrics,
    within,
)
from .spec import SweepSpec, Unit, data_key

PAYLOAD = "mrmp"  # the result key holding everything the driver records
OUTCOME = "mrmp_outcome"  # running | completed | diverged: what the searcher and the driver read
EPOCH = "epoch"  # the scheduler's time attribute


class NonFiniteLoss(RuntimeError):
    """A unit's loss turned NaN or infinite, and `sweep.retry_on` asks for a retry."""


class Session(Protocol):
    """What a trial needs from its scheduler: its last checkpoint, and a way to report."""

    def checkpoint(self) -> dict[str, Any] | None: ...

    def report(self, result: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Report `result`; with `state`, a checkpoint of it."""


@dataclass
class TrialContext:
    """What every trial gets from the driver (picklable: Tune ships it once through the object store)."""

    spec: SweepSpec
    data: dict[str, Any]  # data_key -> PreparedData, or a Ray ObjectRef to one
    # Tune trial id -> last result, for trials a restored part may hold as unfinished although their runs
    # ended (they ended after Tune's last save, and the driver was killed): they report it and train nothing
    ended: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def dataset(self, cfg: Any) -> PreparedData:
        value = self.data[data_key(cfg.data)]
        if isinstance(value, PreparedData):
            return value
        import ray

        data = ray.get(value)  # zero-copy read-only arrays: copy them (kB to MB) so torch may own them
        fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
        return dataclasses.replace(
            data, **{k: np.array(v) for k, v in fields.items() if isinstance(v, np.ndarray)}
        )


def curve_rows(points: Sequence[CurvePoint]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(p) for p in points]


def curve_points(rows: Sequence[dict[str, Any]]) -> list[CurvePoint]:
    return [CurvePoint(**r) for r in rows]


class Trial:
    """The units of one sample and their trainers; `step()` advances them to the next report."""

    def __init__(self, spec: SweepSpec, sample: dict[str, Any], ctx: TrialContext):
        self.spec = spec
        self.assignment = spec.decode(sample)
        self.units: list[tuple[Unit, Any]] = spec.configs(self.assignment, f"{spec.path} (trial)")
        self.trainers = [Trainer(cfg, ctx.dataset(cfg)) for _, cfg in self.units]
        self.trained = spec.trained_at(self.assignment)
        self.reported = 0  # the last epoch whose metrics went out
        self.metrics = summary_metrics(spec.objectives, spec.targets, self.trained is None)

    @property
    def total_epochs(self) -> int:
        return max(t.total_epochs for t in self.trainers)

    @property
    def epoch(self) -> int:
        return max(t.epoch for t in self.trainers)

    def state(self) -> dict[str, Any]:
        return {"reported": self.reported, "units": [t.state() for t in self.trainers]}

    def load(self, state: dict[str, Any]) -> None:
        for t, s in zip(self.trainers, state["units"]):
            t.load_state(s)
        self.reported = int(state["reported"])

    def advance(self) -> None:
        """Train every unit to the next report boundary (or to the end)."""
        every = self.spec.report_every
        until = min((self.epoch // every + 1) * every, self.total_epochs)
        for t in self.trainers:
            t.fit(until_epoch=until)

    @property
    def diverged(self) -> str | None:
        for (unit, _), t in zip(self.units, self.trainers):
            if t.diverged:
                return f"{t.diverged} [{unit.label}]" if len(self.units) > 1 else t.diverged
        return None

    @property
    def done(self) -> bool:
        return all(t.done for t in self.trainers)

    def epoch_rows(self) -> list[dict[str, float]]:
        """Training metrics of the epochs since the last report, averaged over units."""
        by_epoch: dict[int, list[dict[str, float]]] = {}
        for t in self.trainers:
            for row in t.history:
                if row["epoch"] > self.reported:
                    by_epoch.setdefault(int(row["epoch"]), []).append(row)
        return [
            {"epoch": e, **{k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "epoch"}}
            for e, rows in sorted(by_epoch.items())
        ]

    def _repeats(self, curves: Sequence[Sequence[CurvePoint]]) -> list[list[CurvePoint]]:
        """Units' curves grouped into one merged curve per repeat."""
        groups: dict[int, list[Sequence[CurvePoint]]] = {}
        per_repeat = len(self.units) // max(1, len(self.spec.repeat_list()))
        for i, c in enumerate(curves):
            groups.setdefault(i // per_repeat, []).append(c)
        return [merge_units(g) for _, g in sorted(groups.items())]

    def objective_values(self) -> dict[str, float]:
        """The objectives on the validation split now (means over repeats), from as few rates as they need."""
        rates = sorted({r for o in self.spec.objectives for r in self._rates_for(o.metric)})
        curves = []
        for t in self.trainers:
            acc = t.validation_accuracy(rates)
            curves.append([CurvePoint(r, a, float("nan"), r, r, 0, 0) for r, a in sorted(acc.items())])
        repeats = self._repeats(curves)
        out = {}
        for o in self.spec.objectives:
            values = [metric_value(o.metric, c, self.spec.targets) for c in repeats]
            ok = values and all(v is not None for v in values)
            out[o.key] = sum(values) / len(values) if ok else o.worst()
        return out

    def _rates_for(self, metric: str) -> list[float]:
        return objective_rates([metric], self.spec.targets, self.trainers[0].cfg.eval.rates)

    def final(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload, objective values) at the end: every unit's curve, the trial's scores with intervals."""
        curves = [t.evaluate() for t in self.trainers]
        repeats = self._repeats(curves)
        scores = score_trial(repeats, self.metrics, self.spec.targets)
        flat = scores.flat({f"{split}_{o.name}" for o in self.spec.objectives for split in ("val", "test")})
        scored = {r for o in self.spec.objectives for r in self._rates_for(o.metric)}
        flat[RATE_MISS] = rate_miss(repeats, sorted(scored))
        flat[RATE_OK] = float(within(flat[RATE_MISS], self.spec.section.rate_tolerance))
        values = {o.key: flat.get(o.key, o.worst()) for o in self.spec.objectives}
        payload = {
            "units": [
                {
                    "label": unit.label,
                    "repeat": unit.repeat,
                    "target": unit.target,
                    "config": cfg.to_dict(),
                    "config_hash": cfg.hash(),
                    "split_hash": t.data.split_hash(),
                    "sizes": {
                        "train": len(t.data.y_train),
                        "val": len(t.data.y_val),
                        "test": len(t.data.y_test),
                    },
                    "curve": curve_rows(c),
                    "train_s": round(sum(h.get("epoch_time_s", 0.0) for h in t.history), 3),
                }
                for (unit, cfg), t, c in zip(self.units, self.trainers, curves)
            ],
            "scores": flat,
            "rates": [
                {**{k: v for k, v in row.items() if k not in ("val", "test")}, **_estimates(row)}
                for row in scores.curve
            ],
        }
        return payload, values

    def network(self) -> dict[str, Any]:
        """The first unit's trained network, in `mrmp train`'s model.pt format."""
        t = self.trainers[0]
        return {"model": t.model.state_dict(), "method": t.method.state_dict(), "config": t.cfg.to_dict()}


def _estimates(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        e = row[split]
        out[split] = None if e is None else {"mean": e.mean, "std": e.std, "lo": e.lo, "hi": e.hi, "n": e.n}
    return out


def run_trial(
    sample: dict[str, Any], ctx: TrialContext, session: Session, host: dict[str, str] | None = None
) -> None:
    """Train one sample of the sweep to its end (or divergence), reporting as it goes."""
    spec = ctx.spec
    trial = Trial(spec, sample, ctx)
    saved = session.checkpoint()
    if saved is not None:
        trial.load(saved)
    last_checkpoint = time.monotonic()
    first = {
        "host": host or {},
        "unit_labels": [u.label for u, _ in trial.units],
        "epochs": trial.total_epochs,
        "started": time.time(),  # when training (re)starts: what the sweep's start-up and overhead are measured by
    }
    while True:
        trial.advance()
        rows = trial.epoch_rows()
        epoch = trial.epoch
        result: dict[str, Any] = {EPOCH: epoch, OUTCOME: "running"}
        payload: dict[str, Any] = {"rows": rows, **(first or {})}
        first = None
        if why := trial.diverged:
            if "nonfinite" in spec.section.retry_on:
                raise NonFiniteLoss(why)
            worst = {o.key: o.worst() for o in spec.objectives}  # Tune refuses a result without its metric
            session.report({**result, **worst, OUTCOME: "diverged", PAYLOAD: {**payload, "error": why}}, None)
            return
        if trial.done:
            final, values = trial.final()
            trial.reported = epoch
            state = {**trial.state(), "network": trial.network()}
            done = {**result, **values, RATE_MISS: final["scores"][RATE_MISS], OUTCOME: "completed"}
            session.report({**done, PAYLOAD: {**payload, **final}}, state)
            return
        values = trial.objective_values()
        trial.reported = epoch
        every = spec.section.checkpoint_every
        due = time.monotonic() - last_checkpoint >= every
        if due:
            last_checkpoint = time.monotonic()
        session.report({**result, **values, PAYLOAD: payload}, trial.state() if due else None)
