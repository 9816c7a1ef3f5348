"""MRMP's default against SRMP with more seeds (dev/seeds.md): per dataset and seed group, the paired gap to SRMP
at each seen rate (points, mean ± 95 % t over runs), the mean of those gaps, how many seen rates have a mean gap
above −2 points, how many are shown within 2 points (the interval's lower end above −2) and how many are shown
below (its upper end under −2), and the unseen rates against the interpolation of their seen neighbours. Rows:
SRMP and the default as dev/screen2_table.py reads them (every seed of results/methods and of this folder).
A group is printed only when every run
of it is there. Development evidence.

    python results/methods/dev/seeds_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from screen2_table import references  # noqa: E402
from split_table import KEY, SEEN, interval, unseen_gaps  # noqa: E402

FOLDS = {"synthetic-sbu": 5, "synthetic-fpha": 1}
GROUPS = {
    "synthetic-sbu": {
        "seeds 0-4 (chose the default)": range(5),
        "seeds 5-9 (new)": range(5, 10),
        "seeds 0-9": range(10),
    },
    "synthetic-fpha": {"seeds 0-4": range(5), "seeds 5-14 (new)": range(5, 15), "seeds 0-14": range(15)},
}


def half_width(x: np.ndarray) -> float:
    return stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))


def main() -> None:
    print(
        "| data | seeds | runs | mean seen acc. | mean gap | within 2 (mean) | shown within | shown below | "
        "unseen − interpolation | " + " | ".join(f"{r:.2f}" for r in SEEN) + " |"
    )
    print("|" + "---|" * (len(SEEN) + 9))
    for dataset, groups in GROUPS.items():
        srmp, default = references(dataset)
        for group, seeds in groups.items():
            m = default[default.seed.isin(list(seeds))]
            runs = len(seeds) * FOLDS[dataset]
            paired = [
                len(m[(m.rate - r).abs() < 1e-6].merge(srmp[(srmp.rate - r).abs() < 1e-6], on=KEY))
                for r in SEEN
            ]
            if min(paired) < runs:  # a group is printed only when every run of it is there
                continue
            cells, per_run, within, shown, below = [], [], 0, 0, 0
            for r in SEEN:
                a = m[(m.rate - r).abs() < 1e-6].merge(
                    srmp[(srmp.rate - r).abs() < 1e-6], on=KEY, suffixes=("", "_s")
                )
                gaps = 100 * (a.test_accuracy - a.test_accuracy_s).to_numpy()
                per_run.append(a.assign(g=gaps).set_index(KEY).g)
                h = half_width(gaps)
                cells.append(interval(gaps))
                within += gaps.mean() >= -2
                shown += gaps.mean() - h >= -2
                below += gaps.mean() + h < -2
            run_mean = (
                pd.concat(per_run, axis=1).mean(axis=1).to_numpy()
            )  # each run's mean gap over the seen rates
            acc = 100 * m[m.seen == 1].groupby(KEY).test_accuracy.mean().mean()
            unseen, _ = unseen_gaps(m)
            n = len(m[KEY].drop_duplicates())
            print(
                f"| {dataset} | {group} | {n} | {acc:.1f} | {interval(run_mean)} | {within}/11 | {shown}/11 | "
                f"{below}/11 | {unseen} | {' | '.join(cells)} |"
            )


if __name__ == "__main__":
    main()
