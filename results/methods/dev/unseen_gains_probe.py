"""Diagnostic (issue #12.3): after the default (calibrated) MRMP training, read each unseen rate with its gains
interpolated at a different position between its seen neighbours' log-gains: by rate (the code: the share of the
delta's weights the rate drops), by the share of the delta's magnitude mass it drops (|w| or w²), or its denser /
sparser neighbour's gains. No weight or gain changes: one trained network per seed, read several ways.
Development evidence, not a method."""

from __future__ import annotations

import sys

import torch
from calibrate_probe import acc, trained_default  # this folder (the script's own)

from mrmp.methods.calibration import gain
from mrmp.train import Trainer

RULES = ("rate", "mass1", "mass2", "denser", "sparser")
RATES = [round(0.50 + 0.01 * i, 2) for i in range(49)]  # the curve's rates 0.50-0.98
HEADER = "dataset,seed,rate,seen,rule,position,test"


def trained(dataset: str, seed: int) -> tuple[Trainer, list[float], torch.Tensor, list[torch.Tensor]]:
    """The default MRMP trained on `seed`, its seen rates, its flattened prunable weights and, per layer, every
    seen rate's (|seen|, out) log-gains."""
    t = trained_default(dataset, seed)
    flat = torch.cat([w.detach().reshape(-1) for w in t.method.model.prunable_weights()])
    return t, list(t.method.params.seen_rates), flat, t.method.log_gains()


def read(
    t: Trainer, hard: list[torch.Tensor], log_gains: list[torch.Tensor], a: int, b: int, u: float
) -> float:
    """Test accuracy of the network with per-layer (in, out) hard masks and the gains u of the way from seen
    rate a's to b's."""
    masks = [hm * gain((1 - u) * s[a] + u * s[b]).unsqueeze(0) for hm, s in zip(hard, log_gains)]
    return acc(t.model, masks, t.x_test, t.y_test)


def positions(method, flat: torch.Tensor, rate: float, lo: float, hi: float) -> dict[str, float]:
    z = flat.abs()
    t_lo, t_r, t_hi = (float(v) for v in method._global_thresholds(flat, [lo, rate, hi]))
    delta = (z > t_lo) & (z <= t_hi)
    dropped = (z > t_lo) & (z <= t_r)
    out = {"rate": (rate - lo) / (hi - lo), "denser": 0.0, "sparser": 1.0}
    for p in (1, 2):
        out[f"mass{p}"] = float((z[dropped] ** p).sum() / (z[delta] ** p).sum())
    return out


def main(dataset: str, seeds: list[int]) -> None:
    print(HEADER, flush=True)
    for seed in seeds:
        t, seen, flat, log_gains = trained(dataset, seed)
        m = t.method
        hard_all = super(type(m), m).eval_masks_batch(RATES)
        for i, r in enumerate(RATES):
            hard = [h[i] for h in hard_all]
            if r in seen:
                k = seen.index(r)
                pos = {"rate": (k, k, 0.0)}
            else:
                hi = next(j for j, s in enumerate(seen) if s > r)
                p = positions(m, flat, r, seen[hi - 1], seen[hi])
                pos = {rule: (hi - 1, hi, p[rule]) for rule in RULES}
            for rule, (a, b, u) in pos.items():
                test = read(t, hard, log_gains, a, b, u)
                print(f"{dataset},{seed},{r},{int(r in seen)},{rule},{u:.4f},{test:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")])
