"""Accessibility and co-accessibility on the unit graph of the prunable layers (the TCMP paper's notions).

Vertices are units (channels); edges are prunable weights kept by a mask (a mask entry above ½: 1 in a hard
mask, |w| > a in a band-stop). A kept connection is *disconnected* when no input reaches its source unit (not
accessible) or its target unit reaches no output (not co-accessible). With the hard step `h(x) = 1{x > 0}` this
is the integrity check every method's curve reports; with a smooth `h` it is TCMP's differentiable surrogate.
Masks may carry leading (rate) dimensions.

The graph is exact for the network because the network follows it (`unit_gates`, applied by
`AttentionGCN.forward` whenever it is given masks): a unit no input reaches loses its bias, so it outputs
ReLU(0) = 0; a unit that reaches no output is not read by the next block's attention projections. Everything a
unit sends downstream then goes through its kept outgoing edges, and a disconnected connection cannot change
any logit for any input (docs/methods.md, "The unit graph").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def hard_step(x: Tensor) -> Tensor:
    return (x > 0).to(x.dtype)


def kept_edges(mask: Tensor) -> Tensor:
    """The connections a mask keeps, as 0/1 of the mask's dtype: entries above ½ (a hard mask's ones; a
    band-stop's |w| > a, where ψ = ½), without gradient."""
    return (mask.detach() > 0.5).to(mask.dtype)


@dataclass
class UnitGates:
    """Per prunable layer l: `alive[l]` (..., out) is 1 where an output unit is accessible (some kept path from
    the inputs reaches it), `read[l]` (..., in_units) 1 where an input unit is co-accessible (some kept path from
    it reaches an output), the input units counted before tiling (`in_repeat`): layer l−1's output units, or
    the input features for l = 0."""

    alive: list[Tensor]
    read: list[Tensor]


def unit_gates(masks: Sequence[Tensor], in_repeats: Sequence[int]) -> UnitGates:
    """Accessibility of every layer's output units and co-accessibility of every layer's input units, on the
    connections the masks keep (`kept_edges`), with the hard step. Masks may carry leading (rate) dimensions.

    The network multiplies each unit's bias by `alive` and each block's attention projections' input rows by
    `read`: a unit without a kept path from the inputs carries 0, and one without a kept path to the outputs
    is read by nothing, so the unit graph holds every path of the forward pass."""
    kept = [kept_edges(m) for m in masks]
    lead = kept[0].shape[:-2]
    a = kept[0].new_ones(*lead, kept[0].shape[-2])
    alive: list[Tensor] = []
    for i, m in enumerate(kept):
        if i > 0:
            a = a.repeat(*([1] * len(lead)), in_repeats[i])
        a = hard_step(torch.matmul(a.unsqueeze(-2), m).squeeze(-2))
        alive.append(a)
    read: list[Tensor] = [kept[0]] * len(kept)
    b = kept[-1].new_ones(*lead, kept[-1].shape[-1])
    for i in range(len(kept) - 1, -1, -1):
        x = torch.matmul(kept[i], b.unsqueeze(-1)).squeeze(-1)
        if i > 0:
            x = x.unflatten(-1, (in_repeats[i], -1)).sum(-2)
        b = hard_step(x)
        read[i] = b
    return UnitGates(alive, read)


def propagate(
    masks: Sequence[Tensor],
    in_repeats: Sequence[int],
    h: Callable[[Tensor], Tensor] = hard_step,
) -> tuple[list[Tensor], list[Tensor]]:
    """Forward accessibility of each layer's input units and backward co-accessibility of its output units.

    `alpha_0 = 1`, `alpha_l = h(M_lᵀ alpha_{l-1})`; `beta_L = 1`, `beta_{l-1} = h(M_l beta_l)`, where a unit tiled
    `in_repeat` times into the next layer sums its outgoing edges over all tiles before `h`.
    """
    lead = masks[0].shape[:-2]
    alpha_in: list[Tensor] = []
    a = masks[0].new_ones(*lead, masks[0].shape[-2])
    for i, m in enumerate(masks):
        if i > 0:
            a = a.repeat(*([1] * len(lead)), in_repeats[i])
        alpha_in.append(a)
        a = h(torch.matmul(a.unsqueeze(-2), m).squeeze(-2))
    beta_out: list[Tensor] = [masks[0]] * len(masks)
    b = masks[-1].new_ones(*lead, masks[-1].shape[-1])
    for i in range(len(masks) - 1, -1, -1):
        beta_out[i] = b
        x = torch.matmul(masks[i], b.unsqueeze(-1)).squeeze(-1)
        if i > 0:
            x = x.unflatten(-1, (in_repeats[i], -1)).sum(-2)
        b = h(x)
    return alpha_in, beta_out


def consistent_count(masks: Sequence[Tensor], in_repeats: Sequence[int]) -> Tensor:
    """Σ_l α_{l-1}ᵀ M_l β_l for 0/1 masks: how many kept connections are accessible and co-accessible (the
    total of `consistent_masks`, per leading index), with the hard step."""
    return sum(consistent_counts(masks, in_repeats))  # type: ignore[return-value]


def consistent_counts(masks: Sequence[Tensor], in_repeats: Sequence[int]) -> list[Tensor]:
    """Per layer, α_{l-1}ᵀ M_l β_l: the size of each layer's `consistent_masks` (0/1 masks, hard step), without
    building them. The forward pass's products M_lᵀ α are reused for the counts, and the inputs'
    co-accessibility (never needed) is not computed."""
    lead = masks[0].shape[:-2]
    a = masks[0].new_ones(*lead, masks[0].shape[-2])
    reach: list[Tensor] = []  # M_lᵀ α_{l-1}: how many accessible inputs reach each output unit
    for i, m in enumerate(masks):
        if i > 0:
            a = a.repeat(*([1] * len(lead)), in_repeats[i])
        s = torch.matmul(a.unsqueeze(-2), m).squeeze(-2)
        reach.append(s)
        a = hard_step(s)
    b = masks[-1].new_ones(*lead, masks[-1].shape[-1])
    counts = [reach[-1].sum(-1)]
    for i in range(len(masks) - 1, 0, -1):
        x = torch.matmul(masks[i], b.unsqueeze(-1)).squeeze(-1)
        b = hard_step(x.unflatten(-1, (in_repeats[i], -1)).sum(-2))
        counts.append((reach[i - 1] * b).sum(-1))
    return counts[::-1]


def consistent_masks(
    masks: Sequence[Tensor], in_repeats: Sequence[int], h: Callable[[Tensor], Tensor] = hard_step
) -> list[Tensor]:
    """M̃_l[i, j] = M_l[i, j] · alpha_{l-1}[i] · beta_l[j]: only accessible and co-accessible connections."""
    alpha_in, beta_out = propagate(masks, in_repeats, h)
    return [m * a.unsqueeze(-1) * b.unsqueeze(-2) for m, a, b in zip(masks, alpha_in, beta_out)]


@dataclass
class Integrity:
    """Counts over all prunable weights (tensors shaped like the masks' leading dims)."""

    total: int
    kept: Tensor
    consistent: Tensor
    path_exists: Tensor

    @property
    def disconnected(self) -> Tensor:
        return self.kept - self.consistent

    @property
    def observed_rate(self) -> Tensor:
        return 1.0 - self.kept.double() / self.total

    @property
    def effective_rate(self) -> Tensor:
        return 1.0 - self.consistent.double() / self.total


@torch.no_grad()
def integrity(masks: Sequence[Tensor], in_repeats: Sequence[int]) -> Integrity:
    """Kept, consistent (accessible and co-accessible) and disconnected connections of hard 0/1 masks, and
    whether any input -> output path survives (a consistent connection in the last layer)."""
    hard = [kept_edges(m).float() for m in masks]
    counts = consistent_counts(hard, in_repeats)
    kept = sum(m.sum((-1, -2)) for m in hard)
    total = sum(m.shape[-1] * m.shape[-2] for m in masks)
    return Integrity(total, kept.long(), sum(counts).long(), counts[-1] > 0)
