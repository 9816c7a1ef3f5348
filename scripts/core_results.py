"""results/core: how much a training's accuracy moves from seed to seed, under the old and the new default
recipe, and the dense / magnitude-pruning curves at the new defaults. Synthetic SBU-like data only.

Every run is `mrmp.train.run` on the embedded synthetic SBU-like data (`data.name: synthetic-sbu`, generator
seed 0), one torch thread, one row per run in `runs.csv` (and, for dense runs, the MP / MP-layerwise / random
curves of that same network in `curves.csv`). `--report-only` rebuilds the generated files from the CSVs:
`recipe.md` (spread and mean per configuration and recipe, with intervals; cost), `dense_mp.md`, and the plots.
The hand-written findings are in README.md, which this script never touches.

    .venv/bin/python scripts/core_results.py --out results/core --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

# The recipe before issue #11 (full-batch Adam, lr 0.01, 300 epochs, nothing else), spelled out key by key so
# that it stays reproducible whatever the defaults become; "after" is the defaults.
RECIPES: dict[str, list[str]] = {
    "before": [
        "train.epochs=300",
        "train.batch_size=0",
        "train.lr=0.01",
        "train.lr_schedule=constant",
        "train.lr_warmup_epochs=0",
        "train.adaptive_lr=false",
        "train.weight_decay=0",
        "train.label_smoothing=0",
        "train.ema_decay=0",
    ],
    "after": [],
}
CONFIGS: dict[str, list[str]] = {
    "dense": ["method.name=dense"],
    "srmp@0.9": ["method.name=srmp", "method.rate=0.9"],
    "mrmp": ["method.name=mrmp"],  # its defaults (docs/methods.md): the protocol's `mrmp` in results/methods
    "tcmp@0.95": ["method.name=tcmp", "method.rate=0.95"],
}
# the headline accuracy of each configuration (summary.json keys without the val_/test_ prefix)
METRICS: dict[str, list[tuple[str, str]]] = {
    "dense": [("dense", "dense_accuracy")],
    "srmp@0.9": [("@0.9", "accuracy_at_target")],
    "mrmp": [("seen", "mean_seen_accuracy"), ("unseen", "mean_unseen_accuracy")],
    "tcmp@0.95": [("@0.95", "accuracy_at_target")],
}
SUMMARY_KEYS = [f"{split}_{m}" for split in ("val", "test") for ms in METRICS.values() for _, m in ms]
# pruning criteria applied, without retraining, to each dense network
VARIANTS = {
    "mp": ("mp", {"layerwise": False}),
    "mp-layerwise": ("mp", {"layerwise": True}),
    "random": ("random", {}),
}

_DATA: dict[int, Any] = {}


def run_job(job: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One training (in a worker process, one torch thread): its row, and, for a dense network of the default
    recipe on fold 1, the curves of MP, MP layer-wise and random pruning applied to it."""
    import torch

    from mrmp.config import load_config
    from mrmp.methods import registry
    from mrmp.train import evaluate_curve, prepare_data, run

    torch.set_num_threads(1)
    sets = [
        *RECIPES[job["recipe"]],
        *CONFIGS[job["config"]],
        f"data.fold={job['fold']}",
        f"train.seed={job['seed']}",
        "train.threads=1",
        "train.device=cpu",
    ]
    cfg = load_config(None, sets)
    if job["fold"] not in _DATA:
        _DATA[job["fold"]] = prepare_data(cfg.data)
    data = _DATA[job["fold"]]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = run(cfg, data)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    s = result.summary
    row = {
        **{k: job[k] for k in ("recipe", "config", "fold", "seed")},
        **{k: "" if s.get(k) is None else round(s[k], 6) for k in dict.fromkeys(SUMMARY_KEYS)},
        "final_loss": s["final_loss"],
        "diverged": s["diverged"] or "",
        "epochs": s["epochs"],
        "train_cpu_s": round(cpu, 3),
        "train_wall_s": round(wall, 3),
        "split_hash": s["split_hash"],
        "config_hash": s["config_hash"],
    }
    curves = []
    if (
        job["config"] == "dense"
        and job["recipe"] == "after"
        and job["fold"] == 1
        and result.trainer.diverged is None
    ):
        t = result.trainer
        for name, (method, params) in VARIANTS.items():
            pruner = registry.create(method, registry.get(method).Params(**params), t.model, 0, job["seed"])
            for p in evaluate_curve(pruner, cfg.eval.rates, (t.x_test, t.y_test), (t.x_val, t.y_val)):
                curves.append(
                    {
                        **{k: job[k] for k in ("recipe", "fold", "seed")},
                        "variant": name,
                        "rate": p.rate,
                        "val_accuracy": p.val_accuracy,
                        "test_accuracy": p.test_accuracy,
                        "effective_rate": round(p.effective_rate, 6),
                        "disconnected": p.disconnected,
                    }
                )
    return row, curves


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


# --- statistics ------------------------------------------------------------------------------------------------


def mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and its two-sided 95 % t interval: mrmp's own estimate, as every sweep score is reported."""
    from mrmp.stats import estimate

    e = estimate([float(v) for v in x])
    return e.mean, e.lo, e.hi


def std_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Sample std and its 95 % interval from the chi-square distribution of (n−1)s²/σ² (normal data)."""
    from scipy import stats

    n, s = len(x), float(x.std(ddof=1))
    lo = s * np.sqrt((n - 1) / stats.chi2.ppf(0.975, n - 1))
    hi = s * np.sqrt((n - 1) / stats.chi2.ppf(0.025, n - 1))
    return s, float(lo), float(hi)


def ratio_ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """std(a)/std(b) and its 95 % interval from the F distribution of the variance ratio (normal data)."""
    from scipy import stats

    r = float(a.std(ddof=1) / b.std(ddof=1))
    da, db = len(a) - 1, len(b) - 1
    return r, r / float(np.sqrt(stats.f.ppf(0.975, da, db))), r / float(np.sqrt(stats.f.ppf(0.025, da, db)))


def pooled_within_std(groups: list[np.ndarray]) -> tuple[float, int]:
    """The pooled std within groups (each fold's seeds around the fold's own mean) and its degrees of freedom."""
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups if len(g) > 1)
    df = sum(len(g) - 1 for g in groups if len(g) > 1)
    return (float(np.sqrt(ss / df)) if df else float("nan")), df


# --- report ----------------------------------------------------------------------------------------------------


def pct(v: float) -> str:
    return f"{100 * v:.1f}"


def values(rows: list[dict[str, str]], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows if r[key] != ""])


def report(out: Path, meta: dict[str, Any]) -> None:
    runs = read_csv(out / "runs.csv")
    by: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in runs:
        by[(r["recipe"], r["config"])].append(r)
    recipes = [r for r in RECIPES if any(k[0] == r for k in by)]
    lines = [
        "# Seed-to-seed spread of one training, before and after the recipe change (generated)",
        "",
        "**Synthetic SBU-like data generated by mrmp (`synthetic-sbu`, generator seed 0): not SBU results.**",
        f"Generated by `scripts/core_results.py`; {meta_line(meta)}. Accuracies in %; 95 % intervals in brackets "
        "(mean: t; std: chi-square; std ratio: F). Validation: 46 clips of the training subjects (1 clip = 2.2 "
        "points); test: the 54 clips of the held-out fold (1 clip = 1.85 points).",
        "",
        "## Training noise: seeds 0..n−1 on fold 1",
        "",
        "| config | metric | split | recipe | n | mean [95 % CI] | std [95 % CI] | std after / before [95 % CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config, metrics in METRICS.items():
        for label, metric in metrics:
            for split in ("val", "test"):
                key = f"{split}_{metric}"
                fold1 = {rc: values([r for r in by[(rc, config)] if r["fold"] == "1"], key) for rc in recipes}
                for rc in recipes:
                    x = fold1[rc]
                    if len(x) < 2:
                        continue
                    m, mlo, mhi = mean_ci(x)
                    s, slo, shi = std_ci(x)
                    ratio = ""
                    if rc != "before" and len(fold1.get("before", [])) > 1:
                        q, qlo, qhi = ratio_ci(x, fold1["before"])
                        ratio = f"{q:.2f} [{qlo:.2f}, {qhi:.2f}]"
                    lines.append(
                        f"| {config} | {label} | {split} | {rc} | {len(x)} | {pct(m)} [{pct(mlo)}, {pct(mhi)}] "
                        f"| {pct(s)} [{pct(slo)}, {pct(shi)}] | {ratio} |"
                    )
    lines += [
        "",
        "## Folds 1–5: data and training noise together",
        "",
        "Per recipe and configuration: the mean over all (fold, seed) runs; the std of the fold means (what "
        "moves a 5-fold protocol's figure: data and training noise mixed); the pooled std within folds "
        "(training noise alone, each fold around its own mean) with its degrees of freedom.",
        "",
        "| config | metric | split | recipe | folds × seeds | mean [95 % CI over fold means] | std of fold means "
        "[95 % CI] | pooled within-fold std (df) | fold means |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for config, metrics in METRICS.items():
        for label, metric in metrics:
            for split in ("val", "test"):
                key = f"{split}_{metric}"
                for rc in recipes:
                    per_fold: dict[str, np.ndarray] = {}
                    for f in sorted({r["fold"] for r in by[(rc, config)]}):
                        per_fold[f] = values([r for r in by[(rc, config)] if r["fold"] == f], key)
                    if len(per_fold) < 2:
                        continue
                    # the same number of seeds from every fold, so that no fold weighs more
                    k = min(len(v) for v in per_fold.values())
                    groups = [v[:k] for v in per_fold.values()]
                    fm = np.array([g.mean() for g in groups])
                    m, mlo, mhi = mean_ci(fm)
                    s, slo, shi = std_ci(fm)
                    w, df = pooled_within_std(groups)
                    lines.append(
                        f"| {config} | {label} | {split} | {rc} | {len(groups)} × {k} | {pct(m)} [{pct(mlo)}, "
                        f"{pct(mhi)}] | {pct(s)} [{pct(slo)}, {pct(shi)}] | {pct(w)} ({df}) "
                        f"| {' '.join(pct(v) for v in fm)} |"
                    )
    lines += [
        "",
        "## Cost of one training (train + curve), one torch thread",
        "",
        "| config | recipe | runs | CPU s mean [95 % CI] | wall s mean |",
        "|---|---|---|---|---|",
    ]
    for config in CONFIGS:
        for rc in recipes:
            rows = by[(rc, config)]
            if len(rows) < 2:
                continue
            m, lo, hi = mean_ci(values(rows, "train_cpu_s"))
            lines.append(
                f"| {config} | {rc} | {len(rows)} | {m:.2f} [{lo:.2f}, {hi:.2f}] "
                f"| {values(rows, 'train_wall_s').mean():.2f} |"
            )
    diverged = [r for r in runs if r["diverged"]]
    lines += ["", f"Diverged runs: {len(diverged)}."]
    for r in diverged:
        lines.append(f"- {r['recipe']} {r['config']} fold {r['fold']} seed {r['seed']}: {r['diverged']}")
    (out / "recipe.md").write_text("\n".join(lines) + "\n")
    plot_spread(out / "recipe_spread.png", runs, recipes)
    if (out / "curves.csv").exists():
        dense_mp(out, read_csv(out / "curves.csv"), meta)


def meta_line(meta: dict[str, Any]) -> str:
    return (
        f"command `{meta['command']}`; commit {meta['commit']}; {meta['machine']}; {meta['date']}; "
        f"{meta['runs']} runs, {meta['cpu_s'] / 60:.1f} CPU min, {meta['wall_s'] / 60:.1f} wall min; "
        f"load average {meta['load_before']} before, {meta['load_after']} after"
    )


def plot_spread(path: Path, runs: list[dict[str, str]], recipes: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(c, label, m) for c, ms in METRICS.items() for label, m in ms]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.6), sharey=True)
    rng = np.random.default_rng(0)
    for ax, (config, label, metric) in zip(axes, panels):
        for i, split in enumerate(("val", "test")):
            for j, rc in enumerate(recipes):
                rows = [r for r in runs if r["recipe"] == rc and r["config"] == config and r["fold"] == "1"]
                y = 100 * values(rows, f"{split}_{metric}")
                x = 2 * i + j + rng.uniform(-0.15, 0.15, len(y))
                ax.scatter(x, y, s=10, alpha=0.6, color=f"C{j}", label=rc if i == 0 else None)
                if len(y):
                    ax.hlines(y.mean(), 2 * i + j - 0.3, 2 * i + j + 0.3, color="k")
        ax.set_xticks([0.5, 2.5], ["val", "test"])
        ax.set_title(config if label in config else f"{config} {label}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%), one dot per seed, fold 1")
    axes[0].legend(fontsize=8)
    fig.suptitle("Synthetic SBU-like data (mrmp generator): seed-to-seed spread, before vs after", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def dense_mp(out: Path, curves: list[dict[str, str]], meta: dict[str, Any]) -> None:
    """The dense network's MP / MP-layerwise / random curves at the new defaults, fold 1, mean ± std over seeds."""
    rows = [r for r in curves if r["recipe"] == "after" and r["fold"] == "1"]
    if not rows:
        return
    seeds = sorted({int(r["seed"]) for r in rows})
    rates = sorted({float(r["rate"]) for r in rows})
    table: dict[tuple[str, float], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        table[(r["variant"], float(r["rate"]))].append(r)
    out_rows = []
    for rate in rates:
        row: dict[str, Any] = {"rate": f"{rate:.2f}"}
        for v in VARIANTS:
            pts = table[(v, rate)]
            for split in ("val", "test"):
                a = values(pts, f"{split}_accuracy")
                row[f"{v}_{split}_mean"] = f"{a.mean():.4f}"
                row[f"{v}_{split}_std"] = f"{a.std(ddof=1):.4f}"
            row[f"{v}_effective_rate"] = f"{values(pts, 'effective_rate').mean():.4f}"
            row[f"{v}_disconnected"] = f"{values(pts, 'disconnected').mean():.1f}"
        out_rows.append(row)
    write_csv(out / "dense_mp_curve.csv", out_rows)
    pick = ("0.00", "0.50", "0.70", "0.80", "0.90", "0.95", "0.98", "0.99")
    lines = [
        "# Dense network and magnitude pruning without retraining, at the default recipe (generated)",
        "",
        "**Synthetic SBU-like data generated by mrmp (`synthetic-sbu`, generator seed 0), fold 1: not SBU results.**",
        f"Generated by `scripts/core_results.py`; {meta_line(meta)}.",
        f"One dense training per seed ({len(seeds)} seeds: {', '.join(map(str, seeds))}) at the default recipe "
        "(docs/training.md); each pruning criterion is applied to that same network without fine-tuning: "
        "MP = global magnitude, MP layer-wise = magnitude per layer, random = fixed random scores. Test "
        "accuracy (%), mean ± std over seeds; `dense_mp_curve.csv` has every rate and the validation split.",
        "",
        "| rate | MP | MP layer-wise | random | MP disconnected | MP effective rate |",
        "|---|---|---|---|---|---|",
    ]
    for r in out_rows:
        if r["rate"] not in pick:
            continue
        cells = [f"{pct(float(r[f'{v}_test_mean']))} ± {pct(float(r[f'{v}_test_std']))}" for v in VARIANTS]
        lines.append(
            f"| {r['rate']} | {' | '.join(cells)} | {r['mp_disconnected']} | {r['mp_effective_rate']} |"
        )
    lines += ["", "![dense and MP curves](dense_mp_curve.png)"]
    (out / "dense_mp.md").write_text("\n".join(lines) + "\n")
    plot_curves(out / "dense_mp_curve.png", out_rows, len(seeds))


def plot_curves(path: Path, rows: list[dict[str, Any]], n_seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([float(r["rate"]) for r in rows[1:]]) * 100
    fig, ax = plt.subplots(figsize=(7, 4.2))
    d, ds = float(rows[0]["mp_test_mean"]) * 100, float(rows[0]["mp_test_std"]) * 100
    ax.axhline(d, color="k", ls="--", lw=1, label=f"dense {d:.1f} %")
    ax.axhspan(d - ds, d + ds, color="k", alpha=0.08)
    for v in VARIANTS:
        m = np.array([float(r[f"{v}_test_mean"]) for r in rows[1:]]) * 100
        s = np.array([float(r[f"{v}_test_std"]) for r in rows[1:]]) * 100
        ax.plot(x, m, label=v)
        ax.fill_between(x, m - s, m + s, alpha=0.2)
    ax.set_xlabel("pruning rate (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"Synthetic SBU-like data (mrmp generator), fold 1, small GCN, default recipe; mean ± std over {n_seeds} "
        "seeds",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# --- driver ----------------------------------------------------------------------------------------------------


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "mrmp"], capture_output=True, text=True, check=False
    )
    return (out.stdout.strip() or "unknown") + (" (mrmp/ modified)" if dirty.stdout.strip() else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 on fold 1")
    ap.add_argument("--fold-seeds", type=int, default=4, help="seeds 0..N-1 on each of folds 2-5 (0: none)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    ap.add_argument("--out", default="results/core")
    ap.add_argument("--report-only", action="store_true", help="rebuild the generated files from the CSVs")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report(out, json.loads((out / "meta.json").read_text()))
        return
    # recipes interleaved, so that both see the same load on a shared machine (CPU time grows with contention)
    jobs = [
        {"recipe": rc, "config": c, "fold": fold, "seed": seed}
        for c in args.configs
        for fold in range(1, 6)
        for seed in range(args.seeds if fold == 1 else args.fold_seeds)
        for rc in args.recipes
    ]
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    t0 = time.perf_counter()
    rows, curves = [], []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for i, (row, curve) in enumerate(pool.imap_unordered(run_job, jobs), 1):
            rows.append(row)
            curves += curve
            print(
                f"[{i}/{len(jobs)}] {row['recipe']} {row['config']} fold {row['fold']} seed {row['seed']}: "
                f"cpu {row['train_cpu_s']:.1f} s",
                flush=True,
            )
    key = [*RECIPES].index
    rows.sort(key=lambda r: (key(r["recipe"]), [*CONFIGS].index(r["config"]), r["fold"], r["seed"]))
    write_csv(out / "runs.csv", rows)
    if curves:
        curves.sort(key=lambda r: (key(r["recipe"]), r["fold"], r["seed"], r["variant"], r["rate"]))
        write_csv(out / "curves.csv", curves)
    meta = {
        "command": " ".join(["python scripts/core_results.py", *sys.argv[1:]]),
        "commit": git_commit(),
        "machine": f"{platform.machine()} CPU ({platform.processor() or 'unknown'}), {os.cpu_count()} cores, "
        f"{args.jobs} worker processes × 1 torch thread, shared with other users",
        "date": datetime.date.today().isoformat(),
        "runs": len(rows),
        "cpu_s": round(sum(r["train_cpu_s"] for r in rows), 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "load_before": load_before,
        "load_after": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "python": platform.python_version(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    report(out, meta)


if __name__ == "__main__":
    main()
