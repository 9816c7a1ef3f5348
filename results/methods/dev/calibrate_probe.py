"""Diagnostic (issue #12.3): after the default MRMP training, how much of a dense rate's gap to SRMP comes back
when that rate's network is recalibrated alone on the training clips with its hard mask: only the biases (what a
per-rate bias would buy), only per-channel output gains, or every unmasked weight (a per-rate fine-tune: an
upper bound of what private per-rate parameters could give). Development evidence, not a method."""

from __future__ import annotations

import copy
import sys

import torch
from torch.nn import functional as F

from mrmp.config import config_from_dict
from mrmp.train import Trainer, prepare_data


def acc(model, masks, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x, masks).argmax(-1) == y).float().mean())


def recalibrate(t: Trainer, masks, what: str, epochs: int, lr: float) -> float:
    model = copy.deepcopy(t.model)
    for p in model.parameters():
        p.requires_grad_(False)
    extra = []
    if what == "bias":
        params = [*model.filter_b, model.fc_b, model.classifier.bias]
    elif what == "gain":  # one gain per output channel of every prunable layer, folded into its mask
        extra = [torch.ones(m.shape[-1], requires_grad=True) for m in masks]
        params = extra
    else:  # every parameter; pruned weights stay 0 through the mask
        params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(0)
    n = len(t.y_train)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, 96):
            idx = perm[i : i + 96]
            m = [mk * e for mk, e in zip(masks, extra)] if extra else masks
            loss = F.cross_entropy(model(t.x_train[idx], m), t.y_train[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
    m = [mk * e.detach() for mk, e in zip(masks, extra)] if extra else masks
    return acc(model, m, t.x_test, t.y_test), acc(model, m, t.x_train, t.y_train)


def trained_default(dataset: str, seed: int) -> Trainer:
    """MRMP at its defaults (small model, fold 1, one CPU thread), trained to its end."""
    raw = {
        "data": {"name": dataset, "fold": 1},
        "model": {"preset": "small"},
        "train": {"threads": 1, "device": "cpu", "seed": seed},
        "method": {"name": "mrmp"},
    }
    cfg = config_from_dict(raw)
    t = Trainer(cfg, prepare_data(cfg.data))
    t.fit()
    return t


def main(dataset: str, seeds: list[int], rates: list[float], epochs: int) -> None:
    print("dataset,seed,rate,what,epochs,test,train")
    for seed in seeds:
        t = trained_default(dataset, seed)
        for rate in rates:
            masks = [m[0] for m in t.method.eval_masks_batch([rate])]
            print(
                f"{dataset},{seed},{rate},none,0,{acc(t.model, masks, t.x_test, t.y_test):.4f},"
                f"{acc(t.model, masks, t.x_train, t.y_train):.4f}",
                flush=True,
            )
            for what in ("bias", "gain", "all"):
                test, train = recalibrate(t, masks, what, epochs, 0.003)
                print(f"{dataset},{seed},{rate},{what},{epochs},{test:.4f},{train:.4f}", flush=True)


if __name__ == "__main__":
    ds, seeds, rates, ep = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    main(ds, [int(s) for s in seeds.split(",")], [float(r) for r in rates.split(",")], int(ep))
