"""Scores of an accuracy-vs-rate curve: what a sweep optimises and what MLflow records as summary metrics.

Rate 0 (the dense network) is left out of every pruned-range score; `dense` is its accuracy.

| metric         | value                                                                       |
|----------------|-----------------------------------------------------------------------------|
| `auc`          | area under accuracy vs rate over the pruned rates, divided by their span     |
|                | (trapezoids; so a mean accuracy in [0, 1], comparable across rate grids)     |
| `mean`         | mean accuracy over the pruned rates                                         |
| `mean_seen`    | ... over the pruned rates the training targeted                             |
| `mean_unseen`  | ... over the pruned rates it did not                                        |
| `worst_unseen` | the lowest accuracy at an unseen pruned rate                                |
| `dense`        | accuracy at rate 0                                                          |
| `acc@R`        | accuracy at rate R (R must be one of `eval.rates`)                          |
| `acc@target`   | accuracy at the method's own `method.rate`                                  |

A metric a curve cannot define (no unseen rate; the dense method, whose curve is rate 0 only) is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any


def _at(points: Sequence[Any], rate: float | None) -> float | None:
    if rate is None:
        return None
    for p in points:
        if abs(p.rate - rate) < 1e-9:
            return float(p.val_accuracy)
    return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def auc(points: Sequence[Any]) -> float | None:
    pts = sorted((p for p in points if p.rate > 0), key=lambda p: p.rate)
    if not pts:
        return None
    if len(pts) == 1:
        return float(pts[0].val_accuracy)
    area = sum((b.rate - a.rate) * (a.val_accuracy + b.val_accuracy) / 2 for a, b in zip(pts, pts[1:]))
    return area / (pts[-1].rate - pts[0].rate)


def curve_metrics(points: Sequence[Any], target_rate: float | None = None) -> dict[str, float | None]:
    """Every named score of a curve (keys as in MLflow: `acc_at_target`, not `acc@target`)."""
    pruned = [p for p in points if p.rate > 0]
    seen = [float(p.val_accuracy) for p in pruned if p.seen]
    unseen = [float(p.val_accuracy) for p in pruned if not p.seen]
    return {
        "auc": auc(points),
        "mean": _mean([float(p.val_accuracy) for p in pruned]),
        "mean_seen": _mean(seen),
        "mean_unseen": _mean(unseen),
        "worst_unseen": min(unseen) if unseen else None,
        "dense": _at(points, 0.0),
        "acc_at_target": _at(points, target_rate),
    }


def metric_value(metric: str, points: Sequence[Any], target_rate: float | None = None) -> float | None:
    """One objective (`auc`, `acc@0.9`, `acc@target`, ...) of a curve."""
    head, at, tail = metric.partition("@")
    if at:
        return _at(points, target_rate if tail == "target" else float(tail))
    return curve_metrics(points, target_rate)[metric]


def mean_curve(curves: Sequence[Sequence[Any]]) -> list[Any]:
    """The point-wise mean accuracy of several curves (a trial's repeats) over the rates they all have.

    Other columns (observed rate, disconnected, seen) come from the first curve."""
    if len(curves) == 1:
        return list(curves[0])
    by_rate = [{round(p.rate, 9): p for p in c} for c in curves]
    common = [r for r in by_rate[0] if all(r in c for c in by_rate[1:])]
    return [
        replace(
            by_rate[0][r],
            val_accuracy=sum(float(c[r].val_accuracy) for c in by_rate) / len(by_rate),
            test_accuracy=sum(float(c[r].test_accuracy) for c in by_rate) / len(by_rate),
        )
        for r in common
    ]
