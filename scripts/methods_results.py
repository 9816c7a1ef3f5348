"""results/methods: SRMP, MRMP and TCMP against dense, random and MP on synthetic SBU-like data (fold 1).

Every number comes from `mrmp.train.run` on the embedded synthetic SBU-like data (`data.name: synthetic-sbu`,
generator seed 0, fold 1), `small` preset, full-batch Adam, the same epochs for every method; mean ± std over
seeds. Writes CSVs, PNGs and a README with the verdicts to --out.

.venv/bin/python scripts/methods_results.py --seeds 0 1 2 --epochs 300 --jobs 2 --out results/methods
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

RATES = [0.5, 0.7, 0.9, 0.95, 0.98]  # SRMP, MP + fine-tuning: one training per rate
TCMP_RATES = [0.9, 0.95, 0.98]
PRIORS = ["gaussian", "laplace", "uniform"]
DEFAULT_PRIOR = "gaussian"
FINETUNE_EPOCHS = 100
MRMP_K = 4  # the MRMP variant with k = 4 seen rates per step (the default is k = 1)
MRMPS = ["mrmp", f"mrmp-k{MRMP_K}"]

_DATA = None


# --- one job (runs in a worker process) ----------------------------------------------------------------------


def _data():
    global _DATA
    if _DATA is None:
        from mrmp.config import load_config
        from mrmp.train import prepare_data

        _DATA = prepare_data(load_config().data)
    return _DATA


def _config(method: dict[str, Any], seed: int, epochs: int, rates: list[float] | None):
    from mrmp.config import config_from_dict, default_rates

    raw = {
        "method": method,
        "train": {"epochs": epochs, "seed": seed, "threads": 1, "device": "cpu"},
        "eval": {"rates": rates if rates is not None else default_rates()},
    }
    return config_from_dict(raw, source="methods_results")


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Train one configuration with `mrmp.train.run`; one row per evaluated rate (plus timings)."""
    import torch

    from mrmp.methods import registry
    from mrmp.train import evaluate_curve, run

    torch.set_num_threads(1)
    data = _data()
    kind, seed, epochs = job["kind"], job["seed"], job["epochs"]
    trained = job.get("rate")
    rates = None if trained is None else sorted({0.0, trained})
    cfg = _config(job["method"], seed, epochs, rates)
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = run(cfg, data)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    base = {
        "seed": seed,
        "prior": job.get("prior", ""),
        "trained_rate": "" if trained is None else trained,
        "cpu_s": round(cpu, 2),
        "train_s": result.summary["train_time_s"],
        "wall_s": round(wall, 2),
        "epochs": result.trainer.epoch,
    }
    curves = {kind: result.curve}
    if kind == "mp":  # random pruning and the dense network: the same trained network of this seed
        trainer = result.trainer
        pruner = registry.create("random", registry.get("random").Params(), trainer.model, epochs, seed)
        curves["random"] = evaluate_curve(pruner, trainer.x_test, trainer.y_test, cfg.eval.rates)
        curves["dense"] = [p for p in result.curve if p.rate == 0.0]
    rows = []
    for label, curve in curves.items():
        for p in curve:
            if kind != "mp" and trained is not None and p.rate != trained and label != "dense":
                continue  # a per-rate training reports its own rate
            rows.append(
                {
                    "method": label,
                    **base,
                    "rate": round(p.rate, 4),
                    "accuracy": round(p.test_accuracy, 6),
                    "observed_rate": round(p.observed_rate, 6),
                    "effective_rate": round(p.effective_rate, 6),
                    "disconnected": p.disconnected,
                    "seen": p.seen,
                    "path_exists": int(p.path_exists),
                }
            )
    print(f"  done {kind:6s} {job.get('prior', ''):8s} rate={trained} seed={seed} cpu {cpu:.0f}s", flush=True)
    return rows


def jobs_for(seeds: list[int], epochs: int) -> list[dict[str, Any]]:
    jobs = []
    for s in seeds:
        jobs.append({"kind": "mrmp", "method": {"name": "mrmp"}, "seed": s, "epochs": epochs})
        method = {"name": "mrmp", "rates_per_step": MRMP_K}
        jobs.append({"kind": f"mrmp-k{MRMP_K}", "method": method, "seed": s, "epochs": epochs})
        jobs.append({"kind": "mp", "method": {"name": "mp"}, "seed": s, "epochs": epochs})
        for r in TCMP_RATES:
            jobs.append(
                {
                    "kind": "tcmp",
                    "method": {"name": "tcmp", "rate": r},
                    "rate": r,
                    "seed": s,
                    "epochs": epochs,
                }
            )
        for r in RATES:
            method = {"name": "mp", "rate": r, "finetune_epochs": FINETUNE_EPOCHS}
            jobs.append({"kind": "mp+ft", "method": method, "rate": r, "seed": s, "epochs": epochs})
            for prior in PRIORS:
                method = {"name": "srmp", "rate": r, "prior": prior}
                jobs.append(
                    {"kind": "srmp", "method": method, "rate": r, "prior": prior, "seed": s, "epochs": epochs}
                )
    return jobs


# --- aggregation ---------------------------------------------------------------------------------------------


def _ms(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _pm(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    m, s = _ms(values)
    return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def label_of(row: dict[str, Any]) -> str:
    if row["method"] == "srmp":
        return f"srmp-{row['prior']}"
    return row["method"]


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method label, rate)."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(label_of(r), r["rate"])].append(r)
    out = []
    for (label, rate), rs in sorted(groups.items()):
        acc_m, acc_s = _ms([r["accuracy"] for r in rs])
        obs_m, obs_s = _ms([r["observed_rate"] for r in rs])
        out.append(
            {
                "method": label,
                "rate": rate,
                "seen": rs[0]["seen"] if label in MRMPS else "",
                "seeds": len(rs),
                "accuracy_mean": round(acc_m, 4),
                "accuracy_std": round(acc_s, 4),
                "observed_rate_mean": round(obs_m, 5),
                "observed_rate_std": round(obs_s, 5),
                "max_abs_rate_error_pts": round(max(abs(r["observed_rate"] - rate) for r in rs) * 100, 3),
                "effective_rate_mean": round(statistics.fmean(r["effective_rate"] for r in rs), 5),
                "disconnected_mean": round(statistics.fmean(r["disconnected"] for r in rs), 1),
                "disconnected_max": max(r["disconnected"] for r in rs),
                "path_exists_all": int(all(r["path_exists"] for r in rs)),
            }
        )
    return out


# --- plots ---------------------------------------------------------------------------------------------------

STYLE = {
    "dense": ("black", "--"),
    "random": ("0.6", ":"),
    "mp": ("tab:gray", "-"),
    "mp+ft": ("tab:brown", "-"),
    f"srmp-{DEFAULT_PRIOR}": ("tab:blue", "-"),
    "mrmp": ("tab:green", "-"),
    f"mrmp-k{MRMP_K}": ("tab:olive", "-"),
    "tcmp": ("tab:red", "-"),
}


def plot_accuracy(agg: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    by = defaultdict(list)
    for a in agg:
        by[a["method"]].append(a)
    dense = by["dense"][0]
    ax.axhline(dense["accuracy_mean"] * 100, color="black", ls="--", lw=1, label="dense")
    for label in ["random", "mp", "mp+ft", f"srmp-{DEFAULT_PRIOR}", "tcmp"]:
        pts = [a for a in by[label] if a["rate"] >= 0.5]
        if not pts:
            continue
        color, ls = STYLE[label]
        xs = [a["rate"] * 100 for a in pts]
        ys = [a["accuracy_mean"] * 100 for a in pts]
        es = [a["accuracy_std"] * 100 for a in pts]
        marker = "" if label in ("random", "mp") else "o"
        ax.errorbar(
            xs,
            ys,
            yerr=es if marker else None,
            color=color,
            ls=ls,
            marker=marker,
            ms=5,
            capsize=2,
            label=label,
        )
    for label in MRMPS:
        pts = [a for a in by[label] if a["rate"] >= 0.5]
        if not pts:
            continue
        color = STYLE[label][0]
        xs = [a["rate"] * 100 for a in pts]
        ys = [a["accuracy_mean"] * 100 for a in pts]
        lo = [(a["accuracy_mean"] - a["accuracy_std"]) * 100 for a in pts]
        hi = [(a["accuracy_mean"] + a["accuracy_std"]) * 100 for a in pts]
        ax.plot(xs, ys, color=color, lw=1.2, label=f"{label} (one training): seen ●, unseen ○")
        ax.fill_between(xs, lo, hi, color=color, alpha=0.10)
        seen = [(x, y) for x, y, a in zip(xs, ys, pts) if a["seen"]]
        unseen = [(x, y) for x, y, a in zip(xs, ys, pts) if not a["seen"]]
        ax.plot(*zip(*seen), "o", color=color, ms=6)
        ax.plot(*zip(*unseen), "o", mfc="white", color=color, ms=3.5)
    ax.set_xlabel("pruning rate (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Synthetic SBU-like data (generated by mrmp), fold 1 — not SBU results", fontsize=10)
    ax.set_xlim(48, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fixed_vs_observed(agg: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    colors = {"gaussian": "tab:blue", "laplace": "tab:orange", "uniform": "tab:purple"}
    for prior in PRIORS:
        pts = [a for a in agg if a["method"] == f"srmp-{prior}" and a["rate"] > 0]
        xs = [a["rate"] * 100 for a in pts]
        ax1.errorbar(xs, [a["observed_rate_mean"] * 100 for a in pts], yerr=[a["observed_rate_std"] * 100 for a in pts],
                     marker="o", ms=4, capsize=2, color=colors[prior], label=prior)  # fmt: skip
        err = [(a["observed_rate_mean"] - a["rate"]) * 100 for a in pts]
        ax2.errorbar(xs, err, yerr=[a["observed_rate_std"] * 100 for a in pts], marker="o", ms=4, capsize=2,
                     color=colors[prior], label=prior)  # fmt: skip
    ax1.plot([48, 100], [48, 100], "k--", lw=0.8)
    ax1.set_xlabel("fixed (target) rate (%)")
    ax1.set_ylabel("observed rate (%)")
    ax1.legend(fontsize=8)
    ax2.axhspan(-1, 1, color="0.9", label="±1 point")
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xlabel("fixed (target) rate (%)")
    ax2.set_ylabel("observed − fixed (points)")
    ax2.set_ylim(-2, 2)
    ax2.legend(fontsize=8)
    fig.suptitle("SRMP, one training per rate and prior (synthetic SBU-like data, fold 1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_integrity(agg: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for label in ["random", "mp", "mp+ft", f"srmp-{DEFAULT_PRIOR}", *MRMPS, "tcmp"]:
        pts = [a for a in agg if a["method"] == label and a["rate"] >= 0.5]
        if not pts:
            continue
        color, ls = STYLE[label]
        marker = "" if label in ("random", "mp", *MRMPS) else "o"
        xs = [a["rate"] * 100 for a in pts]
        ax1.plot(
            xs, [a["disconnected_mean"] for a in pts], color=color, ls=ls, marker=marker, ms=4, label=label
        )
        ax2.plot(xs, [(a["effective_rate_mean"] - a["rate"]) * 100 for a in pts], color=color, ls=ls, marker=marker,
                 ms=4, label=label)  # fmt: skip
    ax1.set_yscale("symlog", linthresh=1)
    ax1.set_xlabel("pruning rate (%)")
    ax1.set_ylabel("disconnected kept connections (mean)")
    ax2.set_xlabel("pruning rate (%)")
    ax2.set_ylabel("effective − nominal rate (points)")
    ax2.set_yscale("symlog", linthresh=0.1)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Topological integrity (synthetic SBU-like data, fold 1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- README --------------------------------------------------------------------------------------------------


def _acc(agg_by: dict[tuple[str, float], dict[str, Any]], label: str, rate: float) -> str:
    a = agg_by.get((label, rate))
    if a is None:
        return "–"
    return f"{a['accuracy_mean'] * 100:.1f} ± {a['accuracy_std'] * 100:.1f}"


def verdicts(rows: list[dict[str, Any]], agg_by: dict[tuple[str, float], dict[str, Any]]) -> list[str]:
    """One line per claim, computed from the numbers (mean ± std over seeds; 'holds' means mean ≥ mean)."""

    def acc(label: str, rate: float) -> tuple[float, float]:
        a = agg_by[(label, rate)]
        return a["accuracy_mean"] * 100, a["accuracy_std"] * 100

    lines = []
    srmp = f"srmp-{DEFAULT_PRIOR}"
    # 1. SRMP observed rates
    errs = [
        (r["prior"], r["trained_rate"], (r["observed_rate"] - r["rate"]) * 100)
        for r in rows
        if r["method"] == "srmp" and r["rate"] == r["trained_rate"]
    ]
    within = sum(abs(e[2]) <= 1.0 for e in errs)
    per_prior = []
    for prior in PRIORS:
        mine = [e for e in errs if e[0] == prior]
        worst = max(mine, key=lambda e: abs(e[2]))
        bad = sorted({e[1] for e in mine if abs(e[2]) > 1.0})
        where = f", off at {', '.join(f'{b:.0%}' for b in bad)}" if bad else ""
        per_prior.append(
            f"{prior} {'holds' if not bad else 'does not hold'} (worst {worst[2]:+.2f} at {worst[1]:.0%}{where})"
        )
    lines.append(
        f"- **SRMP observed rate within ±1 point of the fixed rate, every prior, rates 50–98 %** [paper]: "
        f"{'HOLDS' if within == len(errs) else 'DOES NOT HOLD'} everywhere: {within}/{len(errs)} runs within "
        f"±1 point; " + "; ".join(per_prior) + "."
    )
    # 2. SRMP >= MP at 90-98
    parts, holds_mp, holds_ft = [], [], []
    for r in (0.9, 0.95, 0.98):
        s, mp, ft = acc(srmp, r), acc("mp", r), acc("mp+ft", r)
        holds_mp.append(s[0] >= mp[0])
        holds_ft.append(s[0] >= ft[0])
        parts.append(
            f"{r:.0%}: SRMP {s[0]:.1f} ± {s[1]:.1f} vs MP {mp[0]:.1f} ± {mp[1]:.1f}, MP+FT {ft[0]:.1f} ± {ft[1]:.1f}"
        )
    lines.append(
        f"- **SRMP ≥ MP at 90–98 %**: vs MP without fine-tuning {'HOLDS' if all(holds_mp) else 'DOES NOT HOLD'} "
        f"({sum(holds_mp)}/3 rates); vs MP with {FINETUNE_EPOCHS} fine-tuning epochs "
        f"{'HOLDS' if all(holds_ft) else 'DOES NOT HOLD'} ({sum(holds_ft)}/3 rates). "
        + "; ".join(parts)
        + "."
    )
    # 3. MRMP unseen ~ seen
    for label in MRMPS:
        pts = [a for (m, rate), a in agg_by.items() if m == label and 0.5 <= rate <= 0.98]
        if not pts:
            continue
        seen = [a["accuracy_mean"] * 100 for a in pts if a["seen"]]
        unseen = [a["accuracy_mean"] * 100 for a in pts if not a["seen"]]
        seen_by = {a["rate"]: a["accuracy_mean"] * 100 for a in pts if a["seen"]}
        gaps = []
        for a in pts:
            if a["seen"]:
                continue
            lo = max((r for r in seen_by if r < a["rate"]), default=None)
            hi = min((r for r in seen_by if r > a["rate"]), default=None)
            if lo is None or hi is None:
                continue
            w = (a["rate"] - lo) / (hi - lo)
            gaps.append(a["accuracy_mean"] * 100 - ((1 - w) * seen_by[lo] + w * seen_by[hi]))
        mean_gap = statistics.fmean(gaps) if gaps else float("nan")
        worst_gap = min(gaps) if gaps else float("nan")
        ok = abs(mean_gap) <= 2.0
        k = "1" if label == "mrmp" else str(MRMP_K)
        lines.append(
            f"- **MRMP (k = {k} seen rates per step): accuracy at unseen rates ≈ at seen rates** [paper]: "
            f"{'HOLDS' if ok else 'DOES NOT HOLD'}: mean over seen rates (50–98 %) {statistics.fmean(seen):.1f}, "
            f"over unseen {statistics.fmean(unseen):.1f}; each unseen rate vs the linear interpolation of its two "
            f"seen neighbours: mean gap {mean_gap:+.1f} points, worst {worst_gap:+.1f} ({len(gaps)} unseen rates "
            "between seen ones; 'holds' = |mean gap| ≤ 2 points)."
        )
    # 4. TCMP
    parts, holds = [], []
    for r in (0.95, 0.98):
        t, mp, ft = acc("tcmp", r), acc("mp", r), acc("mp+ft", r)
        holds.append((t[0] >= mp[0], t[0] >= ft[0]))
        eff = agg_by[("mp", r)]["effective_rate_mean"] * 100
        parts.append(
            f"{r:.0%}: TCMP {t[0]:.1f} ± {t[1]:.1f} vs MP {mp[0]:.1f} ± {mp[1]:.1f} (MP's effective rate {eff:.2f} %), "
            f"MP+FT {ft[0]:.1f} ± {ft[1]:.1f}"
        )
    tdisc = max(r["disconnected"] for r in rows if r["method"] == "tcmp")
    lines.append(
        f"- **TCMP ≥ MP at 95–98 %** [paper]: vs MP {'HOLDS' if all(h[0] for h in holds) else 'DOES NOT HOLD'}, "
        f"vs MP+FT {'HOLDS' if all(h[1] for h in holds) else 'DOES NOT HOLD'}; " + "; ".join(parts) + "."
    )
    lines.append(
        f"- **TCMP keeps zero disconnected connections** [paper]: {'HOLDS' if tdisc == 0 else 'DOES NOT HOLD'} "
        f"(max over all TCMP runs and rates: {tdisc})."
    )
    return lines


def write_readme(out: Path, rows, agg, args, wall_s: float, cpu_s: float, split: str, commit: str) -> None:
    agg_by = {(a["method"], a["rate"]): a for a in agg}
    srmp = f"srmp-{DEFAULT_PRIOR}"
    lines = [
        "# Pruning methods on synthetic SBU-like data",
        "",
        "**Data source: synthetic SBU-like data generated by mrmp (`data.name: synthetic-sbu`, generator seed 0), "
        "fold 1 (228 train / 54 test sequences). These are NOT SBU Kinect Interaction results, and no number here "
        "is a number of the SRMP/MRMP/TCMP papers** (we reimplement them from a documented spec: "
        "[docs/methods.md](../../docs/methods.md)).",
        "",
        f"- command: `.venv/bin/python scripts/methods_results.py --seeds {' '.join(map(str, args.seeds))} "
        f"--epochs {args.epochs} --jobs {args.jobs} --out {args.out}`",
        f"- code: commit {commit} (mrmp {_mrmp_version()}); data split hash {split} "
        "(`PreparedData.split_hash()`: features and labels of both sides of fold 1)",
        f"- machine: {platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs, {args.jobs} worker "
        f"processes of 1 torch thread; torch {_torch_version()}; date {getattr(args, 'date', None) or datetime.date.today().isoformat()}",
        f"- wall time {wall_s / 60:.1f} min for {len(_trainings(rows))} "
        f"trainings; CPU time {cpu_s / 60:.1f} min (sum over runs)",
        f"- every run: `small` preset, full-batch Adam lr 0.01, {args.epochs} epochs (MP+FT: then "
        f"{FINETUNE_EPOCHS} fine-tuning epochs with the mask fixed), seeds {', '.join(map(str, args.seeds))}; "
        "each method's default hyperparameters (its `Params`). Dense, MP and random share one dense training per "
        "seed (MP's rate-0 point is the dense network; random scores prune that same network). SRMP, MP+FT and TCMP "
        "train once per rate; MRMP once for the whole curve.",
        "",
        "## Verdicts",
        "",
        *verdicts(rows, agg_by),
        "",
        "## Accuracy (%) vs pruning rate, mean ± std over seeds",
        "",
        f"| rate | dense | random | MP | MP+FT | SRMP | MRMP (seen?) | MRMP k={MRMP_K} | TCMP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    table_rates = sorted({0.0, *RATES, 0.53, 0.77, 0.88, 0.93, 0.97, 0.99})
    for r in table_rates:
        m = agg_by.get(("mrmp", r))
        mrmp = "–" if m is None else f"{_acc(agg_by, 'mrmp', r)} ({'seen' if m['seen'] else 'unseen'})"
        dense = _acc(agg_by, "dense", 0.0) if r == 0.0 else "–"
        lines.append(
            f"| {r:.2f} | {dense} | {_acc(agg_by, 'random', r)} | {_acc(agg_by, 'mp', r)} | "
            f"{_acc(agg_by, 'mp+ft', r)} | {_acc(agg_by, srmp, r)} | {mrmp} | {_acc(agg_by, MRMPS[1], r)} | "
            f"{_acc(agg_by, 'tcmp', r)} |"
        )
    lines += [
        "",
        f"SRMP = prior `{DEFAULT_PRIOR}` (its default); the other priors are in the next table. MRMP's full curve "
        "(every rate 0.50…0.99) is in `accuracy.csv` and the plot.",
        "",
        "![accuracy vs rate](accuracy_vs_rate.png)",
        "",
        "## SRMP: fixed vs observed rate (one training per prior and rate)",
        "",
        "| prior | "
        + " | ".join(f"{r:.0%}" for r in RATES)
        + " | worst \\|error\\| (points) | accuracy at 90 % |",
        "|---|" + "---|" * (len(RATES) + 2),
    ]
    for prior in PRIORS:
        cells = [f"{agg_by[(f'srmp-{prior}', r)]['observed_rate_mean'] * 100:.2f} ± {agg_by[(f'srmp-{prior}', r)]['observed_rate_std'] * 100:.2f}" for r in RATES]  # fmt: skip
        worst = max(agg_by[(f"srmp-{prior}", r)]["max_abs_rate_error_pts"] for r in RATES)
        lines.append(
            f"| {prior} | " + " | ".join(cells) + f" | {worst:.2f} | {_acc(agg_by, f'srmp-{prior}', 0.9)} |"
        )
    lines += [
        "",
        "Observed rate = the fraction of prunable weights that are zero at evaluation (global over layers: the FC "
        "holds 98 % of them), mean ± std over seeds (%).",
        "",
        "![fixed vs observed](fixed_vs_observed.png)",
        "",
        "## Topological integrity: disconnected kept connections and effective rate",
        "",
        "| method | " + " | ".join(f"{r:.0%}" for r in RATES) + " |",
        "|---|" + "---|" * len(RATES),
    ]
    for label in ["random", "mp", "mp+ft", srmp, *MRMPS, "tcmp"]:
        cells = []
        for r in RATES:
            a = agg_by.get((label, r))
            cells.append(
                "–" if a is None else f"{a['disconnected_mean']:.0f} / {a['effective_rate_mean'] * 100:.2f}"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Cells: mean disconnected kept connections (kept weights that no input reaches or that reach no output) / "
        "mean effective rate (%), the fraction of prunable weights that are zero or disconnected.",
        "",
        "![integrity](integrity.png)",
        "",
        "## Compute: one MRMP training vs SRMP trained per rate",
        "",
        "| method | trainings per seed | CPU s per training (mean) | CPU s per seed for its curve | rates served |",
        "|---|---|---|---|---|",
    ]
    for row in compute_rows(rows):
        lines.append(
            f"| {row['method']} | {row['trainings_per_seed']} | {row['cpu_s_per_training']:.1f} | "
            f"{row['cpu_s_per_seed']:.1f} | {row['rates_served']} |"
        )
    lines += [
        "",
        "CPU seconds are process CPU time of each training (one torch thread; the machine was shared, so wall "
        "times are longer and noisier). SRMP for MRMP's 11 seen rates would take 11 trainings per seed.",
        "",
        "## Files",
        "",
        "- `runs.csv`: one row per training, seed and evaluated rate (accuracy, observed/effective rate, "
        "disconnected, seen, CPU/wall seconds).",
        "- `accuracy.csv`: mean ± std over seeds per method and rate (also the integrity columns).",
        "- `fixed_vs_observed.csv`: SRMP's observed rate per prior and fixed rate.",
        "- `compute.csv`: trainings and CPU time per method.",
        "- `accuracy_vs_rate.png`, `fixed_vs_observed.png`, `integrity.png`.",
        "",
        NOTES,
    ]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def _trainings(rows: list[dict[str, Any]]) -> dict[tuple, float]:
    """CPU seconds per training (dense and random rows reuse MP's training of their seed)."""
    return {
        (label_of(r), r["seed"], r["trained_rate"]): r["cpu_s"]
        for r in rows
        if r["method"] not in ("dense", "random")
    }


def compute_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runs: dict[str, dict[tuple, float]] = defaultdict(dict)
    for r in rows:
        if r["method"] in ("dense", "random"):
            continue
        runs[label_of(r)][(r["seed"], r["trained_rate"])] = r["cpu_s"]
    out = []
    for label in ["mp", "mp+ft", f"srmp-{DEFAULT_PRIOR}", *MRMPS, "tcmp"]:
        if label not in runs:
            continue
        cpu = list(runs[label].values())
        seeds = {k[0] for k in runs[label]}
        per_seed = len(cpu) / len(seeds)
        served = {
            "mp": "every rate (one dense net, no fine-tuning)",
            "mp+ft": f"{len(RATES)} (one each)",
            f"srmp-{DEFAULT_PRIOR}": f"{len(RATES)} (one each)",
            "mrmp": "every rate (11 seen + 39 unseen)",
            f"mrmp-k{MRMP_K}": "every rate (11 seen + 39 unseen)",
            "tcmp": f"{len(TCMP_RATES)} (one each)",
        }[label]
        out.append(
            {
                "method": label,
                "trainings_per_seed": int(per_seed),
                "cpu_s_per_training": round(statistics.fmean(cpu), 2),
                "cpu_s_per_seed": round(statistics.fmean(cpu) * per_seed, 2),
                "rates_served": served,
            }
        )
    return out


def _commit() -> str:
    import subprocess

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        core = ["mrmp/methods", "mrmp/model", "mrmp/train", "mrmp/config", "mrmp/data"]
        dirty = subprocess.run(["git", "status", "--porcelain", *core], capture_output=True, text=True).stdout
        return sha.stdout.strip() + (" + uncommitted changes in the core packages" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _mrmp_version() -> str:
    import mrmp

    return mrmp.__version__


def _torch_version() -> str:
    import torch

    return torch.__version__


NOTES = """## Notes: what we tried (development runs, single seeds unless said, 300 epochs)

- SRMP scale: per-layer RMS (`scope: layer`) pruned the 12×16 first filter matrix at the full rate and reached
  33–59 % at 90 %; one global RMS (`scope: global`, default) 70–91 %.
- SRMP rate fidelity: the fine-histogram KL alone left mid rates +1.0…+1.6 points off (λ = 1: +2); λ = 30–100
  tightened it but trained slower. The threshold-anchored histogram (`anchor_weight` 10, edges with a fixed
  σ = 100) holds gaussian and laplace within ±0.6 point.
- The uniform prior is the hard case: its kept weights at 90 % live in a thin shell |z| ∈ [1.56, 1.73], about
  one Adam step (lr 0.01 ≈ 0.16 RMS units) wide. Stronger anchors (`anchor_weight` 20 on 3 seeds, 30 and 100 on
  2) held its rate at 90 % within ±0.6 point but training collapsed (train accuracy 0.14–0.61, test 11–48 %);
  `kl_weight` 20 trained better (test 43–67 %) and still missed (−1.55 on one seed). The defaults favour
  accuracy, and the uniform prior can miss ±1 point at 90 %.
- MRMP: edges every 1 % (`anchor_grid: 0.01`) held every rate within 0.6 point but trained slower (train accuracy
  0.72 against 0.87); k = 2 or 4 rates per step raised the accuracy at every rate (shown here as `mrmp-k4`) at
  2–3× the cost of k = 1, still below SRMP's per-rate cost for 5 rates.
- TCMP: defaults (straight-through surrogate, τ = 0.5, σ 10 → 100) untuned beyond one run per rate.

Reading the verdicts (54 test sequences: one sequence is 1.85 points; the seed-to-seed std is mostly 3–12 points):
- Plain MP collapses above 80 % on this network (its global magnitude ranking keeps the large block filters and
  cuts the FC), so "≥ MP" is easy for every trained method; MP with 100 fine-tuning epochs (MP+FT) is the
  meaningful baseline. SRMP beats it at 90, 95 and 98 %, by 2–3 points at 90–95 % (within one std) and by 25
  points at 98 %, where MP+FT fails on 2 of 3 seeds.
- TCMP is 3 points below MP+FT at 95 % (75.3 ± 11.2 against 78.4 ± 2.8: within one std, one TCMP seed is low)
  and 33 points above it at 98 %; we report "does not hold" against MP+FT because the rule is mean ≥ mean at both
  rates. It is the only method with zero disconnected connections at every rate by construction.
- MRMP's single training (k = 1) stays 5–14 points below SRMP trained per rate at 50–95 % and 2 points below at
  98 %, for a fifth of the CPU time of SRMP's five trainings; k = 4 (three quarters of that cost) is 3–8
  points below SRMP at 50–95 % and above it at 98 %. Unseen rates match the interpolation of the seen ones (mean gap
  −0.0 and −0.7 points); above 98 % (never seen, outside the seen range) accuracy drops.

Design and reasons: [docs/methods.md](../../docs/methods.md)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    ap.add_argument("--out", default="results/methods")
    ap.add_argument(
        "--report-only", action="store_true", help="rebuild the CSVs, plots and README from OUT/runs.csv"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        meta = json.loads((out / "meta.json").read_text())
        rows = [_typed(r) for r in csv.DictReader((out / "runs.csv").open())]
        run_args = argparse.Namespace(**meta["args"], date=meta["date"])
        report(out, rows, run_args, meta["wall_s"], meta["split"], meta["commit"])
        return
    split = _data().split_hash()  # loaded once here; forked workers inherit it
    jobs = jobs_for(args.seeds, args.epochs)
    print(f"{len(jobs)} trainings, {args.jobs} workers", flush=True)
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(args.jobs) as pool:
        results = pool.map(run_job, jobs, chunksize=1)
    wall = time.perf_counter() - t0
    rows = [r for rs in results for r in rs]
    _write_csv(out / "runs.csv", rows)
    meta = {"args": vars(args), "wall_s": round(wall, 1), "split": split, "commit": _commit()}
    meta["date"] = datetime.date.today().isoformat()
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    report(out, rows, args, wall, split, meta["commit"])


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """A runs.csv row with its numbers parsed back."""
    out: dict[str, Any] = dict(row)
    for k in ("seed", "epochs", "disconnected", "seen", "path_exists"):
        out[k] = int(row[k])
    for k in ("cpu_s", "train_s", "wall_s", "rate", "accuracy", "observed_rate", "effective_rate"):
        out[k] = float(row[k])
    out["trained_rate"] = float(row["trained_rate"]) if row["trained_rate"] else ""
    return out


def report(out: Path, rows: list[dict[str, Any]], args, wall: float, split: str, commit: str) -> None:
    """Aggregates, plots and README from the per-run rows."""
    cpu = sum(_trainings(rows).values())
    agg = aggregate(rows)
    _write_csv(out / "accuracy.csv", agg)
    _write_csv(out / "fixed_vs_observed.csv", [a for a in agg if a["method"].startswith("srmp-")])
    _write_csv(out / "compute.csv", compute_rows(rows))
    plot_accuracy(agg, out / "accuracy_vs_rate.png")
    plot_fixed_vs_observed(agg, out / "fixed_vs_observed.png")
    plot_integrity(agg, out / "integrity.png")
    write_readme(out, rows, agg, args, wall, cpu, split, commit)
    print(f"wrote {out}: trainings took {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU")


if __name__ == "__main__":
    main()
