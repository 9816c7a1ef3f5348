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

RULES = ("rate", "mass1", "mass2", "denser", "sparser")


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
    print("dataset,seed,rate,seen,rule,position,test", flush=True)
    for seed in seeds:
        t = trained_default(dataset, seed)
        m = t.method
        seen = list(m.params.seen_rates)
        flat = torch.cat([w.detach().reshape(-1) for w in m.model.prunable_weights()])
        log_gains = m.log_gains()  # per layer (|seen|, out)
        rates = [round(0.50 + 0.01 * i, 2) for i in range(49)]
        hard_all = super(type(m), m).eval_masks_batch(rates)
        for i, r in enumerate(rates):
            hard = [h[i] for h in hard_all]
            if r in seen:
                k = seen.index(r)
                pos = {"rate": (k, k, 0.0)}
            else:
                hi = next(j for j, s in enumerate(seen) if s > r)
                p = positions(m, flat, r, seen[hi - 1], seen[hi])
                pos = {rule: (hi - 1, hi, p[rule]) for rule in RULES}
            for rule, (a, b, u) in pos.items():
                masks = [hm * gain((1 - u) * s[a] + u * s[b]).unsqueeze(0) for hm, s in zip(hard, log_gains)]
                test = acc(t.model, masks, t.x_test, t.y_test)
                print(f"{dataset},{seed},{r},{int(r in seen)},{rule},{u:.4f},{test:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")])
