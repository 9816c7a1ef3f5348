"""The pruning-method interface and its registry.

A method contributes masks for a rate (soft while training, hard at evaluation), training-time regularisers,
and which rates each training step targets. The training loop calls only this interface: it never branches on a
method's name. New methods subclass `PruningMethod`, declare a `Params` dataclass (their `method.*` config keys)
and `@register` themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from mrmp.model import AttentionGCN


@dataclass(frozen=True)
class Phase:
    """A stretch of training with its own optimiser (e.g. MP's fine-tuning after dense training). `frozen`: the
    model's parameters stay as they are and only the method's own (`PruningMethod.parameters`) train (e.g.
    MRMP's calibration of its per-rate gains)."""

    name: str
    epochs: int
    frozen: bool = False


class PruningMethod:
    """Base class: the dense network (no pruning) unless a subclass says otherwise."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = object
    paper: ClassVar[str] = ""
    # Claims the shared contract suite (mrmp.testing.contract) checks for every registered method:
    nested: ClassVar[bool] = False  # eval masks at a higher rate are subsets of those at a lower rate
    rate_tolerance: ClassVar[float] = 0.0  # max |observed − target rate| beyond rounding to one weight
    rate_claim: ClassVar[str] = "all"  # where rate_tolerance holds: "all" evaluated rates, or the "seen" ones

    def __init__(self, params: Any, model: AttentionGCN, epochs: int, seed: int = 0):
        self.params = params
        self.model = model
        self.epochs = epochs
        self.seed = seed
        self.in_repeats = [p.in_repeat for p in model.prunable]

    # --- training -------------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("train", self.epochs)]

    def begin_phase(self, phase: Phase) -> None:
        """Called before each phase's first epoch (and again when a resumed run re-enters the phase)."""

    def step_rates(self, generator: torch.Generator) -> Sequence[float | None]:
        """Rates the next training step targets; `None` trains the dense network."""
        return [None]

    def train_masks(self, rate: float | None) -> list[Tensor] | None:
        """Per-layer masks (differentiable where the method learns topology) for a training forward."""
        return None

    def task_loss(
        self,
        rates: Sequence[float | None],
        logits: Sequence[Tensor],
        criterion: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """The data term of one step, from the logits of each of the step's `rates` (as `step_rates` gave
        them); `criterion(logits)` is the training recipe's loss against the labels. Default: the mean over
        rates.
        A method overrides it to tie its rates together (e.g. MRMP's in-place distillation)."""
        return sum(criterion(z) for z in logits) / len(logits)  # type: ignore[return-value]

    def train_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        """Training masks of several rates stacked, (R, in, out) per layer (a split-batch step)."""
        return [torch.stack(layer) for layer in zip(*(self.train_masks(r) for r in rates))]

    def splits_batch(self) -> bool:
        """Whether a step's rates share its batch (each trains on its own 1/k of it, in one batched forward)
        instead of each taking the whole batch."""
        return False

    def regularizer(self) -> Tensor | None:
        """A term added to the loss (e.g. SRMP's KL), or None."""
        return None

    def parameters(self) -> list[Tensor]:
        """Trainable tensors the method owns besides the model's (e.g. MRMP's per-rate gains): the optimiser
        (and the weight average) covers them after the model's parameters. Saved by `state_dict`."""
        return []

    def end_epoch(self, epoch: int, total: int) -> None:
        """Schedules (e.g. annealing σ)."""

    # --- evaluation -----------------------------------------------------------------------------------------
    @classmethod
    def trained_rates(cls, params: Any) -> tuple[float, ...] | None:
        """The rates a network of this method is trained for, the only ones it is scored at: a tuple for a
        single-rate method (SRMP, TCMP, MP with fine-tuning; the dense network: rate 0), or None for one network
        read at any rate without retraining (MRMP, MP without fine-tuning, random). Known from the config alone,
        so a sweep can refuse an objective a method cannot be scored on before anything runs."""
        return None

    def curve_rates(self, rates: Sequence[float]) -> list[float]:
        """The rates this method's curve is scored at: `rates` (the evaluation grid) for a method read at any
        rate, else exactly its trained rates."""
        trained = self.trained_rates(self.params)
        return list(rates) if trained is None else list(trained)

    def eval_masks(self, rate: float) -> list[Tensor]:
        """Hard 0/1 masks at `rate` (rate 0 keeps everything)."""
        return [torch.ones_like(w) for w in self.model.prunable_weights()]

    def eval_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        """Masks for many rates stacked on a leading dimension: (R, in, out) per layer."""
        per_rate = [self.eval_masks(r) for r in rates]
        return [torch.stack(layer) for layer in zip(*per_rate)]

    def seen_rates(self) -> list[float]:
        """Rates the training loss targeted (the dense network counts as rate 0)."""
        return [0.0]

    # --- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


_REGISTRY: dict[str, type[PruningMethod]] = {}


def register(cls: type[PruningMethod]) -> type[PruningMethod]:
    """Class decorator: make a method available by its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> type[PruningMethod]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(names())}") from None


def create(name: str, params: Any, model: AttentionGCN, epochs: int, seed: int = 0) -> PruningMethod:
    return get(name)(params, model, epochs, seed)


# --- shared mask helpers -----------------------------------------------------------------------------------


_INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}
_RADIX_MIN = 32768  # torch's CPU sort takes its radix path from this many elements (torch 2.x)


def stable_argsort(x: Tensor) -> Tensor:
    """`torch.argsort(x, stable=True)` for a 1-D tensor: the same permutation (any non-NaN values), faster.

    On the CPU, torch sorts floats with a comparison sort, and integers with a radix sort from 32768 elements
    on: ~0.2 ms instead of ~2 ms for the ~32k prunable weights of the small GCN. IEEE floats map to integers
    that sort in the same order (the bits of a non-negative float; a negative float's magnitude bits flipped),
    so the float order, ties kept in index order, is the integer order; -0.0 is first turned into +0.0 (equal
    as floats, so tied as keys too). Shorter inputs are padded with the largest key, which sorts last."""
    itype = _INT_OF.get(x.dtype)
    n = x.numel()
    if itype is None or x.device.type != "cpu" or n < 4096:
        return torch.argsort(x, stable=True)
    info = torch.iinfo(itype)
    bits = (x + 0.0).view(itype)  # -0.0 + 0.0 = +0.0
    key = bits ^ ((bits >> (info.bits - 1)) & info.max)  # NaN aside, real keys are < info.max
    if n < _RADIX_MIN:
        key = torch.cat([key, key.new_full((_RADIX_MIN - n,), info.max)])
    return torch.argsort(key, stable=True)[:n]


def rank_keep_masks(
    scores: Sequence[Tensor], rates: Sequence[float], layerwise: bool = False
) -> list[Tensor]:
    """Masks (R, in, out) keeping, for each rate r, all but the round(r·N) lowest-scoring weights.

    Global over layers unless `layerwise`. The count and the selection of the lowest scores follow
    `torch.nn.utils.prune` (round(amount·N) pruned, smallest first), so masks match its global L1 pruning up to
    ties. One sort serves every rate, and the masks are nested across rates.
    """
    rates_t = torch.tensor(list(rates), dtype=torch.float64)
    if layerwise:
        out = []
        for s in scores:
            out.extend(rank_keep_masks([s], rates))
        return out
    flat = torch.cat([s.detach().reshape(-1) for s in scores])
    n = flat.numel()
    order = stable_argsort(flat)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=flat.device)
    n_prune = torch.tensor([round(float(r) * n) for r in rates_t], device=flat.device)
    keep = (rank.unsqueeze(0) >= n_prune.unsqueeze(1)).to(scores[0].dtype)  # (R, N)
    out, start = [], 0
    for s in scores:
        out.append(keep[:, start : start + s.numel()].reshape(len(rates_t), *s.shape))
        start += s.numel()
    return out
