"""The attention GCN of the sibling paper (arXiv 2511.21625), with heads and widths as config fields.

A skeleton sequence is one graph: nodes are joint trajectories, node features the chunk means (12 by default).
One block maps H (B, V, C_in) to ReLU(concat_h N_h H W_h + b), with N_h = (Â + softmax(Q_h K_hᵀ/√d)) / 2: the
bone adjacency (normalised, self-loops) and a learned attention mix the nodes, the filters W mix the channels.
All heads share one (C_in, heads·filters) filter matrix so that one GEMM computes them; mixing after filtering
is the same product (N H) W = N (H W).

Masks may carry a leading rate dimension R: the forward then returns (R, B, classes) logits, evaluating many
pruning rates in one batched pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

PRESETS: dict[str, dict[str, int]] = {
    # fast default: seconds per hundred epochs on a laptop CPU
    "small": {"blocks": 3, "heads": 2, "filters": 8, "key_dim": 8, "fc": 64},
    # "oversized" multi-head GCN in the spirit of the pruning papers (our sizing; theirs is not published)
    "paper": {"blocks": 3, "heads": 4, "filters": 32, "key_dim": 16, "fc": 256},
}


@dataclass(frozen=True)
class PrunableLayer:
    """A prunable weight stored (in_units, out_units). Input unit k is unit k % C_prev of the previous layer
    (`in_repeat` = how many times the previous layer's units are tiled, e.g. V for the FC after flattening)."""

    name: str
    weight: nn.Parameter
    in_repeat: int = 1


def normalized_adjacency(adjacency: Tensor) -> Tensor:
    """D^-1/2 (A + I) D^-1/2 for a 0/1 adjacency."""
    a = adjacency.float().clone()
    a.fill_diagonal_(1.0)
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


class AttentionGCN(nn.Module):
    """Blocks of (multi-head attention over nodes + graph convolution), an FC layer and a classifier."""

    def __init__(
        self,
        in_features: int,
        num_nodes: int,
        num_classes: int,
        adjacency: Tensor,
        blocks: int = 3,
        heads: int = 2,
        filters: int = 8,
        key_dim: int = 8,
        fc: int = 64,
    ):
        super().__init__()
        self.num_nodes, self.heads, self.filters, self.key_dim = num_nodes, heads, filters, key_dim
        self.register_buffer("a_hat", normalized_adjacency(adjacency), persistent=False)
        width = heads * filters
        dims = [in_features] + [width] * blocks
        self.filter_w = nn.ParameterList()
        self.filter_b = nn.ParameterList()
        self.query = nn.ParameterList()
        self.key = nn.ParameterList()
        for c_in, c_out in zip(dims[:-1], dims[1:]):
            self.filter_w.append(nn.Parameter(_glorot(c_in, c_out)))
            self.filter_b.append(nn.Parameter(torch.zeros(c_out)))
            self.query.append(nn.Parameter(_glorot(c_in, heads * key_dim)))
            self.key.append(nn.Parameter(_glorot(c_in, heads * key_dim)))
        self.fc_w = nn.Parameter(_glorot(num_nodes * width, fc))
        self.fc_b = nn.Parameter(torch.zeros(fc))
        self.classifier = nn.Linear(fc, num_classes)
        self.prunable = [PrunableLayer(f"block{i + 1}.filters", w) for i, w in enumerate(self.filter_w)]
        self.prunable.append(PrunableLayer("fc", self.fc_w, in_repeat=num_nodes))

    def prunable_weights(self) -> list[Tensor]:
        return [p.weight for p in self.prunable]

    def forward(self, x: Tensor, masks: list[Tensor] | None = None) -> Tensor:
        """x: (B, V, F). masks: None, or per prunable layer a (in, out) or (R, in, out) tensor."""
        batched = masks is not None and masks[0].dim() == 3
        h = x.unsqueeze(0) if batched else x  # (R?, B, V, C)
        lead = h.shape[:-2]
        v = self.num_nodes
        for i in range(len(self.filter_w)):
            w = self.filter_w[i]
            if masks is not None:
                w = w * masks[i]
            if batched:
                w = w.unsqueeze(1)  # (R, 1, C_in, C_out) broadcasts over the batch
            xw = torch.matmul(h, w)  # (..., V, H*F)
            q = torch.matmul(h, self.query[i]).unflatten(-1, (self.heads, self.key_dim)).transpose(-2, -3)
            k = torch.matmul(h, self.key[i]).unflatten(-1, (self.heads, self.key_dim)).transpose(-2, -3)
            att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.key_dim), dim=-1)
            xw = xw.unflatten(-1, (self.heads, self.filters)).transpose(-2, -3)  # (..., H, V, F)
            z = 0.5 * (torch.matmul(self.a_hat, xw) + torch.matmul(att, xw))
            h = F.relu(z.transpose(-2, -3).flatten(-2) + self.filter_b[i])
            lead = h.shape[:-2]
        w = self.fc_w if masks is None else self.fc_w * masks[-1]
        flat = h.reshape(*lead, v * h.shape[-1])
        f = F.relu(torch.matmul(flat, w) + self.fc_b)  # (R, B, in) @ (R, in, out) when batched
        return self.classifier(f)


def _glorot(n_in: int, n_out: int) -> Tensor:
    bound = math.sqrt(6.0 / (n_in + n_out))
    return torch.empty(n_in, n_out).uniform_(-bound, bound)


def build_model(
    preset: str,
    in_features: int,
    num_nodes: int,
    num_classes: int,
    adjacency: Tensor,
    **overrides: int | None,
) -> AttentionGCN:
    """A preset's sizes with non-None overrides applied."""
    sizes = dict(PRESETS[preset])
    sizes.update({k: v for k, v in overrides.items() if v is not None})
    return AttentionGCN(in_features, num_nodes, num_classes, adjacency, **sizes)


def parameter_table(model: AttentionGCN) -> list[dict[str, object]]:
    """One row per parameter tensor: name, shape, count, prunable."""
    prunable = {id(p.weight) for p in model.prunable}
    return [
        {"name": n, "shape": list(p.shape), "params": p.numel(), "prunable": id(p) in prunable}
        for n, p in model.named_parameters()
    ]
