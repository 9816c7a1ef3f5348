"""The seen-rates diagnostic of dev/sharing.md: MRMP trained for 0.50 only, for 0.50 and 0.98, and for its 11
default rates (the protocol's `mrmp` rows), each paired with SRMP trained at the rate read (test accuracy, folds
1-5 x seeds 0-2, mean and 95 % t interval of the paired differences).

    python results/methods/dev/sharing_table.py
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import at_own_rate  # noqa: E402

KEY = ["fold", "seed"]
RATES = (0.5, 0.7, 0.9, 0.98)


def interval(x: pd.Series) -> str:
    h = stats.t.ppf(0.975, len(x) - 1) * x.std() / np.sqrt(len(x))
    return f"{x.mean():+.1f} ± {h:.1f}"


def main() -> None:
    d = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / "sharing-runs-*.csv"))))
    ref = pd.concat(pd.read_csv(f) for f in glob.glob(str(HERE / "earlier" / "runs-*.csv")))
    ref = ref[(ref.dataset == "synthetic-sbu") & ref.seed.isin(d.seed.unique())]
    srmp = at_own_rate(ref)
    variants = [*d.groupby("label", sort=False), ("mrmp (11 seen rates)", ref[ref.label == "mrmp-k1"])]
    print("| MRMP trained for | runs | " + " | ".join(f"read at {r:g}: − SRMP@{r:g}" for r in RATES) + " |")
    print("|---|---|" + "---|" * len(RATES))
    for label, m in variants:
        cells = []
        for r in RATES:
            a = m[(m.rate - r).abs() < 1e-6].merge(
                srmp[(srmp.rate - r).abs() < 1e-6], on=KEY, suffixes=("", "_s")
            )
            cells.append(interval(100 * (a.test_accuracy - a.test_accuracy_s)))
        print(f"| {label} | {len(m[KEY].drop_duplicates())} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
