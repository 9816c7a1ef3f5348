"""Diagnostic (issue #12.3): after the default (calibrated) MRMP training, read each unseen rate with two
networks of the same size: the code's (the denser seen neighbour's mask less the smallest magnitudes of its
delta to the next seen rate) and one that drops the same number of the delta's weights in a fixed random order
(one random key per weight and seed: nested, the same observed rate), which is the family training's and the
calibration's partial deltas draw from. Gains interpolated by rate for both (the code's rule). No weight or gain
changes: one trained network per seed, read both ways. Development evidence, not a method."""

from __future__ import annotations

import sys

import torch
from unseen_gains_probe import HEADER, RATES, read, trained  # this folder (the script's own)


def main(dataset: str, seeds: list[int]) -> None:
    print(HEADER, flush=True)
    for seed in seeds:
        t, seen, flat, log_gains = trained(dataset, seed)
        m = t.method
        z = flat.abs()
        key = torch.rand(z.shape, generator=torch.Generator().manual_seed(1000 + seed))
        thresholds = m._global_thresholds(flat, RATES)
        seen_t = m._global_thresholds(flat, seen)
        for r, t_r in zip(RATES, thresholds.tolist()):
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
                hard = [h[0] for h in m._per_layer(mask.to(flat.dtype).unsqueeze(0))]
                test = read(t, hard, log_gains, a, b, u)
                print(f"{dataset},{seed},{r},{int(r in seen)},{rule},{u:.4f},{test:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")])
