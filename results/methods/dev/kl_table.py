"""The MRMP KL-weight runs of dev/kl.md: `screen` (per variant, the paired gap to SRMP at each seen rate, the mean
over seen rates paired with the default MRMP, the worst observed-rate miss) and `heldout` (G-kl20 against the
default MRMP and SRMP on seeds 3-4). Development evidence: 6 and 10 runs, wide intervals.

    python results/methods/dev/kl_table.py screen
    python results/methods/dev/kl_table.py heldout
    python results/methods/dev/kl_table.py anchor    # the anchor-weight screen (dev/anchor.yaml)
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
SEEN = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98]
KEY = ["fold", "seed"]


def interval(x: pd.Series) -> str:
    h = stats.t.ppf(0.975, len(x) - 1) * x.std() / np.sqrt(len(x))
    return f"{x.mean():+.1f} ± {h:.1f} (n={len(x)})"


def at_own_rate(runs: pd.DataFrame) -> pd.DataFrame:
    """SRMP rows at the rate each trained for (label srmp@r)."""
    s = runs[runs.label.str.startswith("srmp@")]
    return s[(s.rate - s.label.str.split("@").str[1].astype(float)).abs() < 1e-6]


def gap(m: pd.DataFrame, srmp: pd.DataFrame, r: float) -> pd.Series:
    """The paired gap (points) of `m` to `srmp` at rate r, one value per run (indexed by fold and seed)."""
    a = m[(m.rate - r).abs() < 1e-6].merge(srmp[(srmp.rate - r).abs() < 1e-6], on=KEY, suffixes=("", "_s"))
    a = a.set_index(KEY)
    return 100 * (a.test_accuracy - a.test_accuracy_s)


def worst_miss(m: pd.DataFrame) -> float:
    grid = m[(m.rate >= 0.5 - 1e-9) & (m.rate <= 0.98 + 1e-9)]
    return 100 * (grid.observed_rate - grid.rate).abs().max()


def paired_mean(m: pd.DataFrame, base: pd.DataFrame) -> str:
    mine = m[m.seen == 1].groupby(KEY).test_accuracy.mean()
    ref = base[base.seen == 1].groupby(KEY).test_accuracy.mean()
    p = pd.concat([mine, ref], axis=1, keys=["v", "b"]).dropna()
    return interval(100 * (p.v - p.b))


def screen(prefix: str = "kl") -> None:
    d = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / f"{prefix}-screen-runs-*.csv"))))
    ref = pd.concat(pd.read_csv(f) for f in glob.glob(str(HERE / "earlier" / "runs-*.csv")))
    ref = ref[ref.dataset == "synthetic-sbu"]
    srmp = at_own_rate(ref)
    base = ref[(ref.label == "mrmp-k1") & ref.fold.isin(d.fold.unique()) & ref.seed.isin(d.seed.unique())]
    print(
        "| variant | runs | "
        + " | ".join(f"{r:.2f}" for r in SEEN)
        + " | mean over seen − mrmp | worst miss |"
    )
    print("|" + "---|" * (len(SEEN) + 4))
    for label, m in [*d.groupby("label", sort=False), ("mrmp", base)]:
        cells = " | ".join(f"{gap(m, srmp, r).mean():+.1f}" for r in SEEN)
        vs = paired_mean(m, base) if label != "mrmp" else "–"
        print(f"| {label} | {len(m[KEY].drop_duplicates())} | {cells} | {vs} | {worst_miss(m):.2f} |")


def heldout() -> None:
    v = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / "kl-heldout-runs-*.csv"))))
    g = pd.read_csv(HERE / "heldout-priors-runs.csv")
    g = g[g.label == "mrmp-gaussian"].drop_duplicates(KEY + ["rate"])  # fold 1 lists rate 0.5 twice
    srmp = at_own_rate(pd.read_csv(HERE / "heldout-runs.csv"))
    print(f"G-kl20 − default MRMP, mean over seen rates: {paired_mean(v, g)}")
    print("| rate | G-kl20 − SRMP | default MRMP − SRMP |")
    print("|---|---|---|")
    for r in (0.5, 0.55, 0.7, 0.98):
        print(f"| {r:g} | {interval(gap(v, srmp, r))} | {interval(gap(g, srmp, r))} |")
    print(f"G-kl20 worst observed-rate miss over 0.50-0.98: {worst_miss(v):.2f} points")


if __name__ == "__main__":
    {"screen": screen, "heldout": heldout, "anchor": lambda: screen("anchor")}[
        sys.argv[1] if len(sys.argv) > 1 else "screen"
    ]()
