"""The uniform prior with and without the prior-shaped initialisation. First SRMP: per trained rate, each side's mean
test accuracy at that rate, how many runs sit at chance (test accuracy below 20 %: 8 classes), each side's worst
|observed − target rate| (points) and the paired difference (points, mean ± 95 % t over runs). "With" is the
protocol's `srmp-uniform-init` (the default until 2026-12-01), "without" dev/uniform-init.yaml's
`srmp-uniform-noinit` (the default since; the protocol's `srmp-uniform` re-ran it). Then MRMP with the uniform
prior: the default (`mrmp-uniform`, no init), with the init (`mrmp-uniform-init`), and dev/uniform-mrmp.yaml's
variants, on the runs they share: mean test accuracy over the seen and the unseen rates, runs at chance, the mean
observed − target rate over 0.50–0.75 and the worst over 0.50–0.98 (points), and the rates missed by more than 1
point; and each variant against the default, paired, on every run the two share. Development evidence.

    python results/methods/dev/uniform_init_table.py results/methods/runs-*.csv results/methods/dev/uniform-*-runs-*.csv
"""

from __future__ import annotations

import sys

import pandas as pd

from mrmp.stats import estimate

CHANCE = 0.20  # 8 classes: 12.5 %; a run under 20 % learned nothing


def srmp_table(d: pd.DataFrame) -> None:
    d = d[d.label.str.match(r"srmp-uniform(-init|-noinit)?(-noanchor)?@")].copy()
    d["family"] = d.label.str.split("@").str[0]
    d["trained"] = d.label.str.split("@").str[1].astype(float)
    d = d[(d.rate - d.trained).abs() < 1e-6]
    print(
        "| anchor | rate | runs | with init: acc. / at chance / worst miss | without: acc. / at chance / "
        "worst miss | without − with (points) |"
    )
    print("|---|---|---|---|---|---|")
    for suffix in ("", "-noanchor"):
        a, b = d[d.family == f"srmp-uniform-init{suffix}"], d[d.family == f"srmp-uniform-noinit{suffix}"]
        for rate in sorted(set(b.trained)):
            x = a[a.trained == rate].set_index(["fold", "seed"])
            y = b[b.trained == rate].set_index(["fold", "seed"])
            both = x.index.intersection(y.index)
            x, y = x.loc[both], y.loc[both]
            e = estimate(list(100 * (y.test_accuracy - x.test_accuracy)))
            cells = [
                f"{100 * s.test_accuracy.mean():.1f} / {(s.test_accuracy < CHANCE).sum()} / "
                f"{100 * (s.observed_rate - rate).abs().max():.2f}"
                for s in (x, y)
            ]
            print(
                f"| {'off' if suffix else 'on'} | {rate:.2f} | {len(both)} | {cells[0]} | {cells[1]} | "
                f"{e.mean:+.1f} ± {(e.hi - e.lo) / 2:.1f} |"
            )


def uniform_mrmp_rows(d: pd.DataFrame) -> pd.DataFrame:
    """The SBU-like rows at 0.50–0.98 of the uniform MRMP's default, its init variant and the dev variants."""
    d = d[
        d.label.str.match(r"mrmp-uniform(-init|-noinit-anc\d+|-noinit-kl1)?$")
        & (d.dataset == "synthetic-sbu")
    ]
    return d[(d.rate > 0.5 - 1e-6) & (d.rate < 0.98 + 1e-6)].drop_duplicates(
        ["label", "fold", "seed", "rate"]
    )


def mrmp_table(d: pd.DataFrame) -> None:
    d = uniform_mrmp_rows(d)
    runs = set.intersection(*(set(zip(g.fold, g.seed)) for _, g in d.groupby("label")))
    d = d[[(f, s) in runs for f, s in zip(d.fold, d.seed)]]
    print(
        "\n| configuration | runs | seen acc. | unseen acc. | at chance | mean miss 0.50–0.75 | worst miss | rates > 1 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, g in d.groupby("label"):
        miss = 100 * (g.observed_rate - g.rate)
        worst = miss.abs().groupby(g.rate).max()
        chance = (g[g.seen == 1].groupby(["fold", "seed"]).test_accuracy.mean() < CHANCE).sum()
        print(
            f"| {label} | {len(runs)} | {100 * g[g.seen == 1].test_accuracy.mean():.1f} | "
            f"{100 * g[g.seen == 0].test_accuracy.mean():.1f} | {chance} | {miss[g.rate <= 0.75 + 1e-6].mean():+.2f} | "
            f"{worst.max():.2f} | {(worst > 1).sum()} |"
        )


def paired_table(d: pd.DataFrame) -> None:
    """Each uniform MRMP variant against the default on every run the two share: the paired difference of each
    run's mean test accuracy over the seen rates (points, mean ± 95 % t), and each side's worst rate miss."""
    d = uniform_mrmp_rows(d)
    seen = d[d.seen == 1].groupby(["label", "fold", "seed"]).test_accuracy.mean()
    worst = (100 * (d.observed_rate - d.rate).abs()).groupby([d.label, d.fold, d.seed]).max()
    print(
        "\n| variant | runs | variant − mrmp-uniform, seen acc. (points) | worst miss: mrmp-uniform / variant |"
    )
    print("|---|---|---|---|")
    base = seen["mrmp-uniform"]
    for label in sorted(set(d.label) - {"mrmp-uniform"}):
        both = base.index.intersection(seen[label].index)
        e = estimate(list(100 * (seen[label][both] - base[both])))
        print(
            f"| {label} | {len(both)} | {e.mean:+.1f} ± {(e.hi - e.lo) / 2:.1f} | "
            f"{worst['mrmp-uniform'][both].max():.2f} / {worst[label][both].max():.2f} |"
        )


def main(paths: list[str]) -> None:
    d = pd.concat(pd.read_csv(p) for p in paths)
    srmp_table(d)
    mrmp_table(d)
    paired_table(d)


if __name__ == "__main__":
    main(sys.argv[1:])
