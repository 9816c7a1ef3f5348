"""Two MRMP configurations run side by side (dev/seeds.md): per dataset, the paired difference B − A of the mean
test accuracy over the seen rates and at each seen rate (points, mean ± 95 % t over runs), and each one's worst
|observed − target rate| over 0.50-0.98 (points; every run, every rate). Rows: the CSV files of this folder
matching the pattern. Development evidence.

    python results/methods/dev/paired_table.py 'heldout-fpha-runs-m*.csv' mrmp mrmp-kl5-anc20
    python results/methods/dev/paired_table.py '*runs*.csv' mrmp-amd mrmp-default-cal --unseen   # + unseen rates
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


def unseen_means(g: pd.DataFrame) -> pd.DataFrame:
    """Each run's mean test accuracy (%) over its unseen rates strictly between 0.50 and 0.98, per label."""
    u = g[(g.seen == 0) & (g.rate > 0.5 + 1e-6) & (g.rate < 0.98 - 1e-6)]
    return 100 * u.pivot_table(index=KEY, columns="label", values="test_accuracy").dropna()


def main(pattern: str, a: str, b: str, unseen: bool = False) -> None:
    d = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / pattern))))
    d = d[d.label.isin([a, b])].drop_duplicates(["label", "dataset", *KEY, "rate"])
    print(
        f"| data | runs | {a}: mean seen acc. | {b} − {a}: seen rates | "
        + " | ".join(f"{r:.2f}" for r in SEEN)
        + f" | worst rate miss: {a} / {b} |"
        + (f" unseen rates: {a} / {b} − {a} |" if unseen else "")
    )
    print("|" + "---|" * (len(SEEN) + 5 + unseen))
    for dataset, g in d.groupby("dataset"):
        if not {a, b} <= set(g.label):  # a dataset only one of the two ran on
            continue
        seen = 100 * g[g.seen == 1].pivot_table(index=KEY, columns="label", values="test_accuracy").dropna()
        cells = []
        for r in SEEN:
            x = 100 * g[(g.rate - r).abs() < 1e-6].pivot_table(
                index=KEY, columns="label", values="test_accuracy"
            )
            x = x.dropna()
            cells.append(interval((x[b] - x[a]).to_numpy()))
        tail = ""
        if unseen:
            u = unseen_means(g)
            tail = f" {u[a].mean():.1f} / {interval((u[b] - u[a]).to_numpy())} |"
        print(
            f"| {dataset} | {len(seen)} | {seen[a].mean():.1f} | {interval((seen[b] - seen[a]).to_numpy())} | "
            f"{' | '.join(cells)} | {worst_miss(g[g.label == a]):.2f} / {worst_miss(g[g.label == b]):.2f} |"
            + tail
        )


if __name__ == "__main__":
    main(*[x for x in sys.argv[1:] if x != "--unseen"][:3], unseen="--unseen" in sys.argv)
