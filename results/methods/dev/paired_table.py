"""Two MRMP configurations run side by side (dev/seeds.md): per dataset, the paired difference B − A of the mean
test accuracy over the seen rates and at each seen rate (points, mean ± 95 % t over runs), and each one's worst
|observed − target rate| over 0.50-0.98 (points; every run, every rate). Rows: the CSV files of this folder
matching the pattern. Development evidence.

    python results/methods/dev/paired_table.py 'heldout-fpha-runs-m*.csv' mrmp mrmp-kl5-anc20
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import worst_miss  # noqa: E402
from split_table import KEY, SEEN, interval  # noqa: E402


def main(pattern: str, a: str, b: str) -> None:
    d = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / pattern))))
    d = d[d.label.isin([a, b])].drop_duplicates(["label", "dataset", *KEY, "rate"])
    print(
        f"| data | runs | {a}: mean seen acc. | {b} − {a}: seen rates | "
        + " | ".join(f"{r:.2f}" for r in SEEN)
        + f" | worst rate miss: {a} / {b} |"
    )
    print("|" + "---|" * (len(SEEN) + 5))
    for dataset, g in d.groupby("dataset"):
        seen = 100 * g[g.seen == 1].pivot_table(index=KEY, columns="label", values="test_accuracy").dropna()
        cells = []
        for r in SEEN:
            x = 100 * g[(g.rate - r).abs() < 1e-6].pivot_table(
                index=KEY, columns="label", values="test_accuracy"
            )
            x = x.dropna()
            cells.append(interval((x[b] - x[a]).to_numpy()))
        print(
            f"| {dataset} | {len(seen)} | {seen[a].mean():.1f} | {interval((seen[b] - seen[a]).to_numpy())} | "
            f"{' | '.join(cells)} | {worst_miss(g[g.label == a]):.2f} / {worst_miss(g[g.label == b]):.2f} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:4])
