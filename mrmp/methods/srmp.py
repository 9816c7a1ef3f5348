"""SRMP: single-rate magnitude pruning with a band-stop reparametrisation and a KL prior on the latent weights.

Paper: H. Sahbi, "One-Shot Multi-Rate Pruning of Graph Convolutional Networks" (SRMP is its single-rate method).
Effective weights `W = Ŵ ⊙ ψ_{a,σ}(Ŵ)`; ψ is a smooth band-stop in training and the hard step `1{|Ŵ| > a}` at
evaluation. The loss adds `λ D_KL(P ‖ Q)`, where P is a soft histogram of the RMS-standardised latent weights
`z = Ŵ / rms(Ŵ)` (one RMS and one histogram over all prunable weights by default; per layer with
`scope: layer`) and Q a unit-variance prior (uniform, gaussian or laplace). Once P ≈ Q, the quantile mapping
`a(r) = F⁻¹((1 + r)/2)`, applied as the threshold `rms(Ŵ)·a(r)`, removes a fraction r of the weights: a fixed
rate is met through the prior. Design choices (scale, density estimate, the threshold-anchored histogram,
schedules) are argued in docs/methods.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mrmp.model import AttentionGCN
from mrmp.validation import spec

from .base import PruningMethod, register
from .priors import (
    PRIORS,
    SIGMA_SCHEDULES,
    Prior,
    WarmupSigmaSchedule,
    band_stop,
    bin_centers,
    edge_slopes,
    prior_kl,
    prior_shaped_,
    rms,
    smoothed_log,
    soft_band_stop,
    soft_band_stop_rates,
)

SCOPES = ("layer", "global")
BIN_GRIDS = ("uniform", "quantile")


def kl_every_field(default: int, note: str = "") -> Any:
    """The `kl_every` key's field (SRMP's and MRMP's, which differ in the default only)."""
    return field(
        default=default,
        metadata=spec(
            ge=1,
            le=16,
            help="the KL term on every n-th step only, weighted n× there: the same mean pull toward the prior "
            f"for a cheaper step on average (1: every step{note})",
        ),
    )


@dataclass
class BandStopParams:
    """Keys shared by SRMP and MRMP: the prior, its KL weight and density estimate, the band-stop's σ."""

    prior: str = field(default="gaussian", metadata=spec(choices=PRIORS, help="prior Q of the KL term"))
    kl_weight: float = field(default=10.0, metadata=spec(ge=0.0, help="λ: weight of Σ_l KL(P_l ‖ Q)"))
    kl_every: int = kl_every_field(1)
    bins: int = field(default=256, metadata=spec(ge=8, le=4096, help="bins of the soft histogram P"))
    bin_grid: str = field(
        default="quantile",
        metadata=spec(
            choices=BIN_GRIDS,
            help="centres of P's bins: uniform (equally spaced over ±z_max) or quantile (at the prior's "
            "quantiles: equiprobable bins, equally fine in rate at every threshold)",
        ),
    )
    z_max: float = field(
        default=4.0,
        metadata=spec(gt=1.0, le=20.0, help="histogram range ±z_max, in RMS units (uniform bins)"),
    )
    sigma: float = field(
        default=10.0, metadata=spec(gt=0.0, help="band-stop steepness σ at the start of pruning")
    )
    sigma_end: float | None = field(
        default=100.0, metadata=spec(gt=0.0, help="σ at the end of training (null: keep σ fixed)")
    )
    sigma_schedule: str = field(
        default="exp", metadata=spec(choices=SIGMA_SCHEDULES, help="σ schedule from sigma to sigma_end")
    )
    warmup_epochs: int = field(
        default=0, metadata=spec(ge=0, help="dense epochs (KL on, band-stop off) before pruning starts")
    )
    prior_init: bool | None = field(
        default=None,
        metadata=spec(
            help="reshape the initial weights onto the prior (same order and RMS) so that the KL starts near 0; "
            "default: on for gaussian and laplace, off for uniform (with the uniform prior and scope global it "
            "flattens the GCN blocks, and MRMP sat at chance: docs/methods.md)"
        ),
    )
    anchor_weight: float = field(
        default=10.0,
        metadata=spec(
            ge=0.0,
            help="weight, relative to the fine histogram's, of the KL on a coarse histogram of |z| whose bin "
            "edges are the trained rates' thresholds a(r) (prior masses: the rate gaps); 0 = off",
        ),
    )
    anchor_sigma: float = field(
        default=100.0,
        metadata=spec(gt=0.0, help="steepness σ of the anchor histogram's soft edges (fixed, not scheduled)"),
    )
    anchor_grid: float = field(
        default=0.0,
        metadata=spec(
            ge=0.0,
            lt=1.0,
            help="also cut the coarse histogram every anchor_grid from the lowest trained rate up to 0.99 "
            "(0 = only at the trained rates); holds the observed rate at rates never trained",
        ),
    )
    scope: str = field(
        default="global",
        metadata=spec(
            choices=SCOPES,
            help="layer: each layer standardised by its own RMS and pruned at rate r; "
            "global: one RMS and one histogram over all prunable weights (layers' rates are learned)",
        ),
    )

    def prior_shaped_init(self) -> bool:
        """Whether the initial weights are reshaped onto the prior: `prior_init`, by default all priors but the
        uniform one, whose top quantiles (all near √3) flatten the GCN blocks under the global scope."""
        return self.prior != "uniform" if self.prior_init is None else self.prior_init


@dataclass
class SRMPParams(BandStopParams):
    rate: float = field(default=0.9, metadata=spec(ge=0.0, lt=1.0, help="the pruning rate trained for"))


class BandStopMethod(WarmupSigmaSchedule, PruningMethod):
    """The band-stop + KL machinery shared by SRMP and MRMP; subclasses choose the rates each step trains."""

    nested = True
    rate_tolerance = 0.01  # the paper's claim, at the trained rates (the KL holds the shape elsewhere too)
    rate_claim = "seen"

    def __init__(self, params: BandStopParams, model: AttentionGCN, epochs: int, seed: int = 0):
        super().__init__(params, model, epochs, seed)
        self.prior = Prior(params.prior)
        if params.bin_grid == "quantile":
            self._centers: Tensor | None = self.prior.quantile_centers(params.bins)
        else:
            self._centers = None  # equally spaced: binned by arithmetic
        centers = self._centers if self._centers is not None else bin_centers(params.bins, params.z_max)
        self._q = self.prior.bin_masses(centers).float()
        self._epoch = 0  # epochs done (σ schedule and warm-up)
        self._reg_calls = 0  # training steps that asked for the regulariser (kl_every's position)
        self._a_cache: dict[tuple[float, ...], Tensor] = {}  # rates -> a(r) (float64)
        self._kl_consts: dict[str, Any] = {}  # the KL terms' prior side, built on first use
        if params.prior_shaped_init():
            ws = model.prunable_weights()
            with torch.no_grad():
                for group in self._groups(ws):
                    prior_shaped_(group, self.prior)
                if params.scope == "global":  # the flattened copy, back into the layers
                    for w, part in zip(ws, group.split([w.numel() for w in ws])):
                        w.copy_(part.view_as(w))

    # --- masks ----------------------------------------------------------------------------------------------
    def _groups(self, ws: Sequence[Tensor]) -> list[Tensor]:
        """What one histogram and one scale cover: each layer, or (scope global) all layers flattened together."""
        if self.params.scope == "global":
            return [torch.cat([w.reshape(-1) for w in ws])]
        return list(ws)

    def scales(self, detach: bool = True) -> list[Tensor]:
        """Per layer, the RMS its weights are standardised by (its own, or the global one)."""
        ws = [w.detach() if detach else w for w in self.model.prunable_weights()]
        if self.params.scope == "global":
            return [rms(self._groups(ws)[0])] * len(ws)
        return [rms(w) for w in ws]

    def _a(self, rates: Sequence[float]) -> Tensor:
        """a(r) for each rate, float64 (cached: the same few rates come back every step)."""
        key = tuple(float(r) for r in rates)
        a = self._a_cache.get(key)
        if a is None:
            a = self._a_cache[key] = self.prior.threshold(torch.tensor(key, dtype=torch.float64))
        return a

    def thresholds(self, rates: Sequence[float]) -> list[Tensor]:
        """Per layer, the (R,) thresholds scale_l·a(r) on |Ŵ_l| (no gradient: the threshold is a target)."""
        a = self._a(rates)
        scales = self.scales()
        if self.params.scope == "global":  # one scale: one product, shared by every layer
            t = (scales[0].double() * a).to(scales[0].dtype)
            return [t] * len(scales)
        return [(s.double() * a).to(s.dtype) for s in scales]

    def anchor_rates(self) -> list[float]:
        """The bin edges (as rates) of the coarse, threshold-aligned histogram: the trained rates, plus a grid
        every `anchor_grid` from the lowest of them up to 0.99 when asked."""
        rates = {round(r, 6) for r in self.seen_rates()}
        step = self.params.anchor_grid
        if step > 0 and rates:
            r = min(rates)
            while r < 0.99 + 1e-9:
                rates.add(round(r, 6))
                r += step
        return sorted(rates)

    def _constants(self, device: torch.device) -> dict[str, Any]:
        """The prior side of both KL terms (smoothed log masses, the anchor edges' slopes): constants of the
        training, computed once per device instead of every step."""
        c = self._kl_consts
        if c.get("device") != device:
            p = self.params
            c = {"device": device, "log_q": smoothed_log(self._q.to(device)), "centers": None}
            if self._centers is not None:
                c["centers"] = self._centers.float().to(device)
            if p.anchor_weight > 0:
                rates = torch.tensor(self.anchor_rates(), dtype=torch.float64)
                edges = self.prior.threshold(rates).float().to(device)
                q_coarse = torch.diff(rates, prepend=rates.new_zeros(1), append=rates.new_ones(1)).float()
                c["slopes"] = edge_slopes(edges, p.anchor_sigma)
                c["log_q_coarse"] = smoothed_log(q_coarse.to(device))
            self._kl_consts = c
        return c

    def _kls(self) -> list[Tensor]:
        """Per group (all weights, or each layer): KL(P ‖ Q) + anchor_weight · KL(P_coarse ‖ Q_coarse) of the
        RMS-standardised weights (`priors.prior_kl`: the same values, a closed-form gradient)."""
        p = self.params
        ws = self.model.prunable_weights()
        c = self._constants(ws[0].device)
        groups = [torch.cat([w.reshape(-1) for w in ws])] if p.scope == "global" else list(ws)
        anchor = p.anchor_weight > 0
        return [
            prior_kl(
                g,
                p.bins,
                p.z_max,
                c["log_q"],
                c["slopes"] if anchor else None,
                p.anchor_sigma,
                c["log_q_coarse"] if anchor else None,
                p.anchor_weight,
                prior=self.prior,
                centers=c["centers"],
            )
            for g in groups
        ]

    def train_masks(self, rate: float | None) -> list[Tensor] | None:
        if rate is None:
            return None
        if rate > 0 and self.params.scope == "global":  # one threshold: every layer's band-stop in one pass
            return [m[0] for m in self._global_band_stops([rate])]
        sigma = self.sigma()
        ws = self.model.prunable_weights()
        thresholds = self.thresholds([rate])
        if rate <= 0:  # a(0) = 0 keeps every weight (band_stop's special case)
            return [band_stop(w, a[0], sigma) for w, a in zip(ws, thresholds)]
        return [soft_band_stop(w, a[0], sigma) for w, a in zip(ws, thresholds)]

    def train_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        """With one global scale and positive rates, every rate's band-stop over every layer in one pass."""
        if self.params.scope != "global" or min(rates) <= 0:
            return super().train_masks_batch(rates)
        return self._global_band_stops(rates)

    def _global_band_stops(self, rates: Sequence[float]) -> list[Tensor]:
        """Per layer, the (R, in, out) soft band-stops of positive `rates` under the one global scale."""
        return self._per_layer(self._global_soft(rates)[1])

    def _global_soft(self, rates: Sequence[float]) -> tuple[Tensor, Tensor]:
        """The flattened prunable weights (N,) and their (R, N) soft band-stops at positive `rates`."""
        flat = torch.cat([w.reshape(-1) for w in self.model.prunable_weights()])
        return flat, soft_band_stop_rates(flat, self._global_thresholds(flat, rates), self.sigma())

    def _global_thresholds(self, flat: Tensor, rates: Sequence[float]) -> Tensor:
        """(R,) thresholds rms(Ŵ)·a(r) of the flattened weights `flat` (= thresholds(rates) under scope global,
        without a second copy of the weights)."""
        s = rms(flat.detach())
        return (s.double() * self._a(rates)).to(s.dtype)

    def _per_layer(self, flat_masks: Tensor) -> list[Tensor]:
        """(R, N) masks over the flattened prunable weights, as (R, in, out) per layer."""
        ws = self.model.prunable_weights()
        parts = flat_masks.split([w.numel() for w in ws], dim=1)
        return [m.reshape(len(flat_masks), *w.shape) for m, w in zip(parts, ws)]

    def regularizer(self) -> Tensor | None:
        """λ Σ_l D_KL(P_l ‖ Q) on the RMS-standardised latent weights of each prunable layer (n·λ on every n-th
        step, None on the others, with kl_every = n)."""
        every = self.params.kl_every
        self._reg_calls += 1
        if self.params.kl_weight == 0 or (self._reg_calls - 1) % every:
            return None
        kls = self._kls()
        return every * self.params.kl_weight * (kls[0] if len(kls) == 1 else sum(kls))

    def kl_per_group(self) -> list[float]:
        """D_KL(P ‖ Q) of each layer (scope layer) or of all weights (scope global) now: a diagnostic."""
        with torch.no_grad():
            return [float(k) for k in self._kls()]

    def eval_masks(self, rate: float) -> list[Tensor]:
        return [m[0] for m in self.eval_masks_batch([rate])]

    def eval_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        """Hard masks 1{|Ŵ_l| > rms(Ŵ_l)·a(r)}, (R, in, out) per layer; nested because a(r) grows with r."""
        ws = self.model.prunable_weights()
        return [band_stop(w.detach(), a.view(-1, 1, 1), None) for w, a in zip(ws, self.thresholds(rates))]

    # --- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "reg_calls": self._reg_calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = int(state.get("epoch", self.epochs))
        self._reg_calls = int(state.get("reg_calls", 0))


@register
class SRMP(BandStopMethod):
    """SRMP (Sahbi, "One-Shot Multi-Rate Pruning of GCNs"): band-stop + KL prior, trained for one rate."""

    name = "srmp"
    Params = SRMPParams
    paper = "H. Sahbi, One-Shot Multi-Rate Pruning of Graph Convolutional Networks (SRMP)"

    def step_rates(self, generator: torch.Generator) -> Sequence[float | None]:
        return [self.params.rate] if self.pruning else [None]

    @classmethod
    def trained_rates(cls, params: Any) -> tuple[float, ...]:
        return (params.rate,)

    def seen_rates(self) -> list[float]:
        return [self.params.rate]
