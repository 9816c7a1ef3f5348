"""The dense network: no pruning. The reference every pruned curve is read against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import PruningMethod, register


@dataclass
class DenseParams:
    """No keys: `method.name: dense` alone."""


@register
class Dense(PruningMethod):
    name = "dense"
    Params = DenseParams

    @classmethod
    def trained_rates(cls, params: Any) -> tuple[float, ...]:
        return (0.0,)
