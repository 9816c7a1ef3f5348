"""MRMP's calibration phase (docs/methods.md): what a calibration step's masks are made of.

The weights are frozen during the calibration, so what they determine is computed once per phase: every seen
rate's hard mask, and which weights lie in each seen rate's delta to the next (the weights kept by one and not
by the other). A step's mask for seen rate k is its hard mask less a share u ~ U(0, 1) of that delta (a random
part, or the smallest magnitudes), times the gains interpolated u of the way from rate k's to the next rate's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def gain(log_param: Tensor) -> Tensor:
    """A per-rate channel gain from its log-parameter s: g = ½(1 + e^s), 1 at s = 0 and always above ½."""
    return 0.5 + 0.5 * log_param.exp()


@dataclass
class Deltas:
    """Over the flattened prunable weights: their magnitudes `z` (N,), which lie in each seen rate's delta to
    the next (`member`, (|seen|, N); the sparsest rate's is empty), and each delta's magnitudes, ascending."""

    z: Tensor
    member: Tensor
    ascending: list[Tensor]

    @classmethod
    def of(cls, flat: Tensor, edges: Tensor) -> Deltas:
        """From the flattened weights and every seen rate's threshold (ascending with the rate)."""
        z = flat.detach().abs()
        lo, hi = edges.unsqueeze(-1), torch.cat([edges[1:], edges[-1:]]).unsqueeze(-1)
        member = (z > lo) & (z <= hi)
        return cls(z, member, [z[m].sort().values for m in member])

    def dropped(self, ks: Sequence[int], u: Tensor, order: str, generator: torch.Generator) -> Tensor:
        """(R, N): the share u[i] of seen rate ks[i]'s delta that its mask drops, the smallest magnitudes
        (`order` magnitude: the network of the rate u of the way to the next) or a random part (one draw per
        weight serves every rate)."""
        member = self.member[torch.tensor(list(ks))]
        if order == "magnitude":
            cuts = []
            for k, share in zip(ks, u.tolist()):
                values, n = self.ascending[k], round(share * len(self.ascending[k]))
                cuts.append(values[n - 1] if n > 0 else values.new_tensor(-1.0))  # below every weight at 0
            return member & (self.z <= torch.stack(cuts).unsqueeze(-1))
        draw = torch.rand(self.z.shape, generator=generator)
        return member & (draw < u.to(draw.dtype).unsqueeze(-1))


def interpolated_gains(
    log_gains: Sequence[Sequence[Tensor]], ks: Sequence[int], nxt: Sequence[int], u: Tensor
) -> list[Tensor]:
    """Per prunable layer, the (R, out) gains u[i] of the way from seen rate ks[i]'s to nxt[i]'s (with their
    gradients): `log_gains[k][layer]` is rate k's (out,) log-parameters. The calibration's masks and every rate
    read at evaluation (`MRMP.gains`) interpolate through it."""
    out = []
    for layer in range(len(log_gains[0])):
        s_own = torch.stack([log_gains[k][layer] for k in ks])
        s_next = torch.stack([log_gains[j][layer] for j in nxt])
        t = u.to(dtype=s_own.dtype, device=s_own.device).unsqueeze(-1)
        out.append(gain((1 - t) * s_own + t * s_next))
    return out
