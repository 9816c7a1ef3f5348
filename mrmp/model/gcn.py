"""The attention GCN of the sibling paper (arXiv 2511.21625), with heads and widths as config fields.

A skeleton sequence is one graph: nodes are joint trajectories, node features the chunk means (12 by default).
One block maps H (B, V, C_in) to ReLU(concat_h N_h H W_h + b), with N_h = (Â + softmax(Q_h K_hᵀ/√d)) / 2: the
bone adjacency (normalised, self-loops) and a learned attention mix the nodes, the filters W mix the channels.
All heads share one (C_in, heads·filters) filter matrix so that one GEMM computes them; mixing after filtering
is the same product (N H) W = N (H W).

Masks may carry a leading rate dimension R: the forward then returns (R, B, classes) logits, evaluating many
pruning rates in one batched pass.

A masked network drops its disconnected units (`topology.unit_gates`): a unit that no kept path from the inputs
reaches loses its bias (it outputs ReLU(0) = 0), and a block's attention projections read only the input units
from which a kept path reaches the outputs. Every signal then travels through kept prunable connections, which
is what makes the unit graph (and the integrity report) exact for the forward pass (docs/methods.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mrmp.torch_compat import softmax_backward

from .topology import unit_gates

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
        self.register_buffer("a_half", 0.5 * self.a_hat, persistent=False)  # the bone term of N_h
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

    def forward(
        self, x: Tensor, masks: list[Tensor] | None = None, shared: dict[str, Tensor] | None = None
    ) -> Tensor:
        """x: (B, V, F). masks: None, or per prunable layer a (in, out) or (R, in, out) tensor. With (R, in, out)
        masks the result is (R, B, classes): every rate on every sample, or, for x (R, B, V, F), rate r on its
        own samples x[r] (training several rates on shares of one batch).

        `shared`: with (R, in, out) masks, a dict kept by the caller across calls on the same x with unchanged
        weights (e.g. rates evaluated in chunks): block 1's mask-independent node mixing is computed once.

        Inside the blocks activations are channel-major, (..., C, V): each (sample, head) then needs only
        contiguous (rows, V) slices of one projection, and its node mixing is two batched products whose
        outputs are V wide (see `_NodeMixing`)."""
        batched = masks is not None and masks[0].dim() == 3
        gates = None if masks is None else unit_gates(masks, [p.in_repeat for p in self.prunable])
        h = x.transpose(-1, -2)  # (B, C, V)
        for i in range(len(self.filter_w)):
            w = self.filter_w[i]
            b = self.filter_b[i]
            read = None
            if gates is not None:
                w = w * masks[i]
                b = b * gates.alive[i]  # (C,) or (R, C)
                read = gates.read[i] if i > 0 else None  # the input features are never gated
            if batched and i == 0 and h.dim() == 3:  # every rate on the same samples
                z = self._first_block_batched(h, w, shared)  # (R, B, H*F, V)
            else:
                z = self._block(h, w, i, read)
            if batched:
                b = b[:, None]  # (R, 1, C): one bias per rate, broadcast over samples
            h = F.relu(z + b.unsqueeze(-1))
        w, b = self.fc_w, self.fc_b
        if gates is not None:
            w, b = w * masks[-1], b * gates.alive[-1]
            if batched:
                b = b[:, None]
        flat = h.transpose(-1, -2).flatten(-2)  # FC input unit v*C + c (node-major, as documented)
        f = F.relu(torch.matmul(flat, w) + b)  # (R, B, in) @ (R, in, out) when batched
        return self.classifier(f)

    @torch.no_grad()
    def pruned_state(self, masks: list[Tensor]) -> dict[str, Tensor]:
        """The parameters (`named_parameters` names, detached copies) of the network pruned by 2-D `masks`, with
        the masks and the unit gates baked in: the prunable weights times their masks, a unit's bias zeroed
        where no kept path reaches it, and blocks 2…L's query and key rows zeroed for the input units no kept
        path leads out of. A plain forward on these parameters computes `forward(x, masks)`."""
        gates = unit_gates(masks, [p.in_repeat for p in self.prunable])
        out = {n: p.detach().clone() for n, p in self.named_parameters()}
        names = {id(p): n for n, p in self.named_parameters()}
        for layer, mask in zip(self.prunable, masks):
            out[names[id(layer.weight)]].mul_(mask)
        for i in range(len(self.filter_w)):
            out[names[id(self.filter_b[i])]].mul_(gates.alive[i])
            if i > 0:
                for proj in (self.query[i], self.key[i]):
                    out[names[id(proj)]].mul_(gates.read[i].unsqueeze(-1))
        out[names[id(self.fc_b)]].mul_(gates.alive[-1])
        return out

    def _qk_weights(self, i: int, c_in: int) -> tuple[Tensor, Tensor]:
        """Block i's query (scaled by 1/√d: the score scale, folded into the projection) and key matrices,
        (C_in, heads, d)."""
        wq = (self.query[i] * (1.0 / math.sqrt(self.key_dim))).view(c_in, self.heads, self.key_dim)
        return wq, self.key[i].view(c_in, self.heads, self.key_dim)

    def _block(self, h: Tensor, w: Tensor, i: int, read: Tensor | None = None) -> Tensor:
        """Σ_h N_h H W_h of one block, before bias and ReLU. h (..., C_in, V); w (C_in, H·F) or, per rate,
        (R, C_in, H·F) with h (R, B, C_in, V). `read` (C_in,) or (R, C_in): the input units the attention
        projections read (None: all). Returns (..., H·F, V)."""
        heads, f, d = self.heads, self.filters, self.key_dim
        c_in, v = w.shape[-2], h.shape[-1]
        wq, wk = self._qk_weights(i, c_in)
        lead = w.shape[:-2]
        if read is not None:  # zero the rows of the units the attention does not read
            g = read.reshape(*read.shape, 1, 1)
            wq, wk = wq * g, wk * g
        # one projection for filters, queries and keys, grouped per head: [W_h | Q_h | K_h]
        wcat = torch.cat(
            [w.view(*lead, c_in, heads, f), wq.expand(*lead, -1, -1, -1), wk.expand(*lead, -1, -1, -1)], -1
        ).flatten(-2)  # (R?, C_in, H·(F+2d))
        nodes = h.transpose(-1, -2)  # (..., V, C_in)
        if lead:  # per rate: one GEMM per rate over all samples and nodes
            p = torch.bmm(nodes.reshape(lead[0], -1, c_in), wcat)
        else:
            p = torch.mm(nodes.reshape(-1, c_in), wcat)
        batch = h.shape[:-2]
        p = p.view(-1, v, heads, f + 2 * d).permute(0, 2, 3, 1).reshape(-1, f + 2 * d, v)
        z = _NodeMixing.apply(p, self.a_half, f, d)  # (G, F, V), G = (R·)B·H
        return z.view(*batch, heads * f, v)

    def _first_block_batched(self, h: Tensor, w: Tensor, shared: dict[str, Tensor] | None = None) -> Tensor:
        """Block 1 for a stack of R masks. Its input and its attention do not depend on the masks, so the
        node mixing is applied once to the input, then filtered by every rate's weights: (N X) W_r, the same
        product as N (X W_r) in another order. h (B, C_in, V), w (R, C_in, H·F); returns (R, B, H·F, V)."""
        heads, f, d = self.heads, self.filters, self.key_dim
        c_in, v, b = h.shape[-2], h.shape[-1], h.shape[0]
        key = (h.data_ptr(), tuple(h.shape))
        if shared is not None and shared.get("key") == key:
            y = shared["block1"]
        else:
            wq, wk = self._qk_weights(0, c_in)
            qk = torch.mm(h.transpose(-1, -2).reshape(-1, c_in), torch.cat([wq, wk], -1).flatten(-2))
            qk = qk.view(b, v, heads, 2 * d).permute(0, 2, 3, 1)  # (B, H, 2d, V)
            p = torch.cat([h.unsqueeze(1).expand(b, heads, c_in, v), qk], 2).reshape(-1, c_in + 2 * d, v)
            y = _NodeMixing.apply(p, self.a_half, c_in, d).view(b, heads, c_in, v)  # (N_h X)ᵀ per (g, head)
            if shared is not None:
                shared.update(key=key, block1=y)  # type: ignore[arg-type]
        z = torch.einsum("rchf,bhcv->rbhfv", w.view(-1, c_in, heads, f), y)
        return z.reshape(w.shape[0], b, heads * f, v)


class _NodeMixing(torch.autograd.Function):
    """Zᵀ = Xᵀ Nᵀ with N = ½Â + ½ softmax(Q Kᵀ), for every (sample, head) g at once, and its gradient.

    Input p (G, F + 2d, V): per g the rows Xᵀ (F, the filtered features), Qᵀ (d, already scaled by 1/√d) and
    Kᵀ (d). Every batched product is oriented so that its output is V wide ((V, V) or (F, V)): the small
    GEMM kernels are about twice as fast that way as with an F-wide output. The gradient is returned as one
    tensor (no zero-filled slice gradients to add up).
    """

    @staticmethod
    def forward(ctx, p: Tensor, a_half: Tensor, f: int, d: int) -> Tensor:
        xt, qt, kt = p[:, :f], p[:, f : f + d], p[:, f + d :]
        att = torch.softmax(torch.bmm(qt.transpose(1, 2), kt), dim=-1)  # (G, V, V)
        n = torch.add(a_half, att, alpha=0.5)
        ctx.save_for_backward(p, att, n)
        ctx.sizes = (f, d)
        return torch.bmm(xt, n.transpose(1, 2))  # (G, F, V)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        p, att, n = ctx.saved_tensors
        f, d = ctx.sizes
        xt, qt, kt = p[:, :f], p[:, f : f + d], p[:, f + d :]
        dxt = torch.bmm(grad, n)
        dn = torch.bmm((grad * 0.5).transpose(1, 2), xt)  # ½ dN = dA
        ds = softmax_backward(dn, att, -1, att.dtype)
        dqt = torch.bmm(kt, ds.transpose(1, 2))
        dkt = torch.bmm(qt, ds)
        return torch.cat([dxt, dqt, dkt], 1), None, None, None


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
