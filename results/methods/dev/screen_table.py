"""The MRMP screen's table (results/methods/dev/screen.md): per variant, the paired gap to SRMP at each seen rate
(mean over its runs), the mean over seen rates paired with L-base on the same runs, the worst observed-rate
miss over 0.50-0.98 and the final training accuracy. Development evidence: 6 runs, wide intervals."""

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

SEEN = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98]


def interval(x: pd.Series) -> str:
    h = stats.t.ppf(0.975, len(x) - 1) * x.std() / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return f"{x.mean():+.1f} ± {h:.1f}"


def main() -> int:
    d = pd.read_csv(HERE / "screen-runs.csv")
    ref = pd.concat(pd.read_csv(f) for f in glob.glob(str(HERE / "earlier" / "runs-[0-9]*.csv")))
    s = at_own_rate(ref[ref.dataset == "synthetic-sbu"]).copy()
    key = ["fold", "seed"]
    base = d[(d.label == "L-base") & (d.seen == 1)].groupby(key).test_accuracy.mean()
    head = "| variant | runs | " + " | ".join(f"{r:.2f}" for r in SEEN)
    print(head + " | mean over seen rates − L-base | worst rate miss | train acc. |")
    print("|" + "---|" * (len(SEEN) + 5))
    for label, m in d.groupby("label", sort=False):
        cells = []
        for r in SEEN:
            a = m[(m.rate - r).abs() < 1e-6].merge(s[(s.rate - r).abs() < 1e-6], on=key, suffixes=("", "_s"))
            cells.append(f"{100 * (a.test_accuracy - a.test_accuracy_s).mean():+.1f}")
        mine = m[m.seen == 1].groupby(key).test_accuracy.mean()
        paired = pd.concat([mine, base], axis=1, keys=["v", "b"]).dropna()
        vs = interval(100 * (paired.v - paired.b)) if label != "L-base" and len(paired) else "–"
        grid = m[(m.rate >= 0.5 - 1e-9) & (m.rate <= 0.98 + 1e-9)]
        miss = 100 * (grid.observed_rate - grid.rate).abs().max()
        runs = len(m[key].drop_duplicates())
        tail = f"{vs} | {miss:.2f} | {m.train_accuracy.mean():.2f} |"
        print(f"| {label} | {runs} | " + " | ".join(cells) + " | " + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
