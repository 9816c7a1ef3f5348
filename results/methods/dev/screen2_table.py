"""Round 4 of #12.3 (dev/screen2.md, dev/seeds.md): MRMP variants against SRMP and against MRMP's default. Per
variant, on one dataset: mean test accuracy over the seen rates, the paired gap to SRMP at each seen rate (mean
over runs; with `--intervals` ± 95 % t), how many seen rates have a mean gap above −2 points, the unseen rates
against the interpolation of their seen neighbours, the worst observed-rate miss over 0.50-0.98, and the paired
difference to the default (`mrmp`) over the seen rates. Variants: every label of the CSV files matching the
patterns (relative to this folder; `--only=A,B`: those labels). SRMP's rows come from every CSV of
results/methods and of this folder, the default's from DEFAULT_FILES (the same configuration, the same code since
17136e9). Development evidence.

    python results/methods/dev/screen2_table.py synthetic-fpha 'screen2-runs-*.csv'
    python results/methods/dev/screen2_table.py synthetic-fpha 'fpha-variants-runs-*.csv' 'earlier/runs-*.csv' \
        'fpha-heldout-runs-*.csv' --only=mrmp-previous,mrmp-nopd,mrmp-either,mrmp-k1 --intervals
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import at_own_rate, gap, worst_miss  # noqa: E402
from split_table import KEY, SEEN, interval, unseen_gaps  # noqa: E402

# the default's rows: the protocol's `mrmp` (runs-pd-*.csv), and the same configuration in dev runs at seeds 3-4
# (partial2's label) and beyond; other dev CSVs say `mrmp` for one rate per step, the default before 17136e9
DEFAULT_FILES = [
    "earlier/runs-pd-*.csv",
    "fpha-heldout-runs-*.csv",
    "partial2-runs-d*.csv",
    "seeds-*-runs-*.csv",
    "heldout-fpha-runs-m*.csv",
]
# the default before the calibration: `mrmp` in this folder, `mrmp-nocal` in results/methods since 2026-11-30
DEFAULT_LABELS = {"mrmp", "mrmp-nocal", "S-k4-pd-next-kl2"}


def references(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SRMP at its own rate (from every run CSV here and in results/methods), and the default MRMP (from
    DEFAULT_FILES), on `dataset`."""
    files = sorted(glob.glob(str(HERE / "earlier" / "runs-*.csv"))) + sorted(
        glob.glob(str(HERE / "*runs*.csv"))
    )
    d = pd.concat(pd.read_csv(f) for f in files if Path(f).stat().st_size)  # a run in progress: empty so far
    d = d[(d.dataset == dataset) & d.label.str.startswith("srmp@")]
    srmp = at_own_rate(d).drop_duplicates(KEY + ["rate"])
    mine = pd.concat(pd.read_csv(f) for p in DEFAULT_FILES for f in sorted(glob.glob(str(HERE / p))))
    mine = mine[(mine.dataset == dataset) & mine.label.isin(DEFAULT_LABELS)]
    return srmp, mine.assign(label="mrmp (default)").drop_duplicates(KEY + ["rate"])


def seen_mean(m: pd.DataFrame) -> pd.Series:
    return 100 * m[m.seen == 1].groupby(KEY).test_accuracy.mean()


def main(args: list[str]) -> None:
    intervals = "--intervals" in args
    only = [a.split("=", 1)[1].split(",") for a in args if a.startswith("--only=")]
    dataset, *patterns = [a for a in args if not a.startswith("--")]
    runs = pd.concat(pd.read_csv(f) for p in patterns for f in sorted(glob.glob(str(HERE / p))))
    runs = runs[(runs.dataset == dataset) & ~runs.label.str.startswith("srmp@")]
    if only:
        runs = runs[runs.label.isin(only[0])]
    srmp, default = references(dataset)
    keys = runs[KEY].drop_duplicates()
    default = default.merge(keys, on=KEY)
    print(
        "| variant | runs | mean seen acc. | − default (paired) | seen rates within 2 | unseen − interpolation | "
        "worst unseen | worst rate miss | " + " | ".join(f"{r:.2f}" for r in SEEN) + " |"
    )
    print("|" + "---|" * (len(SEEN) + 8))
    base = seen_mean(default)
    for label, m in [("mrmp (default)", default), *runs.groupby("label", sort=True)]:
        m = m.drop_duplicates(["label", *KEY, "rate"])
        cells, within = [], 0
        for r in SEEN:
            gaps = gap(m, srmp, r).to_numpy()
            cells.append(interval(gaps) if intervals else f"{gaps.mean():+.1f}")
            within += gaps.mean() >= -2
        acc = seen_mean(m)
        diff = (acc - base).dropna().to_numpy()
        unseen, worst = unseen_gaps(m)
        n = len(m[KEY].drop_duplicates())
        print(
            f"| {label} | {n} | {acc.mean():.1f} | {interval(diff) if len(diff) > 1 and np.any(diff) else '0'} | "
            f"{within}/11 | {unseen} | {worst} | {worst_miss(m):.2f} | {' | '.join(cells)} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
