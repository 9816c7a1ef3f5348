"""The split-batch MRMP runs of dev/split.md, rounds 2 and 3: per variant and seed group (screen: folds 1-3 x seeds
0-1; held-out: folds 1-5 x seeds 3-4), the paired gap to SRMP at each seen rate, how many seen rates have a mean gap
above -2 points, and the unseen rates against the linear interpolation of their two seen neighbours (each run's
mean over its unseen rates, then mean ± 95 % t over runs; and the worst unseen rate's mean). Development evidence.
The same table for other MRMP runs of this folder: name their CSV files' patterns (dev/ema.md, dev/batch.md);
`--all` prints only folds 1-5 x seeds 0-4 (25 runs)
with 95 % t intervals at every seen rate and the k = 4 split batch as a second baseline (dev/partial.md). A group is
printed only when every run of it is there.

    python results/methods/dev/split_table.py
    python results/methods/dev/split_table.py 'ema-runs-*.csv'
    python results/methods/dev/split_table.py --all 'partial2-runs-*.csv'
"""

from __future__ import annotations

import glob
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import at_own_rate  # noqa: E402

SEEN = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98]
KEY = ["fold", "seed"]
GROUPS = {"screen": ([1, 2, 3], [0, 1]), "held-out": ([1, 2, 3, 4, 5], [3, 4])}
ALL = {"seeds 0-4": ([1, 2, 3, 4, 5], [0, 1, 2, 3, 4])}  # both seed groups together (--all)


def half_width(x: np.ndarray) -> float:
    """The 95 % t interval's half-width of the mean of x."""
    return stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))


def interval(x: np.ndarray) -> str:
    return f"{x.mean():+.1f} ± {half_width(x):.1f}"


def unseen_gaps(m: pd.DataFrame) -> tuple[str, str]:
    """Each run's mean gap (points) of its unseen rates in (0.50, 0.98) to the interpolation of its seen neighbours,
    as mean ± 95 % t over runs; and the unseen rate with the lowest mean gap."""
    per_run, per_rate = [], {}
    for _, r in m.groupby(KEY):
        acc = r.drop_duplicates("rate").set_index("rate").test_accuracy
        acc.index = acc.index.round(4)
        gaps = []
        for x in acc.index:
            if x <= 0.5 or x >= 0.98 or any(abs(x - s) < 1e-6 for s in SEEN):
                continue
            lo, hi = max(s for s in SEEN if s < x), min(s for s in SEEN if s > x)
            g = 100 * (acc[x] - acc[lo] - (acc[hi] - acc[lo]) * (x - lo) / (hi - lo))
            gaps.append(g)
            per_rate.setdefault(x, []).append(g)
        per_run.append(np.mean(gaps))
    worst = min(per_rate.items(), key=lambda kv: np.mean(kv[1]))
    return interval(np.array(per_run)), f"{worst[0]:.2f} at {np.mean(worst[1]):+.1f}"


def srmp_rows() -> pd.DataFrame:
    files = glob.glob(str(HERE / "earlier" / "runs-[0-9]*.csv")) + [str(HERE / "heldout-runs.csv")]
    files += glob.glob(str(HERE / "split-heldout-runs-[01].csv"))
    s = pd.concat(pd.read_csv(f) for f in files)
    s = at_own_rate(s[s.dataset == "synthetic-sbu"])
    return s.drop_duplicates(KEY + ["rate"])


def plain_mrmp() -> pd.DataFrame:
    """One rate per step (the default until the split batch with partial deltas): results/methods' `mrmp-k1`
    and dev/heldout-priors-runs.csv's `mrmp-gaussian`."""
    k1 = pd.concat(pd.read_csv(f) for f in glob.glob(str(HERE / "earlier" / "runs-mrmp-[0-9].csv")))
    k1 = k1[(k1.label == "mrmp-k1") & (k1.dataset == "synthetic-sbu")]
    h = pd.read_csv(HERE / "heldout-priors-runs.csv")
    h = (
        h[(h.label == "mrmp-gaussian") & (h.dataset == "synthetic-sbu")]
        .drop_duplicates(KEY + ["rate"])
        .assign(label="mrmp-k1")
    )
    return pd.concat([k1, h])


def split_k4() -> pd.DataFrame:
    """S-k4 (`split_batch`, k = 4): results/methods' `mrmp-split` rows (seeds 0-2) and dev/split-heldout's (3-4)."""
    p = pd.concat(pd.read_csv(f) for f in glob.glob(str(HERE / "earlier" / "runs-split-[0-9].csv")))
    p = p[(p.label == "mrmp-split") & (p.dataset == "synthetic-sbu")]
    h = pd.concat(pd.read_csv(f) for f in glob.glob(str(HERE / "split-heldout-runs-[01].csv")))
    return pd.concat([p, h[h.label == "S-k4"]]).assign(label="S-k4")


def main(args: list[str]) -> None:
    """The table for the runs in the CSV files of this folder matching the patterns in `args` (default: the split
    runs); with `--all` among them, only folds 1-5 x seeds 0-4 with intervals, and S-k4 as a second baseline."""
    every = "--all" in args
    patterns = [a for a in args if a != "--all"] or ["split-*runs*.csv", "split[0-9]-runs-*.csv"]
    files = [f for p in patterns for f in sorted(glob.glob(str(HERE / p)))]
    baselines = [("mrmp-k1", plain_mrmp)] + ([("S-k4", split_k4)] if every else [])
    table(pd.concat(pd.read_csv(f) for f in files), ALL if every else GROUPS, baselines, intervals=every)


def table(
    runs: pd.DataFrame,
    groups: dict[str, tuple[list[int], list[int]]],
    baselines: list[tuple[str, Callable[[], pd.DataFrame]]],
    intervals: bool = False,
) -> None:
    """Print the table of the module docstring for every MRMP variant in `runs`, then the `baselines`, in each of
    the seed `groups` its runs complete; `intervals`: each seen rate's gap with its 95 % t interval."""
    srmp = srmp_rows()
    runs = runs[~runs.label.str.startswith("srmp@") & (runs.dataset == "synthetic-sbu")]
    runs = runs.drop_duplicates(["label", *KEY, "rate"])
    print(
        "| variant | runs | mean seen acc. | seen rates within 2 | unseen − interpolation | worst unseen | "
        + " | ".join(f"{r:.2f}" for r in SEEN)
        + " |"
    )
    print("|" + "---|" * (len(SEEN) + 6))
    for label, m in [*runs.groupby("label", sort=False), *((name, load()) for name, load in baselines)]:
        for group, (folds, seeds) in groups.items():
            mm = m[m.fold.isin(folds) & m.seed.isin(seeds)]
            if len(mm[KEY].drop_duplicates()) < len(folds) * len(seeds):
                continue
            cells, within = [], 0
            for r in SEEN:
                a = mm[(mm.rate - r).abs() < 1e-6].merge(
                    srmp[(srmp.rate - r).abs() < 1e-6], on=KEY, suffixes=("", "_s")
                )
                gaps = 100 * (a.test_accuracy - a.test_accuracy_s).to_numpy()
                g = gaps.mean()
                cells.append(interval(gaps) if intervals else f"{g:+.1f}")
                within += g >= -2
            seen_acc = 100 * mm[mm.seen == 1].groupby(KEY).test_accuracy.mean().mean()
            unseen, worst = unseen_gaps(mm)
            n = len(mm[KEY].drop_duplicates())
            print(
                f"| {label} ({group}) | {n} | {seen_acc:.1f} | {within}/11 | {unseen} | {worst} | {' | '.join(cells)} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
