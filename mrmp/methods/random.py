"""Random pruning: the sanity floor. Fixed random scores (from the seed), so masks are nested across rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mrmp.validation import spec

from .base import PruningMethod, rank_keep_masks, register


@dataclass
class RandomParams:
    layerwise: bool = field(default=False, metadata=spec(help="prune the same fraction of every layer"))


@register
class RandomPruning(PruningMethod):
    name = "random"
    Params = RandomParams
    nested = True  # fixed scores, one ranking serves every rate

    def __init__(self, params: RandomParams, model, epochs: int, seed: int = 0):
        super().__init__(params, model, epochs, seed)
        gen = torch.Generator().manual_seed(seed + 7919)
        self.scores = [torch.rand(w.shape, generator=gen) for w in model.prunable_weights()]

    def eval_masks(self, rate: float) -> list[Tensor]:
        return [m[0] for m in self.eval_masks_batch([rate])]

    def eval_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        device = self.model.prunable_weights()[0].device
        return rank_keep_masks([s.to(device) for s in self.scores], rates, self.params.layerwise)

    def state_dict(self) -> dict[str, Any]:
        return {"scores": self.scores}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scores = list(state["scores"])
