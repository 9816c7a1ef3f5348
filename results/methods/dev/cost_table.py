"""The cost table of a `--cost` CSV (scripts/methods_runs.py): per configuration, the mean training CPU time and its
ratio to the same seed's SRMP@0.9 training (mean ± 95 % t over seeds). Development evidence (dev/partial.md).

    python results/methods/dev/cost_table.py results/methods/dev/partial2-cost.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy import stats


def main(path: str) -> None:
    d = pd.read_csv(path).drop_duplicates(["label", "dataset", "fold", "seed"])
    cpu = d.pivot(index="seed", columns="label", values="train_cpu_s")
    ratio = cpu.div(cpu["cost-srmp@0.9"], axis=0)
    print("| configuration | seeds | training CPU (mean, s) | ÷ SRMP@0.9 (mean ± 95 % t) |")
    print("|---|---|---|---|")
    for label in dict.fromkeys(d.label):
        x = ratio[label].dropna()
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        print(
            f"| {label.removeprefix('cost-')} | {len(x)} | {cpu[label].mean():.2f} | {x.mean():.3f} ± {h:.3f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
