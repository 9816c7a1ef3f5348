"""MP: plain magnitude pruning after dense training (baseline), with optional fine-tuning at a fixed rate.

Keeps the (1 − r) fraction of prunable weights with the largest |w|, globally over the prunable layers (or per
layer); its global masks equal `torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=r)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mrmp.validation import spec

from .base import Phase, PruningMethod, rank_keep_masks, register


@dataclass
class MPParams:
    rate: float = field(default=0.9, metadata=spec(ge=0.0, lt=1.0, help="rate of the fine-tuning phase"))
    layerwise: bool = field(default=False, metadata=spec(help="rank weights per layer instead of globally"))
    finetune_epochs: int = field(
        default=0, metadata=spec(ge=0, help="epochs of fine-tuning with the mask fixed")
    )


@register
class MagnitudePruning(PruningMethod):
    name = "mp"
    Params = MPParams
    nested = True  # one ranking serves every rate

    def __init__(self, params: MPParams, model, epochs: int, seed: int = 0):
        super().__init__(params, model, epochs, seed)
        self._frozen: list[Tensor] | None = None

    def phases(self) -> list[Phase]:
        phases = [Phase("train", self.epochs)]
        if self.params.finetune_epochs > 0:
            phases.append(Phase("finetune", self.params.finetune_epochs))
        return phases

    def begin_phase(self, phase: Phase) -> None:
        if phase.name == "finetune":
            if self._frozen is None:
                self._frozen = [m[0] for m in self.eval_masks_batch([self.params.rate])]
            with torch.no_grad():  # pruned weights become exact zeros and, with zero gradients, stay zero
                for w, m in zip(self.model.prunable_weights(), self._frozen):
                    w.mul_(m)

    def step_rates(self, generator: torch.Generator) -> Sequence[float | None]:
        return [self.params.rate] if self._frozen is not None else [None]

    def train_masks(self, rate: float | None) -> list[Tensor] | None:
        return self._frozen if rate is not None else None

    def eval_masks(self, rate: float) -> list[Tensor]:
        return [m[0] for m in self.eval_masks_batch([rate])]

    def eval_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        scores = [w.detach().abs() for w in self.model.prunable_weights()]
        return rank_keep_masks(scores, rates, self.params.layerwise)

    @classmethod
    def trained_rates(cls, params: MPParams) -> tuple[float, ...] | None:
        """Fine-tuned at `rate`: a single-rate network; without fine-tuning, the dense network read at any rate."""
        return (params.rate,) if params.finetune_epochs > 0 else None

    def seen_rates(self) -> list[float]:
        return [self.params.rate] if self.params.finetune_epochs > 0 else [0.0]

    def state_dict(self) -> dict[str, Any]:
        return {"frozen": self._frozen} if self._frozen is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._frozen = state.get("frozen")
