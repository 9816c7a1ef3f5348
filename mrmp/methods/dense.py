"""The dense network: no pruning. The reference every pruned curve is read against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .base import PruningMethod, register


@dataclass
class DenseParams:
    """No keys: `method.name: dense` alone."""


@register
class Dense(PruningMethod):
    name = "dense"
    Params = DenseParams

    def curve_rates(self, rates: Sequence[float]) -> list[float]:
        return [0.0]
