"""MRMP's default against one rate per step and SRMP on synthetic FPHA-like data (dev/fpha.md): the protocol's
seeds 0-2 (results/methods) and the held-out seeds 3-4 (dev/fpha-heldout-runs-*.csv), fold 1. Per configuration
and seed group: mean test accuracy over the seen rates, the seen rates whose mean paired gap to SRMP is above −2
points, the unseen rates against the interpolation of their seen neighbours, and the paired gap to SRMP at each
seen rate (mean ± 95 % t over runs); then the default − one rate per step, paired. Development evidence.

    python results/methods/dev/fpha_table.py
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import at_own_rate  # noqa: E402
from split_table import KEY, SEEN, interval, unseen_gaps  # noqa: E402

GROUPS = {"seeds 0-2": [0, 1, 2], "seeds 3-4": [3, 4], "seeds 0-4": [0, 1, 2, 3, 4]}


def rows() -> pd.DataFrame:
    files = sorted(glob.glob(str(HERE / "earlier" / "runs-*.csv"))) + sorted(
        glob.glob(str(HERE / "fpha-heldout-runs-*.csv"))
    )
    d = pd.concat(pd.read_csv(f) for f in files)
    d.loc[d.label == "mrmp-nocal", "label"] = "mrmp"  # the default before the calibration, as it ran here
    d = d[(d.dataset == "synthetic-fpha") & d.label.isin(["mrmp", "mrmp-k1", *(f"srmp@{r:g}" for r in SEEN)])]
    return d.drop_duplicates(["label", *KEY, "rate"])


def at(m: pd.DataFrame, r: float) -> pd.Series:
    return m[(m.rate - r).abs() < 1e-6].set_index(KEY).test_accuracy


def main() -> None:
    d = rows()
    srmp = at_own_rate(d)
    print(
        "| configuration | seeds | runs | mean seen acc. | seen rates within 2 | unseen − interpolation | worst unseen | "
        + " | ".join(f"{r:.2f}" for r in SEEN)
        + " |"
    )
    print("|" + "---|" * (len(SEEN) + 7))
    for label in ["mrmp", "mrmp-k1"]:
        for group, seeds in GROUPS.items():
            m = d[(d.label == label) & d.seed.isin(seeds)]
            cells, within = [], 0
            for r in SEEN:
                gaps = 100 * (at(m, r) - at(srmp, r)).dropna().to_numpy()
                cells.append(interval(gaps))
                within += gaps.mean() >= -2
            seen_acc = 100 * m[m.seen == 1].groupby(KEY).test_accuracy.mean().mean()
            unseen, worst = unseen_gaps(m)
            n = len(m[KEY].drop_duplicates())
            print(
                f"| {label} | {group} | {n} | {seen_acc:.1f} | {within}/11 | {unseen} | {worst} | {' | '.join(cells)} |"
            )
    print(
        "\nThe default − one rate per step, paired by seed (points): mean over the seen rates; over the unseen rates"
    )
    print("in (0.50, 0.98); at 0.50–0.70 and at 0.85–0.98 (seen and unseen)\n")
    print("| seeds | runs | seen | unseen | 0.50–0.70 | 0.85–0.98 |")
    print("|---|---|---|---|---|---|")
    for group, seeds in GROUPS.items():
        a, b = (d[(d.label == x) & d.seed.isin(seeds)] for x in ("mrmp", "mrmp-k1"))
        j = a.merge(b, on=[*KEY, "rate", "seen"], suffixes=("", "_k1"))
        j = j[(j.rate >= 0.5 - 1e-9) & (j.rate <= 0.98 + 1e-9)]
        j["diff"] = 100 * (j.test_accuracy - j.test_accuracy_k1)
        cells = [
            interval(j[sel].groupby(KEY)["diff"].mean().to_numpy())
            for sel in (
                j.seen == 1,
                (j.seen == 0) & (j.rate > 0.5) & (j.rate < 0.98),
                j.rate <= 0.7 + 1e-9,
                j.rate >= 0.85 - 1e-9,
            )
        ]
        print(f"| {group} | {len(j[KEY].drop_duplicates())} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
