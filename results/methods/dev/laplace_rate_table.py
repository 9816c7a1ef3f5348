"""The laplace MRMP's observed rate: the default (`mrmp-laplace`, results/methods) against the KL every step
(`mrmp-laplace-kl1`) and no partial deltas (`mrmp-laplace-nopartial`), dev/laplace-rate.yaml, on the runs they
share: the mean observed − target rate over 0.50–0.65 and the worst over 0.50–0.98 (points), the rates where some
run misses by more than 1 point, and each run's mean test accuracy over the seen rates, paired with the default
(points, mean ± 95 % t). Development evidence.

    python results/methods/dev/laplace_rate_table.py results/methods/runs-[01].csv results/methods/dev/laplace-rate-runs-*.csv
"""

from __future__ import annotations

import sys

import pandas as pd

from mrmp.stats import estimate

LABELS = ("mrmp-laplace", "mrmp-laplace-kl1", "mrmp-laplace-nopartial")


def main(paths: list[str]) -> None:
    d = pd.concat(pd.read_csv(p) for p in paths)
    d = d[
        d.label.isin(LABELS) & (d.dataset == "synthetic-sbu") & (d.rate > 0.5 - 1e-6) & (d.rate < 0.98 + 1e-6)
    ]
    runs = set.intersection(*(set(zip(g.fold, g.seed)) for _, g in d.groupby("label")))
    d = d[[(f, s) in runs for f, s in zip(d.fold, d.seed)]]
    seen = d[d.seen == 1].groupby(["label", "fold", "seed"]).test_accuracy.mean()
    print(
        "| configuration | runs | mean miss 0.50–0.65 | worst miss | rates > 1 | seen acc. | − mrmp-laplace (points) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in LABELS:
        g = d[d.label == label]
        miss = 100 * (g.observed_rate - g.rate)
        worst = miss.abs().groupby(g.rate).max()
        e = estimate(list(100 * (seen[label] - seen["mrmp-laplace"][seen[label].index])))
        diff = "" if label == LABELS[0] else f"{e.mean:+.1f} ± {(e.hi - e.lo) / 2:.1f}"
        print(
            f"| {label} | {len(runs)} | {miss[g.rate <= 0.65 + 1e-6].mean():+.2f} | {worst.max():.2f} | "
            f"{(worst > 1).sum()} | {100 * seen[label].mean():.1f} | {diff} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
