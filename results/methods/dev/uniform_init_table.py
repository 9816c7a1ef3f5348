"""SRMP with the uniform prior with and without the prior-shaped initialisation (dev/uniform-init.yaml against the
protocol's rows of the same folds and seeds): per trained rate, each side's mean test accuracy at that rate, the
paired difference (points, mean ± 95 % t over runs), how many runs sit at chance (test accuracy below 20 %: 8
classes) and each side's worst |observed − target rate| (points). Development evidence.

    python results/methods/dev/uniform_init_table.py results/methods/runs-[01].csv results/methods/dev/uniform-init-runs-*.csv
"""

from __future__ import annotations

import sys

import pandas as pd

from mrmp.stats import estimate

CHANCE = 0.20  # 8 classes: 12.5 %; a run under 20 % learned nothing


def main(paths: list[str]) -> None:
    d = pd.concat(pd.read_csv(p) for p in paths)
    d = d[d.label.str.match(r"srmp-uniform(-noinit)?(-noanchor)?@")]
    d["family"] = d.label.str.split("@").str[0]
    d["trained"] = d.label.str.split("@").str[1].astype(float)
    d = d[(d.rate - d.trained).abs() < 1e-6]
    print(
        "| anchor | rate | runs | with init: acc. / at chance / worst miss | without: acc. / at chance / worst miss "
        "| without − with (points) |"
    )
    print("|---|---|---|---|---|---|")
    for anchor in (True, False):
        suffix = "" if anchor else "-noanchor"
        a, b = d[d.family == f"srmp-uniform{suffix}"], d[d.family == f"srmp-uniform-noinit{suffix}"]
        for rate in sorted(set(b.trained)):
            x = a[a.trained == rate].set_index(["fold", "seed"])
            y = b[b.trained == rate].set_index(["fold", "seed"])
            both = x.index.intersection(y.index)
            x, y = x.loc[both], y.loc[both]
            e = estimate(list(100 * (y.test_accuracy - x.test_accuracy)))
            diff = f"{e.mean:+.1f} ± {(e.hi - e.lo) / 2:.1f}"
            cells = [
                f"{100 * s.test_accuracy.mean():.1f} / {(s.test_accuracy < CHANCE).sum()} / "
                f"{100 * (s.observed_rate - rate).abs().max():.2f}"
                for s in (x, y)
            ]
            print(
                f"| {'on' if anchor else 'off'} | {rate:.2f} | {len(both)} | {cells[0]} | {cells[1]} | {diff} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
