"""Diagnostic (issue #12.3): after the default (calibrated) MRMP training, read each unseen rate with two
networks of the same size: the code's (the denser seen neighbour's mask less the smallest magnitudes of its
delta to the next seen rate) and one that drops the same number of the delta's weights in a fixed random order
(one random key per weight and seed: nested, the same observed rate), which is the family training's and the
calibration's partial deltas draw from. Gains interpolated by rate for both (the code's rule). No weight or gain
changes: one trained network per seed, read both ways. Development evidence, not a method."""

from __future__ import annotations

import sys

import torch
from calibrate_probe import acc, trained_default  # this folder (the script's own)

from mrmp.methods.calibration import gain


def main(dataset: str, seeds: list[int]) -> None:
    print("dataset,seed,rate,seen,rule,position,test", flush=True)
    for seed in seeds:
        t = trained_default(dataset, seed)
        m = t.method
        seen = list(m.params.seen_rates)
        flat = torch.cat([w.detach().reshape(-1) for w in m.model.prunable_weights()])
        z = flat.abs()
        key = torch.rand(z.shape, generator=torch.Generator().manual_seed(1000 + seed))
        log_gains = m.log_gains()  # per layer (|seen|, out)
        rates = [round(0.50 + 0.01 * i, 2) for i in range(49)]
        thresholds = m._global_thresholds(flat, rates)
        seen_t = m._global_thresholds(flat, seen)
        for r, t_r in zip(rates, thresholds.tolist()):
            kept = z > t_r  # the code's network (scope global: one threshold)
            if r in seen:
                k = seen.index(r)
                rules = {"rate": (kept, k, k, 0.0)}
            else:
                hi = next(j for j, s in enumerate(seen) if s > r)
                lo = hi - 1
                u = (r - seen[lo]) / (seen[hi] - seen[lo])
                delta = (z > seen_t[lo]) & (z <= seen_t[hi])
                n_drop = int(((z > seen_t[lo]) & (z <= t_r)).sum())
                order = torch.where(delta, key, torch.full_like(key, 2.0)).argsort()[:n_drop]
                shuffled = z > seen_t[lo]
                shuffled[order] = False
                assert int(shuffled.sum()) == int(kept.sum())
                rules = {"rate": (kept, lo, hi, u), "random-order": (shuffled, lo, hi, u)}
            for rule, (mask, a, b, u) in rules.items():
                hard = m._per_layer(mask.to(flat.dtype).unsqueeze(0))
                masks = [
                    hm[0] * gain((1 - u) * s[a] + u * s[b]).unsqueeze(0) for hm, s in zip(hard, log_gains)
                ]
                test = acc(t.model, masks, t.x_test, t.y_test)
                print(f"{dataset},{seed},{r},{int(r in seen)},{rule},{u:.4f},{test:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")])
