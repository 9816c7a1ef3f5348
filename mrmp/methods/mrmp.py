"""MRMP: multi-rate magnitude pruning: one set of latent weights trained for many rates, usable at any rate.

Paper: H. Sahbi, "One-Shot Multi-Rate Pruning of Graph Convolutional Networks". The networks at every seen rate
share the latent weights Ŵ: each step samples some seen rates, builds each one's band-stop mask from the same Ŵ
through the quantile mapping a(r), averages their cross-entropies and adds the one shared KL term (SRMP's
machinery, inherited). At evaluation any rate r, seen or not, takes the hard mask `1{|Ŵ_l| > rms(Ŵ_l)·a(r)}`:
no retraining, and the masks are nested across rates because a(r) is monotone. With `rate_gains` each seen rate
also owns one learnable gain per output channel of every prunable layer, folded into its mask (kept entries carry
the gain, pruned ones stay 0); an unseen rate interpolates its neighbours' (docs/methods.md). By default
(`split_batch`, k = 4) a step's k rates share its batch, each trained on its own 1/k of it in one forward (the
Trainer asks `splits_batch()`), and each trains with a random part of its delta to the next seen rate dropped
(`partial_deltas: next`), so that the networks between seen rates, which unseen rates read, are trained too.
Training ends with a calibration (`calibrate_epochs`): the weights frozen, only per-rate channel gains train on
the seen rates' hard masks, a few private parameters per rate that the shared weights lack. docs/methods.md gives
what each buys and costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from mrmp.model import AttentionGCN
from mrmp.validation import spec

from .base import Phase, register
from .calibration import Deltas, gain, interpolated_gains
from .srmp import BandStopMethod, BandStopParams, kl_every_field

SAMPLING = ("uniform", "cycle", "all", "sandwich", "lowest")
CALIBRATE_FRACTION = 0.15  # calibrate_epochs' default, as a fraction of train.epochs (45 of the recipe's 300)
PARTIAL_DELTAS = ("none", "next", "previous", "either")


def default_seen_rates() -> list[float]:
    """The paper's seen rates on SBU: 0.50, 0.55, ..., 0.95 and 0.98."""
    return [round(0.5 + 0.05 * i, 2) for i in range(10)] + [0.98]


@dataclass
class MRMPParams(BandStopParams):
    seen_rates: list[float] = field(
        default_factory=default_seen_rates,
        metadata=spec(
            ge=0.0,
            lt=1.0,
            help="rates the training targets; the network is read well between them, not above the largest "
            "(no extrapolation: include the sparsest rate you need)",
        ),
    )
    sampling: str = field(
        default="uniform",
        metadata=spec(
            choices=SAMPLING,
            help="per step: uniform (k random seen rates), cycle (the next k in order), all (every seen rate), "
            "sandwich (the lowest and the highest seen rate, plus max(k − 2, 0) random others), lowest (the "
            "lowest seen rate, plus k − 1 random others)",
        ),
    )
    rates_per_step: int = field(
        default=4, metadata=spec(ge=1, help="k: seen rates per step (uniform, cycle, sandwich, lowest)")
    )
    rate_power: float = field(
        default=0.0,
        metadata=spec(
            ge=-4.0,
            le=4.0,
            help="uniform, sandwich and lowest sampling draw seen rate r with probability ∝ (1 − r)^−rate_power: "
            "0 = equally often; > 0 = the sparse networks more often; < 0 = the dense ones more often",
        ),
    )
    shrink_epochs: int = field(
        default=0,
        metadata=spec(
            ge=0,
            help="progressive shrinking: over the first shrink_epochs epochs of pruning, sampling draws only from "
            "the lowest seen rates, their number growing linearly from one to all; 0 = off",
        ),
    )
    epochs_factor: float = field(
        default=1.2,
        metadata=spec(
            gt=0.0,
            le=10.0,
            help="MRMP trains round(epochs_factor × train.epochs) epochs: its seen rates share the steps, and the "
            "single-rate recipe's length undertrains them; the default, with the calibration, keeps one MRMP "
            "training within 1.5× the cost of one SRMP training (measured in results/methods)",
        ),
    )
    distill: bool = field(
        default=False,
        metadata=spec(
            help="in-place distillation: the step's densest network learns from the labels, every other rate "
            "from its (detached) predictions"
        ),
    )
    distill_temperature: float = field(
        default=1.0, metadata=spec(gt=0.0, help="temperature of the distillation's softmax")
    )
    split_batch: bool = field(
        default=True,
        metadata=spec(
            help="the step's k rates share its batch: each trains on its own 1/k of the samples, all in one "
            "batched forward (k rates updated every step for about the cost of one; docs/methods.md); false: "
            "each of the k rates takes the whole batch (k forwards)"
        ),
    )
    kl_every: int = kl_every_field(2, "; MRMP's default 2 keeps its cost near 1.5× SRMP's")
    partial_deltas: str = field(
        default="next",
        metadata=spec(
            choices=PARTIAL_DELTAS,
            help="each trained seen rate also learns to work with part of its delta to a neighbouring seen rate "
            "(the weights kept by one and not the other), as an unseen rate between them has it: a random "
            "fraction u ~ U(0, 1) of the delta, drawn per step, is dropped (next: toward the next, sparser seen "
            "rate) or added (previous: toward the denser one); either: one of the two per rate and step, by a "
            "coin; the end of the seen rates without that neighbour keeps its own mask; none: own masks only",
        ),
    )
    calibrate_epochs: int | None = field(
        default=None,
        metadata=spec(
            ge=0,
            help="after training, this many epochs (default round(0.15 × train.epochs)) train only per-rate "
            "channel gains (as rate_gains' own) on the seen rates' hard masks, the weights frozen, the step's rates "
            "sampled as in training, each on its share of the batch (the analogue of universally slimmable networks' per-width normalisation calibration); an unseen rate "
            "interpolates its neighbours' gains; 0 = off (docs/methods.md)",
        ),
    )
    calibrate_deltas: bool | None = field(
        default=None,
        metadata=spec(
            help="in the calibration, each seen rate's hard mask also loses a random fraction u ~ U(0, 1) of its "
            "delta to the next seen rate, with the gains interpolated u of the way to that rate's (what an unseen "
            "rate between them reads); false: the seen rates' exact masks and own gains only; default: as "
            "training, on unless partial_deltas is none",
        ),
    )
    calibrate_order: str = field(
        default="random",
        metadata=spec(
            choices=("random", "magnitude"),
            help="which part of the delta a calibration mask drops: random (as training's partial deltas), or "
            "the smallest magnitudes (the network an unseen rate between the two reads; an option measured in "
            "results/methods/dev/calibrate.md)",
        ),
    )

    rate_gains: bool = field(
        default=False,
        metadata=spec(
            help="per-rate channel gains (switchable-normalisation style): each seen rate owns one learnable "
            "gain g = ½(1 + e^s) > ½ per output channel of every prunable layer, folded into that rate's mask "
            "(kept entries g, pruned ones 0); an unseen rate takes s interpolated linearly between its two seen "
            "neighbours (clamped outside them)"
        ),
    )

    def calibration_deltas(self) -> bool:
        """Whether the calibration's masks hold part of a delta (calibrate_deltas, or as training does)."""
        return self.partial_deltas != "none" if self.calibrate_deltas is None else self.calibrate_deltas

    def check(self, rep: Any, eval_cfg: Any) -> None:
        """Seen rates: non-empty, strictly increasing, in [0, 1), and on the evaluation grid (to 1e-6)."""
        rates = self.seen_rates
        if not rates:
            rep.add("method.seen_rates", "must list at least one rate")
            return
        if any(b <= a for a, b in zip(rates, rates[1:])):
            rep.add("method.seen_rates", "must be strictly increasing")
        if self.partial_deltas != "none" and self.scope != "global":
            rep.add(
                "method.partial_deltas",
                f"{self.partial_deltas} needs scope: global (one pass over all prunable weights); "
                "with scope: layer set partial_deltas: none",
            )
        if self.calibrate_epochs != 0 and self.calibration_deltas() and self.scope != "global":
            rep.add(
                "method.calibrate_deltas",
                "needs scope: global (one pass over all prunable weights); with scope: layer set "
                "calibrate_deltas: false",
            )
        if self.split_batch and self.distill:
            rep.add(
                "method.split_batch",
                "cannot be combined with distill (each rate sees its own samples): set split_batch: false",
            )
        if self.split_batch and self.rates_per_step < 2 and self.sampling in ("uniform", "cycle", "lowest"):
            rep.add(
                "method.split_batch",
                "needs rates_per_step ≥ 2 (one rate per step has no batch to share): set split_batch: false "
                "for one rate per step",
            )
        grid = {round(r, 6) for r in eval_cfg.rates}
        missing = [r for r in rates if round(r, 6) not in grid]
        if missing:
            rep.add(
                "method.seen_rates",
                f"{', '.join(map(str, missing))} not in eval.rates: every seen rate must be evaluated",
            )


@register
class MRMP(BandStopMethod):
    """MRMP (Sahbi, "One-Shot Multi-Rate Pruning of GCNs"): SRMP's band-stop + KL, trained for many rates at once."""

    name = "mrmp"
    Params = MRMPParams
    paper = "H. Sahbi, One-Shot Multi-Rate Pruning of Graph Convolutional Networks (MRMP)"

    def __init__(self, params: MRMPParams, model: AttentionGCN, epochs: int, seed: int = 0):
        super().__init__(params, model, max(1, round(epochs * params.epochs_factor)) if epochs else 0, seed)
        self._steps = 0  # steps taken (the `cycle` scheme's position)
        # partial_deltas: the draws of u and of the delta's kept weights (saved with the state: resumable)
        self._delta_rng = torch.Generator().manual_seed(seed + 1)
        # rate_gains: per seen rate, per prunable layer, the (out,) log-parameters s of the gains g = ½(1 + e^s)
        # (g = 1 at s = 0). One tensor per rate: a step's loss reaches only its rates' tensors, and the others,
        # without a gradient, are left alone by the optimiser (no momentum carried over from their last step)
        self._log_gains: list[list[Tensor]] = []
        self._calibrating = False  # in the calibration phase (calibrate_epochs): only the gains train
        # the calibration's constants (the weights are frozen): every seen rate's hard masks, and (deltas) the
        # flattened membership of each seen rate's delta to the next, (|seen|, N)
        self._calibration: tuple[list[Tensor], Deltas | None] | None = None
        cal = params.calibrate_epochs
        self.calibrate_epochs = round(CALIBRATE_FRACTION * epochs) if cal is None else cal
        if params.rate_gains or self.calibrate_epochs:
            self._log_gains = [
                [torch.nn.Parameter(w.new_zeros(w.shape[-1])) for w in model.prunable_weights()]
                for _ in params.seen_rates
            ]

    # --- per-rate gains (rate_gains, calibrate_epochs) --------------------------------------------------------
    def parameters(self) -> list[Tensor]:
        """The per-rate gains' log-parameters while they train: throughout with rate_gains, else in the
        calibration phase only."""
        if not self._training_gains():
            return []
        return [s for per_rate in self._log_gains for s in per_rate]

    def phases(self) -> list[Phase]:
        phases = [Phase("train", self.epochs)]
        if self.calibrate_epochs:
            phases.append(Phase("calibrate", self.calibrate_epochs, frozen=True))
        return phases

    def begin_phase(self, phase: Phase) -> None:
        self._calibrating = phase.name == "calibrate"
        self._calibration = None  # built on the calibration's first step, from the weights it freezes

    def _training_gains(self) -> bool:
        """Whether a training step's masks carry the gains (at 1 before they train, they would change nothing)."""
        return self.params.rate_gains or self._calibrating

    def gains(self, rates: Sequence[float]) -> list[Tensor]:
        """Per prunable layer, the (R, out) gains at `rates`: a seen rate's own, an unseen rate's s interpolated
        linearly between its two seen neighbours' (the nearest seen rate's outside them), as the calibration
        interpolates them. Requires the gains (rate_gains or the calibration)."""
        seen = torch.tensor(self.params.seen_rates, dtype=torch.float64)
        r = torch.tensor([float(x) for x in rates], dtype=torch.float64)
        if len(seen) == 1:
            lo = hi = torch.zeros(len(r), dtype=torch.long)
            t = torch.zeros(len(r), dtype=torch.float64)
        else:
            hi = torch.searchsorted(seen, r, right=True).clamp(1, len(seen) - 1)
            lo = hi - 1
            t = ((r - seen[lo]) / (seen[hi] - seen[lo])).clamp(0.0, 1.0)
        return interpolated_gains(
            self._log_gains, lo.tolist(), hi.tolist(), t
        )  # exact at a seen rate (t 0 or 1)

    def log_gains(self) -> list[Tensor]:
        """Per prunable layer, the (|seen|, out) log-parameters of every seen rate's gains."""
        return [torch.stack(per_layer) for per_layer in zip(*self._log_gains)]

    def train_masks(self, rate: float | None) -> list[Tensor] | None:
        if rate is not None and (self.params.partial_deltas != "none" or self._calibrating):
            return [m[0] for m in self.train_masks_batch([rate])]
        masks = super().train_masks(rate)
        if masks is None or not self._training_gains():
            return masks
        k = self.params.seen_rates.index(rate)  # training steps only take seen rates
        return [m * gain(s) for m, s in zip(masks, self._log_gains[k])]

    def train_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        if self._calibrating:
            return self._calibration_masks(rates)
        if self.params.partial_deltas != "none":
            masks = self._partial_deltas(rates)
        else:
            masks = super().train_masks_batch(rates)
        if not self._training_gains():
            return masks
        ks = [self.params.seen_rates.index(r) for r in rates]
        gains = [torch.stack([gain(self._log_gains[k][layer]) for k in ks]) for layer in range(len(masks))]
        return [m * g.unsqueeze(-2) for m, g in zip(masks, gains)]

    def _calibration_masks(self, rates: Sequence[float]) -> list[Tensor]:
        """The calibration's (R, in, out) masks: each seen rate's hard mask, less (calibrate_deltas) a share u ~
        U(0, 1) of its delta to the next seen rate (drawn per rate and step; the sparsest seen rate keeps its
        own), times the gains interpolated u of the way to the next rate's, as an unseen rate's between them are
        (`mrmp.methods.calibration`). Gradients reach the gains only."""
        seen = self.params.seen_rates
        ks = [seen.index(r) for r in rates]
        nxt = [min(k + 1, len(seen) - 1) for k in ks]
        if self._calibration is None:  # the weights are frozen: once per phase
            flat = torch.cat([w.detach().reshape(-1) for w in self.model.prunable_weights()])
            with_deltas = self.params.calibration_deltas() and len(seen) > 1
            deltas = Deltas.of(flat, self._global_thresholds(flat, seen)) if with_deltas else None
            self._calibration = (super().eval_masks_batch(seen), deltas)
        all_hard, deltas = self._calibration
        hard = [m[torch.tensor(ks)] for m in all_hard]
        u = torch.zeros(len(rates), dtype=torch.float64)
        if deltas is not None:
            g = self._delta_rng
            u = torch.rand(len(rates), generator=g, dtype=torch.float64) * torch.tensor(
                [float(j != k) for j, k in zip(nxt, ks)], dtype=torch.float64
            )
            drop = deltas.dropped(ks, u, self.params.calibrate_order, g)
            hard = [m * k for m, k in zip(hard, self._per_layer((~drop).to(hard[0].dtype)))]
        gains = interpolated_gains(self._log_gains, ks, nxt, u)
        return [m * g.unsqueeze(-2) for m, g in zip(hard, gains)]

    def _partial_deltas(self, rates: Sequence[float]) -> list[Tensor]:
        """The step's (R, in, out) training masks with partial deltas. Rate r_i's delta to its neighbour n is the
        weights whose magnitude lies between the two thresholds; a fraction u ~ U(0, 1) of them, drawn per rate
        and step, is set to 0 (n the next seen rate: r_i loses part of what it keeps over n) or to 1 (n the
        previous one: r_i gains part of what n keeps over it); every other entry keeps its band-stop value. One
        random draw per weight serves every rate of the step. Scope global (`check`): one pass over the
        flattened weights."""
        seen = self.params.seen_rates
        g = self._delta_rng
        mode = self.params.partial_deltas
        fixed_side = {"next": 1, "previous": -1}.get(mode, 0)  # `either`: drawn per rate below
        own, other = [], []  # per rate: its index in the seen rates and its neighbour's (its own: no delta)
        for r in rates:
            i = seen.index(r)
            side = fixed_side
            if mode == "either":
                side = 1 if float(torch.rand((), generator=g)) < 0.5 else -1
            own.append(i)
            other.append(i + side if 0 <= i + side < len(seen) else i)
        flat, soft = self._global_soft(rates)  # (N,), (k, N)
        if own == other:
            return self._per_layer(soft)
        edges = self._global_thresholds(flat, seen)  # (S,): every seen rate's threshold
        lo = edges[torch.tensor([min(i, j) for i, j in zip(own, other)])].unsqueeze(-1)
        hi = edges[torch.tensor([max(i, j) for i, j in zip(own, other)])].unsqueeze(-1)
        # what a flipped entry becomes: 1 toward a denser neighbour (gained), 0 toward a sparser one (lost)
        value = torch.tensor([float(j < i) for i, j in zip(own, other)], dtype=soft.dtype).unsqueeze(-1)
        z = flat.detach().abs()
        u = torch.rand(len(rates), 1, generator=g)
        flip = (z > lo) & (z <= hi) & (torch.rand(z.shape, generator=g) < u)  # (k, N)
        return self._per_layer(torch.where(flip, value, soft))

    def eval_masks_batch(self, rates: Sequence[float]) -> list[Tensor]:
        """The hard masks, times each rate's gains where rate_gains is on: kept entries g > ½ (kept for the
        unit graph, which keeps entries above ½), pruned entries exactly 0."""
        masks = super().eval_masks_batch(rates)
        if not self._log_gains:
            return masks
        with torch.no_grad():
            return [m * g.unsqueeze(-2) for m, g in zip(masks, self.gains(rates))]

    def splits_batch(self) -> bool:
        return self.params.split_batch or self._calibrating

    def regularizer(self) -> Tensor | None:
        """SRMP's KL term while the weights train; none in the calibration phase (frozen weights: a constant)."""
        return None if self._calibrating else super().regularizer()

    def step_rates(self, generator: torch.Generator) -> Sequence[float | None]:
        if not self.pruning:
            return [None]
        seen = self.available_rates()
        k = min(self.params.rates_per_step, len(seen))
        scheme = self.params.sampling
        if scheme == "all" or (scheme == "sandwich" and len(seen) <= 2):
            picked = list(range(len(seen)))
        elif scheme == "cycle":
            picked = [(self._steps * k + i) % len(seen) for i in range(k)]
        elif scheme == "sandwich":  # the extremes every step, the middle sampled
            middle = (1 + self._draw(seen[1:-1], max(k - 2, 0), generator)).tolist()
            picked = sorted({0, len(seen) - 1, *middle})
        elif scheme == "lowest":  # the densest network every step, the rest sampled
            picked = sorted({0, *(1 + self._draw(seen[1:], k - 1, generator)).tolist()})
        else:
            picked = self._draw(seen, k, generator).tolist()
        self._steps += 1
        return [seen[i] for i in picked]

    def available_rates(self) -> list[float]:
        """The seen rates a step may train now: all of them, or (progressive shrinking) the lowest n, n growing
        linearly from 1 at the first pruning epoch to all of them at `shrink_epochs`."""
        seen = list(self.params.seen_rates)
        span = self.params.shrink_epochs
        if span <= 0:
            return seen
        done = self._epoch - self.params.warmup_epochs  # pruning epochs completed
        n = 1 + (len(seen) - 1) * min(1.0, max(0, done) / span)
        return seen[: max(1, int(n + 1e-9))]

    def _draw(self, rates: Sequence[float], k: int, generator: torch.Generator) -> torch.Tensor:
        """k distinct indices into `rates`: equally likely, or weighted by (1 − r)^−rate_power."""
        power = self.params.rate_power
        if power == 0 or k == 0:
            return torch.randperm(len(rates), generator=generator)[:k]
        weights = (1.0 - torch.tensor(rates, dtype=torch.float64)).pow(-power)
        return torch.multinomial(weights, k, replacement=False, generator=generator)

    def task_loss(
        self,
        rates: Sequence[float | None],
        logits: Sequence[Tensor],
        criterion: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """Without distillation, the mean of the rates' losses. With it, the step's densest network (its lowest
        rate) learns from the labels and every other rate from the densest one's detached predictions
        (cross-entropy to its softened distribution, scaled by T² as usual), averaged over the rates."""
        if not self.params.distill or len(logits) < 2:
            return super().task_loss(rates, logits, criterion)
        teacher = min(range(len(rates)), key=lambda i: rates[i] or 0.0)
        temp = self.params.distill_temperature
        target = F.softmax(logits[teacher].detach() / temp, -1)
        loss = criterion(logits[teacher])
        for i, z in enumerate(logits):
            if i != teacher:
                loss = loss - (target * F.log_softmax(z / temp, -1)).sum(-1).mean() * temp**2
        return loss / len(logits)

    def seen_rates(self) -> list[float]:
        return list(self.params.seen_rates)

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "steps": self._steps}
        if self.params.partial_deltas != "none":
            state["delta_rng"] = self._delta_rng.get_state()
        if self._log_gains:
            state["log_gains"] = [s.detach().clone() for s in self.log_gains()]  # per layer (|seen|, out)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._steps = int(state.get("steps", 0))
        if self.params.partial_deltas != "none" and "delta_rng" in state:
            self._delta_rng.set_state(state["delta_rng"])
        if self._log_gains:
            with torch.no_grad():
                for layer, saved in enumerate(state["log_gains"]):
                    for per_rate, row in zip(self._log_gains, saved):
                        per_rate[layer].copy_(row)
