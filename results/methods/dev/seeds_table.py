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

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import gap  # noqa: E402
from screen2_table import references, seen_mean  # noqa: E402
from split_table import KEY, SEEN, half_width, interval, unseen_gaps  # noqa: E402

FOLDS = {"synthetic-sbu": 5, "synthetic-fpha": 1}
GROUPS = {
    "synthetic-sbu": {
        "seeds 0-4 (chose the default)": range(5),
        "seeds 5-9 (new)": range(5, 10),
        "seeds 0-9": range(10),
    },
    "synthetic-fpha": {
        "seeds 0-4": range(5),
        "seeds 5-14 (new)": range(5, 15),
        "seeds 0-14": range(15),
        "seeds 15-24 (held out)": range(15, 25),
        "seeds 0-24": range(25),
    },
}


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
            per_rate = [gap(m, srmp, r) for r in SEEN]  # each seen rate's gap, one value per run
            if min(len(g) for g in per_rate) < runs:  # a group is printed only when every run of it is there
                continue
            cells, within, shown, below = [], 0, 0, 0
            for g in per_rate:
                gaps = g.to_numpy()
                h = half_width(gaps)
                cells.append(interval(gaps))
                within += gaps.mean() >= -2
                shown += gaps.mean() - h >= -2
                below += gaps.mean() + h < -2
            # each run's mean gap over the seen rates
            run_mean = pd.concat(per_rate, axis=1).mean(axis=1).to_numpy()
            acc = seen_mean(m).mean()
            unseen, _ = unseen_gaps(m)
            n = len(m[KEY].drop_duplicates())
            print(
                f"| {dataset} | {group} | {n} | {acc:.1f} | {interval(run_mean)} | {within}/11 | {shown}/11 | "
                f"{below}/11 | {unseen} | {' | '.join(cells)} |"
            )


if __name__ == "__main__":
    main()
