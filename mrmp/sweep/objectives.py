"""What a sweep optimises, and how a trial's curves become scores with intervals.

Objectives read the **validation** split; the same scores on the test split are recorded beside them
(`test_*`), never used to choose. A trial's score is the mean over its repeats (seeds, folds), with the sample
std and a 95 % t interval.

Like with like. A single-rate method (SRMP, TCMP, MP with fine-tuning; `trained_rates(params)` is a tuple) is
scored only at the rate it trained for; a method read at any rate (MRMP, MP without fine-tuning, random) is read
wherever asked. When a sweep names `target_rates`, every trial of a single-rate method with a `rate` key trains
one network per target rate (per repeat), and every other method is read at the targets: the methods meet there.

| metric         | value (validation; `test_<metric>` beside it)                     | defined for                  |
|----------------|--------------------------------------------------------------------|------------------------------|
| `acc@targets`  | mean accuracy over the sweep's `target_rates`                      | every method that trains or is read at them |
| `acc@R`        | accuracy at rate R                                                 | methods read at any rate; single-rate methods trained at R |
| `auc`          | area under accuracy vs rate over the pruned grid rates ÷ their span | methods read at any rate     |
| `mean`, `mean_seen`, `mean_unseen` | mean accuracy over the pruned grid rates; those the training targeted; the others | methods read at any rate |
| `worst_unseen` | the lowest accuracy at an unseen pruned rate                       | methods read at any rate     |
| `dense`        | accuracy at rate 0                                                 | methods read at any rate, the dense network |

A sweep whose objective is undefined for a method of its space is refused at validation.

Rate fidelity. A network pruned less than asked scores higher at "its" rate, so accuracy alone would reward a
configuration that misses its rates. Each completed trial records `rate_miss`, the largest |observed − asked|
rate over the pruned rates its objectives read and over its repeats, and `rate_ok` (1 when within
`sweep.rate_tolerance`); selection ranks trials that miss after those that hold (`results.ranked`), the frontier
skips points that miss, and Optuna is told such a trial is infeasible (`searcher`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mrmp.stats import Estimate, estimate
from mrmp.train import CurvePoint

GRID_METRICS = ("auc", "mean", "mean_seen", "mean_unseen", "worst_unseen")
METRICS = ("acc@targets", "acc@RATE", *GRID_METRICS, "dense")
SPLITS = ("val", "test")
RATE_MISS = "rate_miss"  # a completed trial's largest |observed − asked| rate where it is scored (a fraction)
RATE_OK = "rate_ok"  # 1.0 when that miss is within sweep.rate_tolerance, else 0.0


@dataclass(frozen=True)
class Objective:
    """A metric (as written in the sweep file) and a direction; always computed on the validation split."""

    metric: str
    mode: str = "max"

    @property
    def name(self) -> str:
        """The metric as a key (MLflow forbids '@'): `acc@0.9` -> `acc_at_0.9`."""
        return self.metric.replace("@", "_at_")

    @property
    def key(self) -> str:
        """What the searcher and scheduler read: the validation score."""
        return f"val_{self.name}"

    @property
    def rate(self) -> float | None:
        """R of `acc@R`."""
        head, _, tail = self.metric.partition("@")
        return float(tail) if head == "acc" and tail and tail != "targets" else None

    @property
    def grid(self) -> bool:
        """Whether it reads the whole evaluation grid (methods read at any rate only)."""
        return self.metric in GRID_METRICS

    def worst(self) -> float:
        """The value a trial without a score gets: the worst accuracy there is."""
        return 0.0 if self.mode == "max" else 1.0


def metric_problem(metric: str) -> str | None:
    """Why `metric` is not a metric, or None."""
    from mrmp.validation import suggest

    if metric in GRID_METRICS or metric in ("dense", "acc@targets"):
        return None
    head, at, tail = metric.partition("@")
    if head == "acc" and at:
        try:
            r = float(tail)
        except ValueError:
            r = -1.0
        if 0.0 <= r < 1.0:
            return None
        hint = " (name the rates in sweep.target_rates and use acc@targets)" if tail == "target" else ""
        return f"{metric!r}: the rate after '@' must be a number in [0, 1) or `targets`{hint}"
    return f"unknown metric {metric!r}{suggest(metric, METRICS)}; choose one of: {', '.join(METRICS)}"


def trained_at(trained: tuple[float, ...] | None, settable: bool, targets: Sequence[float] | None):
    """The rates a sample's networks are trained for: a single-rate method with a `rate` key trains at the
    sweep's targets when there are some. None: one network read at any rate."""
    if trained is None:
        return None
    return tuple(targets) if targets and settable else trained


def undefined(
    objective: Objective, trained: tuple[float, ...] | None, targets: Sequence[float] | None
) -> str | None:
    """Why `objective` cannot score a method trained at `trained` (None: read at any rate), or None."""
    if objective.metric == "acc@targets":
        if not targets:
            return "acc@targets needs sweep.target_rates"
        if trained is not None and not set(targets) <= set(trained):
            return f"it is trained for rate {_rates(trained)} only, not at the targets {_rates(targets)}"
        return None
    if objective.rate is not None:
        if trained is not None and not any(abs(objective.rate - t) < 1e-9 for t in trained):
            hint = "; name sweep.target_rates to train it where you compare" if trained != (0.0,) else ""
            return (
                f"it is trained for rate {_rates(trained)} only: scoring it at {objective.rate:g} would judge a "
                f"network at a rate it never trained for{hint}"
            )
        return None
    if objective.metric == "dense":
        return None if trained is None or trained == (0.0,) else "it has no network at rate 0 to score"
    if trained is not None:
        return (
            f"{objective.metric} reads the whole rate grid, but it is trained for rate {_rates(trained)} only; "
            "compare at sweep.target_rates with acc@targets (or acc@R)"
        )
    return None


def _rates(rates: Sequence[float]) -> str:
    return ", ".join(f"{r:g}" for r in rates)


# --- curves -> scores ---------------------------------------------------------------------------------------
def _acc(p: CurvePoint, split: str) -> float | None:
    return p.val_accuracy if split == "val" else p.test_accuracy


def _at(points: Sequence[CurvePoint], rate: float, split: str) -> float | None:
    for p in points:
        if abs(p.rate - rate) < 1e-9:
            return _acc(p, split)
    return None


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def auc(points: Sequence[CurvePoint], split: str = "val") -> float | None:
    pts = sorted((p for p in points if p.rate > 0), key=lambda p: p.rate)
    if not pts or any(_acc(p, split) is None for p in pts):
        return None
    if len(pts) == 1:
        return _acc(pts[0], split)
    area = sum((b.rate - a.rate) * (_acc(a, split) + _acc(b, split)) / 2 for a, b in zip(pts, pts[1:]))
    return area / (pts[-1].rate - pts[0].rate)


def metric_value(
    metric: str, points: Sequence[CurvePoint], targets: Sequence[float] | None, split: str = "val"
) -> float | None:
    """One metric of one repeat's curve (None where the curve does not define it)."""
    pruned = [p for p in points if p.rate > 0]
    if metric == "acc@targets":
        return _mean([_at(points, t, split) for t in targets]) if targets else None
    head, at, tail = metric.partition("@")
    if at:
        return _at(points, float(tail), split)
    if metric == "auc":
        return auc(points, split)
    if metric == "mean":
        return _mean([_acc(p, split) for p in pruned]) if pruned else None
    if metric == "mean_seen":
        seen = [_acc(p, split) for p in pruned if p.seen]
        return _mean(seen) if seen else None
    if metric == "mean_unseen":
        unseen = [_acc(p, split) for p in pruned if not p.seen]
        return _mean(unseen) if unseen else None
    if metric == "worst_unseen":
        unseen = [_acc(p, split) for p in pruned if not p.seen]
        return min(unseen) if unseen and None not in unseen else None
    if metric == "dense":
        return _at(points, 0.0, split)
    raise ValueError(f"unknown metric {metric!r}")


def objective_rates(
    metrics: Sequence[str], targets: Sequence[float] | None, grid: Sequence[float]
) -> list[float]:
    """The rates that `metrics` read: acc@R's R, acc@targets' targets, a grid metric's whole grid, dense's 0."""
    rates: set[float] = set()
    for metric in metrics:
        head, at, tail = metric.partition("@")
        if metric == "acc@targets":
            rates.update(targets or [])
        elif at:
            rates.add(float(tail))
        elif metric == "dense":
            rates.add(0.0)
        else:
            rates.update(grid)
    return sorted(rates)


def point_miss(p: CurvePoint) -> float:
    """How far a point's observed rate is from the rate asked, as a fraction (0.01 = 1 point)."""
    return abs(p.observed_rate - p.rate) if p.rate > 0 else 0.0


def within(miss: float, tolerance: float) -> bool:
    """Whether a rate miss is within `sweep.rate_tolerance` (to float rounding: a miss of exactly 1 point is
    within a tolerance of 0.01)."""
    return miss <= tolerance + 1e-9


def rate_miss(repeat_curves: Sequence[Sequence[CurvePoint]], rates: Sequence[float]) -> float:
    """The largest |observed − asked| over the pruned `rates` and the repeats' curves (0.0 when none is
    scored)."""
    wanted = [round(r, 9) for r in rates]
    misses = [point_miss(p) for c in repeat_curves for p in c if round(p.rate, 9) in wanted]
    return max(misses, default=0.0)


def merge_units(curves: Sequence[Sequence[CurvePoint]]) -> list[CurvePoint]:
    """One repeat's curve from the networks it trained: several single-rate networks (one per target rate)
    each contribute the points of their own rate; one network read at any rate is its curve."""
    by_rate: dict[float, CurvePoint] = {}
    for curve in curves:
        for p in curve:
            by_rate.setdefault(round(p.rate, 9), p)
    return [by_rate[r] for r in sorted(by_rate)]


@dataclass
class TrialScores:
    """A trial's scores: each metric's estimate over repeats, on both splits, and the per-rate estimates."""

    metrics: dict[str, Estimate]  # "val_auc", "test_acc_at_targets", ...
    curve: list[
        dict[str, Any]
    ]  # per rate: rate, seen, val/test Estimates, observed/effective rate, disconnected

    def flat(self, with_spread: set[str] | None = None) -> dict[str, float]:
        """Every score as a flat metric dict: `<key>` (the mean) and, for the keys in `with_spread` (all when
        None), `<key>_std`, `<key>_ci95_lo`, `<key>_ci95_hi`."""
        out: dict[str, float] = {}
        for key, e in self.metrics.items():
            out[key] = e.mean
            if e.std is not None and (with_spread is None or key in with_spread):
                out[f"{key}_std"] = e.std
                out[f"{key}_ci95_lo"] = e.lo
                out[f"{key}_ci95_hi"] = e.hi
        return out


def summary_metrics(
    objectives: Sequence[Objective], targets: Sequence[float] | None, multi: bool
) -> list[str]:
    """The metrics worth recording for a trial: its objectives, the targets, and (read at any rate) the grid."""
    names = [o.metric for o in objectives]
    if targets:
        names.append("acc@targets")
        names += [f"acc@{t:g}" for t in targets] if len(targets) > 1 else []
    if multi:
        names += [*GRID_METRICS, "dense"]
    return list(dict.fromkeys(names))


def score_trial(
    repeat_curves: Sequence[Sequence[CurvePoint]], metrics: Sequence[str], targets: Sequence[float] | None
) -> TrialScores:
    """Scores of a trial from each repeat's (merged) curve: every metric on both splits, and per rate."""
    out: dict[str, Estimate] = {}
    for metric in metrics:
        name = metric.replace("@", "_at_")
        for split in SPLITS:
            values = [metric_value(metric, c, targets, split) for c in repeat_curves]
            if values and all(v is not None for v in values):
                out[f"{split}_{name}"] = estimate(values)
    return TrialScores(out, rate_estimates(repeat_curves))


def rate_estimates(repeat_curves: Sequence[Sequence[CurvePoint]]) -> list[dict[str, Any]]:
    """Per rate that every repeat has: the estimates of validation and test accuracy over the repeats, with the
    first repeat's observed/effective rate, the largest disconnected count and the largest |observed − asked|
    rate (`rate_miss`) over the repeats."""
    by_rate = [{round(p.rate, 9): p for p in c} for c in repeat_curves]
    common = [r for r in by_rate[0] if all(r in c for c in by_rate[1:])] if by_rate else []
    rows = []
    for r in sorted(common):
        first = by_rate[0][r]
        row: dict[str, Any] = {
            "rate": first.rate,
            "seen": first.seen,
            "observed_rate": first.observed_rate,
            "effective_rate": first.effective_rate,
            "disconnected": max(c[r].disconnected for c in by_rate),
            "rate_miss": max(point_miss(c[r]) for c in by_rate),
        }
        for split in SPLITS:
            values = [_acc(c[r], split) for c in by_rate]
            row[split] = estimate(values) if None not in values else None
        rows.append(row)
    return rows


def mean_points(rows: Sequence[Mapping[str, Any]]) -> list[CurvePoint]:
    """The per-rate estimates as curve points of their means (for plots and metrics of the mean curve)."""
    return [
        CurvePoint(
            rate=r["rate"],
            val_accuracy=r["val"].mean if r["val"] is not None else None,
            test_accuracy=r["test"].mean if r["test"] is not None else float("nan"),
            observed_rate=r["observed_rate"],
            effective_rate=r["effective_rate"],
            disconnected=r["disconnected"],
            seen=r["seen"],
        )
        for r in rows
    ]


def with_seen(points: Sequence[CurvePoint], seen: Sequence[float]) -> list[CurvePoint]:
    """The points with `seen` set from a rate list (a merged single-rate curve: every target was trained)."""
    return [replace(p, seen=int(any(abs(p.rate - s) < 1e-9 for s in seen))) for p in points]
