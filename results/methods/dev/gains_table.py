"""The per-rate gains' tables (results/methods/dev/gains.md), from results/methods/dev/gains-runs*.csv and
gains-v1-runs*.csv (the first implementation, labels suffixed -v1; its plain-MRMP rows are the control of all).

Per variant, dataset and seed group: the paired gap to SRMP at each seen rate (mean over the (fold, seed) runs ±
95 % t half-width; SRMP rows from results/methods/runs-*.csv, results/methods/dev/heldout-runs.csv and this
screen's own srmp@ rows), the paired difference to the plain MRMP on the same runs, unseen rates against the
linear interpolation of their two seen neighbours (per run, the mean over the unseen rates of 0.51-0.97), the
worst observed-rate miss over 0.50-0.98, and the cost (train CPU time ratio, the --cost rows, run by run).
Synthetic data: development evidence, not SBU or FPHA results.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from mrmp.stats import estimate  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from kl_table import at_own_rate  # noqa: E402

SEEN = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98]
KEY = ["dataset", "fold", "seed"]


def ci(values) -> str:
    e = estimate([float(v) for v in values])
    if e.lo is None:
        return f"{100 * e.mean:+.1f}"
    return f"{100 * e.mean:+.1f} ± {100 * (e.hi - e.lo) / 2:.1f}"


def srmp_rows() -> pd.DataFrame:
    files = glob.glob(str(HERE / "earlier" / "runs-[0-9]*.csv")) + [str(HERE / "heldout-runs.csv")]
    files += glob.glob(str(HERE / "gains-runs*.csv"))
    ref = pd.concat(pd.read_csv(f) for f in files)
    s = at_own_rate(ref).copy()
    s["r"] = s.rate.round(4)
    return s.drop_duplicates(KEY + ["r"])


def at(frame: pd.DataFrame, r: float) -> pd.Series:
    f = frame[(frame.rate - r).abs() < 1e-6]
    return f.set_index(KEY).test_accuracy


def unseen_vs_interp(m: pd.DataFrame) -> pd.Series:
    """Per run: mean over the unseen grid rates strictly between 0.50 and 0.98 of acc(r) − the linear
    interpolation of acc at its two seen neighbours."""
    out = {}
    for run, g in m.groupby(KEY):
        acc = dict(zip(g.rate.round(4), g.test_accuracy))
        seen_acc = [acc[round(r, 4)] for r in SEEN]
        diffs = [
            acc[r] - float(np.interp(r, SEEN, seen_acc))
            for r in acc
            if SEEN[0] < r < SEEN[-1] and all(abs(r - s) > 1e-6 for s in SEEN)
        ]
        out[run] = float(np.mean(diffs))
    return pd.Series(out)


def main() -> int:
    files = sorted(glob.glob(str(HERE / "gains-runs*.csv"))) + sorted(
        glob.glob(str(HERE / "gains-diag-runs*.csv"))
    )
    runs = pd.concat(pd.read_csv(f) for f in files)
    # the first implementation (929788a: one (|seen|, out) gain tensor per layer); its plain-MRMP rows are the
    # control of every variant (rate_gains off runs the same code at both commits)
    v1 = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(str(HERE / "gains-v1-runs*.csv"))))
    v1.loc[v1.label != "mrmp", "label"] += "-v1"
    # the plain laplace MRMP (same code path: the prior is named): seeds 0-2 from results/methods, 3-4 from heldout
    published = pd.concat(
        pd.read_csv(f) for f in sorted(glob.glob(str(HERE / "earlier" / "runs-mrmp-[0-9].csv")))
    )
    published.loc[published.label == "mrmp-k1-laplace", "label"] = (
        "mrmp-laplace"  # one rate per step, as here
    )
    lap = pd.concat([published, pd.read_csv(HERE / "heldout-priors-runs.csv")])
    lap = lap[(lap.label == "mrmp-laplace") & (lap.dataset == "synthetic-sbu")]
    runs = pd.concat([v1, runs, lap])
    runs = runs[~runs.label.str.startswith("srmp@") & ~runs.label.str.startswith("cost-")]
    srmp = srmp_rows()
    runs["group"] = np.where(runs.seed <= 2, "seeds 0-2", "seeds 3-4")
    print("Paired gap to SRMP at each seen rate, points (mean ± 95 % t half-width over runs)\n")
    print("| variant | data | seeds | runs | " + " | ".join(f"{r:.2f}" for r in SEEN) + " | within 2 |")
    print("|" + "---|" * (len(SEEN) + 5))
    for (label, ds, grp), m in runs.groupby(["label", "dataset", "group"], sort=False):
        cells, ok = [], 0
        for r in SEEN:
            d = (at(m, r) - at(srmp, r)).dropna()
            cells.append(ci(d) if len(d) else "–")
            ok += int(len(d) > 0 and d.mean() >= -0.02)
        n = len(m[KEY].drop_duplicates())
        print(f"| {label} | {ds} | {grp} | {n} | " + " | ".join(cells) + f" | {ok}/{len(SEEN)} |")
    print(
        "\nVariant − the plain MRMP with the same prior, on the same runs, points (seen rates; last column: the "
        "mean over the seen rates)\n"
    )
    print("| variant | data | seeds | " + " | ".join(f"{r:.2f}" for r in SEEN) + " | mean |")
    print("|" + "---|" * (len(SEEN) + 4))
    pooled = runs[runs.dataset == "synthetic-sbu"].assign(group="seeds 0-4")  # every SBU-like run, pooled
    for (label, ds, grp), m in pd.concat([runs, pooled]).groupby(["label", "dataset", "group"], sort=False):
        ref = "mrmp-laplace" if "laplace" in label else "mrmp"  # the same prior without the gains
        base = runs[(runs.label == ref) & (runs.dataset == ds) & ((runs.group == grp) | (grp == "seeds 0-4"))]
        if label in ("mrmp", "mrmp-laplace") or base.empty or (grp == "seeds 0-4" and m.seed.max() <= 2):
            continue
        cells = [ci((at(m, r) - at(base, r)).dropna()) for r in SEEN]
        mean_v = m[m.seen == 1].groupby(KEY).test_accuracy.mean()
        mean_b = base[base.seen == 1].groupby(KEY).test_accuracy.mean()
        cells.append(ci((mean_v - mean_b).dropna()))
        print(f"| {label} | {ds} | {grp} | " + " | ".join(cells) + " |")
    print(
        "\nUnseen rates vs the interpolation of their seen neighbours; worst observed-rate miss (0.50-0.98)\n"
    )
    print("| variant | data | seeds | unseen − interpolation (points) | worst miss (points) |")
    print("|---|---|---|---|---|")
    for (label, ds, grp), m in runs.groupby(["label", "dataset", "group"], sort=False):
        u = unseen_vs_interp(m)
        grid = m[(m.rate >= 0.5 - 1e-9) & (m.rate <= 0.98 + 1e-9)]
        miss = grid.observed_rate - grid.rate
        worst = miss.iloc[int(miss.abs().values.argmax())]
        print(f"| {label} | {ds} | {grp} | {ci(u)} | {100 * worst:+.2f} |")
    cost_files = glob.glob(str(HERE / "gains-cost*.csv"))
    if cost_files:
        c = pd.concat(pd.read_csv(f) for f in cost_files)
        c = c.drop_duplicates(["label"] + KEY).set_index(KEY)
        srmp_t = c[c.label == "cost-srmp@0.9"].train_cpu_s
        print("\nCost: train CPU time ÷ one SRMP training's, side by side per run (one thread)\n")
        print("| variant | pairs | ratio | seconds |")
        print("|---|---|---|---|")
        for label in ("cost-mrmp", "cost-mrmp-gains"):
            t = c[c.label == label].train_cpu_s
            ratio = (t / srmp_t).dropna()
            e = estimate(list(ratio))
            half = (e.hi - e.lo) / 2 if e.lo is not None else float("nan")
            print(
                f"| {label} | {len(ratio)} | {e.mean:.2f} ± {half:.2f} | {t.mean():.1f} vs {srmp_t.mean():.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
