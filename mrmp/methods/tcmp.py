"""TCMP: topologically consistent magnitude pruning: only accessible and co-accessible connections are kept.

Paper: H. Sahbi, "TCMP: end-to-end topologically consistent magnitude pruning for miniaturized graph
convolutional networks" (ICASSP 2024). On the unit graph of the prunable layers (units = channels, edges =
prunable weights; see docs/methods.md for how heads, attention and the FC enter it), a forward pass computes
accessibility `α_l = h(M_lᵀ α_{l−1})` from the inputs and a backward pass co-accessibility
`β_{l−1} = h(M_l β_l)` from the outputs: the two supervisory networks. The consistent mask is
`M̃_l = M_l ⊙ α_{l−1} ⊙ β_l` and the effective weights `W_l = Ŵ_l ⊙ M̃_l`.

- Evaluation: M is a global magnitude mask; its threshold is bisected so that the CONSISTENT mask keeps at most
  (1 − r)·N weights (the consistent count is monotone in the raw mask), so the effective rate meets the target
  and no disconnected connection is ever kept. Masks are nested across rates.
- Training: the same threshold (found without gradient on the current weights) in a smooth band-stop
  ψ_{t,σ}(Ŵ), and h(x) = 1 − exp(−x/τ) as a differentiable surrogate of 1{x > 0} (forward value hard, gradient
  of the surrogate, by default), trained end to end; an optional budget penalty λ_b.
- `consistency: false` drops the constraint (no supervisory networks, the plain global magnitude mask at the
  budget) and keeps everything else: the ablation that isolates what consistency buys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mrmp.model import AttentionGCN, consistent_count, consistent_masks, hard_step, propagate
from mrmp.validation import spec

from .base import PruningMethod, rank_keep_masks, register, stable_argsort
from .priors import SIGMA_SCHEDULES, WarmupSigmaSchedule, band_stop, soft_band_stop

SURROGATES = ("straight_through", "smooth")


@dataclass
class TCMPParams:
    rate: float = field(default=0.9, metadata=spec(ge=0.0, lt=1.0, help="the pruning rate trained for"))
    tau: float = field(
        default=0.5, metadata=spec(gt=0.0, help="τ of the surrogate h(x) = 1 − exp(−x/τ) in training")
    )
    surrogate: str = field(
        default="straight_through",
        metadata=spec(
            choices=SURROGATES,
            help="straight_through: forward 1{x > 0} and hard masks inside the propagation, backward the "
            "surrogate; smooth: the surrogate on the soft masks in both passes",
        ),
    )
    sigma: float = field(default=10.0, metadata=spec(gt=0.0, help="band-stop steepness σ at the start"))
    sigma_end: float | None = field(
        default=100.0, metadata=spec(gt=0.0, help="σ at the end of training (null: keep σ fixed)")
    )
    sigma_schedule: str = field(
        default="exp", metadata=spec(choices=SIGMA_SCHEDULES, help="σ schedule from sigma to sigma_end")
    )
    budget_weight: float = field(
        default=0.0,
        metadata=spec(ge=0.0, help="λ_b of ((Σ M̃ − (1 − r)N) / N)², the soft consistent mask's budget"),
    )
    warmup_epochs: int = field(default=0, metadata=spec(ge=0, help="dense epochs before pruning starts"))
    consistency: bool = field(
        default=True,
        metadata=spec(
            help="keep only accessible and co-accessible connections (TCMP); false = the same band-stop "
            "training on the plain global magnitude mask at the rate (the ablation without the constraint)"
        ),
    )


class _TopKSearch:
    """The search behind `consistent_topk`: one stable ranking of the scores, then `fits(k)` probes."""

    def __init__(self, scores: Sequence[Tensor], in_repeats: Sequence[int], rates: Sequence[float]):
        self.flat = torch.cat([s.detach().reshape(-1) for s in scores])
        self.n = n = self.flat.numel()
        self.order = stable_argsort(self.flat)  # ascending; ties in index order
        self.rank = torch.empty(n, dtype=torch.long, device=self.flat.device)
        self.rank[self.order] = torch.arange(n, device=self.flat.device)  # 0 = lowest score
        self.budget = torch.tensor([n - round(float(r) * n) for r in rates], device=self.flat.device)
        self.sizes = [s.numel() for s in scores]
        self.shapes = [s.shape for s in scores]
        self.in_repeats = in_repeats

    def masks_for(self, k: Tensor) -> list[Tensor]:
        keep = (self.rank.unsqueeze(0) >= (self.n - k).unsqueeze(1)).float()  # (R, N)
        return [
            part.reshape(len(k), *shape) for part, shape in zip(keep.split(self.sizes, dim=1), self.shapes)
        ]

    def count(self, k: Tensor) -> Tensor:
        """Size of the consistent mask of the top-k raw mask: Σ_l α_lᵀ M_l β_l."""
        return consistent_count(self.masks_for(k), self.in_repeats).round().long()

    def fits(self, k: Tensor) -> Tensor:
        """Whether the consistent mask of the top-k raw mask keeps at most the budget."""
        return self.count(k) <= self.budget

    def guess(self, rounds: int = 6) -> Tensor:
        """A starting k for `run` when nothing is known: k = budget always fits (consistent <= raw = k), and
        k + (budget − count(k)) still fits (k edges more add at most that many consistent ones), so the
        iteration climbs towards the answer from below, usually reaching it in 2-4 counts."""
        k = self.budget.clone()
        for _ in range(rounds):
            deficit = self.budget - self.count(k)
            if not bool((deficit > 0).any()):
                break
            k = (k + deficit).clamp(max=self.n)
        return k

    def run(self, hint: Tensor | None = None) -> Tensor:
        """The largest k per rate that fits: gallop out from `hint` (when given), then bisect."""
        n, budget, fits = self.n, self.budget, self.fits
        lo = torch.zeros_like(budget)  # k = 0 always fits
        hi = torch.full_like(budget, n)
        if hint is not None:
            start = hint.to(budget).clamp(0, n)
            up = fits(start)
            lo = torch.where(up, start, lo)
            hi = torch.where(up, hi, start - 1)
            step = 1
            open_ = torch.ones_like(up)
            while bool(open_.any()):
                probe = torch.where(up, (start + step).clamp(max=n), (start - step).clamp(min=0))
                ok = fits(probe)
                lo = torch.where(open_ & ok, torch.maximum(lo, probe), lo)
                hi = torch.where(open_ & ~ok, torch.minimum(hi, probe - 1), hi)
                open_ = open_ & torch.where(up, ok & (probe < n), ~ok)
                step *= 2
        while bool((lo < hi).any()):
            mid = (lo + hi + 1) // 2
            ok = fits(mid)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid - 1)
        return lo


def consistent_topk(
    scores: Sequence[Tensor],
    in_repeats: Sequence[int],
    rates: Sequence[float],
    hint: Tensor | None = None,
) -> tuple[list[Tensor], Tensor]:
    """For each rate r, the largest k such that keeping the k highest scores, then only the accessible and
    co-accessible connections, keeps at most N − round(r·N) weights.

    Returns the hard consistent masks ((R, in, out) per layer) and k (R,). Raw masks are nested in k and the
    consistent count is monotone in the raw mask, so the search is exact and the result nested across rates.
    `hint` (R,) is a guess of k (e.g. the previous training step's): the search gallops out from it, then
    bisects, which takes a few counts instead of log2(N) when the weights moved little.
    """
    search = _TopKSearch(scores, in_repeats, rates)
    k = search.run(hint if hint is not None else search.guess())
    return consistent_masks(search.masks_for(k), in_repeats), k


def _straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    return hard + (soft - soft.detach())


@register
class TCMP(WarmupSigmaSchedule, PruningMethod):
    """TCMP (Sahbi, ICASSP 2024): magnitude pruning whose budget is met by accessible, co-accessible weights."""

    name = "tcmp"
    Params = TCMPParams
    paper = "H. Sahbi, TCMP: end-to-end topologically consistent magnitude pruning (ICASSP 2024)"
    nested = True
    rate_tolerance = 0.01

    def __init__(self, params: TCMPParams, model: AttentionGCN, epochs: int, seed: int = 0):
        super().__init__(params, model, epochs, seed)
        self._epoch = 0
        self._last: list[Tensor] | None = None  # the soft consistent masks of the last training forward
        self._k_hint: Tensor | None = None  # last step's kept count: warm start of the threshold search

    def step_rates(self, generator: torch.Generator) -> Sequence[float | None]:
        return [self.params.rate] if self.pruning else [None]

    @classmethod
    def trained_rates(cls, params: Any) -> tuple[float, ...]:
        return (params.rate,)

    def seen_rates(self) -> list[float]:
        return [self.params.rate]

    # --- masks ----------------------------------------------------------------------------------------------
    def threshold(self, rate: float) -> Tensor:
        """The global magnitude threshold whose consistent mask meets the budget at `rate` (no gradient)."""
        return self._threshold(rate)[0]

    def _threshold(self, rate: float) -> tuple[Tensor, bool]:
        """The threshold and whether it is positive (false only when every weight is kept)."""
        search = _TopKSearch(
            [w.detach().abs() for w in self.model.prunable_weights()], self.in_repeats, [rate]
        )
        if self.params.consistency:
            k = search.run(self._k_hint)
            self._k_hint = k
        else:  # the raw magnitude mask meets the budget by itself
            k = search.budget
        n, k = search.n, int(k[0])
        mags, order = search.flat, search.order  # mags[order] ascending: only two of them are needed
        if k >= n:
            return mags.new_zeros(()), False
        if k == 0:
            return mags[order[-1]] * 2 + 1e-12, True
        # between the largest dropped and the smallest kept magnitude
        return 0.5 * (mags[order[n - k - 1]] + mags[order[n - k]]), True

    def _surrogate(self) -> Callable[[Tensor], Tensor]:
        tau = self.params.tau

        def smooth(x: Tensor) -> Tensor:
            return 1.0 - torch.exp(-x.clamp_min(0) / tau)

        if self.params.surrogate == "smooth":
            return smooth
        return lambda x: _straight_through(hard_step(x), smooth(x))

    def train_masks(self, rate: float | None) -> list[Tensor] | None:
        if rate is None:
            self._last = None
            return None
        t, positive = self._threshold(rate)
        sigma = self.sigma()
        ws = self.model.prunable_weights()
        if positive:  # one band-stop (and straight-through) pass over all weights, split back into layers
            flat = soft_band_stop(torch.cat([w.reshape(-1) for w in ws]), t, sigma)
            if self.params.surrogate == "straight_through":
                flat_inside = _straight_through((flat.detach() > 0.5).to(flat.dtype), flat)
            else:
                flat_inside = flat
            sizes = [w.numel() for w in ws]
            soft = [m.view_as(w) for m, w in zip(flat.split(sizes), ws)]
            inside = [m.view_as(w) for m, w in zip(flat_inside.split(sizes), ws)]
        else:
            soft = [band_stop(w, t, sigma) for w in ws]
            if self.params.surrogate == "straight_through":
                inside = [_straight_through((m.detach() > 0.5).to(m.dtype), m) for m in soft]
            else:
                inside = soft
        if not self.params.consistency:
            self._last = soft
            return soft
        alpha_in, beta_out = propagate(inside, self.in_repeats, self._surrogate())
        self._last = [m * a.unsqueeze(-1) * b.unsqueeze(-2) for m, a, b in zip(soft, alpha_in, beta_out)]
        return self._last

    def regularizer(self) -> Tensor | None:
        """λ_b ((Σ M̃ − (1 − r)N) / N)² on the last training forward's soft consistent masks."""
        if self.params.budget_weight == 0 or self._last is None:
            return None
        n = sum(m.numel() for m in self._last)
        kept = sum(m.sum() for m in self._last)
        return self.params.budget_weight * ((kept - (1 - self.params.rate) * n) / n) ** 2

    def eval_masks(self, rate: float) -> list[Tensor]:
        return [m[0] for m in self.eval_masks_batch([rate])]

    def eval_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        """Hard consistent masks at each rate: zero disconnected connections, at most (1 − r)·N kept."""
        scores = [w.detach().abs() for w in self.model.prunable_weights()]
        if not self.params.consistency:
            return rank_keep_masks(scores, rates)
        masks, _ = consistent_topk(scores, self.in_repeats, rates)
        return masks

    # --- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = int(state.get("epoch", self.epochs))
