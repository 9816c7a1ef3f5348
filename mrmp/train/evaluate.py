"""Accuracy at a grid of pruning rates on the validation and test splits, with the integrity report of every
rate's mask.

Rates are evaluated in batches on a leading mask dimension, and validation and test clips in one batch: one
forward pass serves many rates and both splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from mrmp.methods import PruningMethod
from mrmp.model import integrity

CURVE_COLUMNS = (
    "rate",
    "val_accuracy",
    "test_accuracy",
    "observed_rate",
    "effective_rate",
    "disconnected",
    "seen",
)
# Rates per batched forward on a CPU: as many as keep one chunk's attention scores (rates x samples x heads x
# V x V floats) near this size (2 MB: cache-resident; bigger stacks were slower per rate, measured), within the
# caller's memory cap (`max_elements`, the only limit on other devices).
CHUNK_ELEMENTS = 1 << 19


@dataclass
class CurvePoint:
    """One rate of a curve. `val_accuracy` is None when the run has no validation split."""

    rate: float
    val_accuracy: float | None
    test_accuracy: float
    observed_rate: float
    effective_rate: float
    disconnected: int
    seen: int
    path_exists: bool = True

    def row(self) -> dict[str, float | int]:
        d = asdict(self)
        return {k: d[k] for k in CURVE_COLUMNS}


def _is_seen(rate: float, seen: Sequence[float]) -> int:
    return int(any(abs(rate - s) < 1e-9 for s in seen))


@torch.no_grad()
def evaluate_curve(
    method: PruningMethod,
    rates: Sequence[float],
    test: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor] | None = None,
    max_elements: int = 1 << 24,
) -> list[CurvePoint]:
    """Validation and test accuracy, observed/effective rate and disconnected count of `method`'s model at each
    of the rates it is scored at (`method.curve_rates(rates)`)."""
    model = method.model
    n_val = 0 if val is None else int(val[1].shape[0])
    x = test[0] if not n_val else torch.cat([val[0], test[0]])
    y = test[1] if not n_val else torch.cat([val[1], test[1]])
    was_training = model.training
    model.eval()
    rates = method.curve_rates(rates)
    seen = method.seen_rates()
    per_rate = sum(w.numel() for w in model.prunable_weights()) + x.shape[0] * x.shape[1] * 64
    chunk = max(1, min(len(rates), max_elements // max(per_rate, 1)))
    if x.device.type == "cpu":  # a GPU wants big batches; a CPU wants them cache-sized
        attention = x.shape[0] * getattr(model, "heads", 1) * x.shape[1] ** 2  # one rate's attention scores
        chunk = max(1, min(chunk, CHUNK_ELEMENTS // max(attention, 1)))
    shared: dict[str, Tensor] = {}  # what every chunk's forward shares (block 1's node mixing)
    points: list[CurvePoint] = []
    for start in range(0, len(rates), chunk):
        part = list(rates[start : start + chunk])
        masks = method.eval_masks_batch(part)
        logits = model(x, masks, shared=shared)  # (R, B, classes)
        hit = (logits.argmax(-1) == y).float()  # (R, N_val + N_test)
        val_acc = hit[:, :n_val].mean(-1) if n_val else None
        test_acc = hit[:, n_val:].mean(-1)
        rep = integrity(masks, method.in_repeats)
        for i, r in enumerate(part):
            points.append(
                CurvePoint(
                    rate=float(r),
                    val_accuracy=float(val_acc[i]) if val_acc is not None else None,
                    test_accuracy=float(test_acc[i]),
                    observed_rate=float(rep.observed_rate[i]),
                    effective_rate=float(rep.effective_rate[i]),
                    disconnected=int(rep.disconnected[i]),
                    seen=_is_seen(r, seen),
                    path_exists=bool(rep.path_exists[i]),
                )
            )
    model.train(was_training)
    return points


@torch.no_grad()
def accuracy_at(method: PruningMethod, rates: Sequence[float], x: Tensor, y: Tensor) -> dict[float, float]:
    """Accuracy of `method`'s model on (x, y) at each rate it is scored at: no integrity report, one batched
    forward per cache-sized chunk (what a sweep reads between reports)."""
    model = method.model
    was_training = model.training
    model.eval()
    rates = method.curve_rates(rates)
    attention = x.shape[0] * getattr(model, "heads", 1) * x.shape[1] ** 2
    chunk = max(1, CHUNK_ELEMENTS // max(attention, 1)) if x.device.type == "cpu" else len(rates)
    shared: dict[str, Tensor] = {}
    out: dict[float, float] = {}
    for start in range(0, len(rates), chunk):
        part = list(rates[start : start + chunk])
        logits = model(x, method.eval_masks_batch(part), shared=shared)
        acc = (logits.argmax(-1) == y).float().mean(-1)
        out.update({float(r): float(a) for r, a in zip(part, acc)})
    model.train(was_training)
    return out
