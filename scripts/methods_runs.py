"""Train every configuration of a methods protocol over its datasets, folds and seeds with `mrmp.train.run`, and
write one CSV row per (configuration, dataset, fold, seed, rate).

The protocol (results/methods/protocol.yaml) is data: a base run config, the datasets with their folds and seeds,
and the configurations (a label, the `method.*` keys, optional overrides of other sections). This script only
loops and records: no worker pool, no resume, no tracking. Two shards (`--shard 0/2`, `--shard 1/2`) can run as
two processes, each writing its own CSV; `scripts/methods_tables.py` reads them all.

    python scripts/methods_runs.py results/methods/protocol.yaml --shard 0/2 --out results/methods/runs-0.csv
    python scripts/methods_runs.py results/methods/protocol.yaml --cost --out results/methods/runs-cost.csv
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from mrmp.config import config_from_dict
from mrmp.train import PreparedData, prepare_data, run

COLUMNS = [
    "label",
    "dataset",
    "fold",
    "seed",
    "rate",
    "seen",
    "val_accuracy",
    "test_accuracy",
    "observed_rate",
    "effective_rate",
    "disconnected",
    "path_exists",
    "train_accuracy",
    "epochs",
    "cpu_s",
    "train_cpu_s",
    "wall_s",
    "diverged",
    "commit",
]


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, section by section (one level deep, as run configs are)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for k, v in over.items():
        out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
    return out


def jobs(protocol: dict[str, Any], by_run: bool = False) -> list[dict[str, Any]]:
    """(label, raw run config, dataset, fold, seed) for every configuration × dataset × fold × seed: in the
    protocol's order of configurations (an interrupted protocol has whole configurations), or, `by_run`, every
    configuration of one dataset, fold and seed after the other (what a cost comparison wants: the machine's
    load drifts over time, and the configurations it compares then run side by side)."""
    out = []
    for c in protocol["configs"]:
        for ds in protocol["datasets"]:
            if c.get("datasets") and ds["name"] not in c["datasets"]:
                continue
            for fold in ds["folds"]:
                for seed in ds["seeds"]:
                    raw = merge(protocol.get("base", {}), {k: v for k, v in c.items() if k in SECTIONS})
                    raw = merge(raw, {"data": {"name": ds["name"], "fold": fold}, "train": {"seed": seed}})
                    out.append(
                        {"label": c["label"], "raw": raw, "dataset": ds["name"], "fold": fold, "seed": seed}
                    )
    if by_run:
        names = [d["name"] for d in protocol["datasets"]]
        out.sort(key=lambda j: (j["seed"], names.index(j["dataset"]), j["fold"]))  # stable: configs in order
    return out


SECTIONS = ("data", "model", "method", "train", "eval")


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "mrmp"], capture_output=True, text=True
        ).stdout
        return head.stdout.strip() + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("protocol", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="CSV to write (replaced)")
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th job from the i-th")
    ap.add_argument("--only", nargs="*", default=None, help="labels to run (default: all)")
    ap.add_argument("--list", action="store_true", help="print the jobs and exit")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="only these seeds of the protocol")
    ap.add_argument(
        "--cost",
        action="store_true",
        help="run the protocol's `cost` section instead (its configurations side by side, run by run)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a key of every run (YAML value), e.g. --set train.epochs=3 for a smoke run",
    )
    args = ap.parse_args(argv)
    protocol = yaml.safe_load(args.protocol.read_text())
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        protocol.setdefault("base", {}).setdefault(section, {})[name] = yaml.safe_load(value)
    index, count = (int(x) for x in args.shard.split("/"))
    if args.cost:
        protocol = {**protocol, **protocol["cost"]}
    todo = jobs(protocol, by_run=args.cost)
    todo = [
        j
        for j in todo
        if (args.only is None or j["label"] in args.only) and (args.seeds is None or j["seed"] in args.seeds)
    ][index::count]
    if args.list:
        for j in todo:
            print(j["label"], j["dataset"], j["fold"], j["seed"])
        return 0
    torch.set_num_threads(1)
    code = commit()
    data: dict[tuple[str, int], PreparedData] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for n, job in enumerate(todo, 1):
            cfg = config_from_dict(job["raw"], source=f"{args.protocol}:{job['label']}")
            key = (job["dataset"], job["fold"])
            if key not in data:
                data[key] = prepare_data(cfg.data)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            trained_at = [cpu0]  # process CPU time at the end of the last epoch: the training's cost

            def mark(_event: object, at: list[float] = trained_at) -> None:
                at[0] = time.process_time()

            result = run(cfg, data[key], callback=mark)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            history = result.trainer.history
            for p in result.curve:
                writer.writerow(
                    {
                        "label": job["label"],
                        "dataset": job["dataset"],
                        "fold": job["fold"],
                        "seed": job["seed"],
                        "rate": f"{p.rate:.4f}",
                        "seen": p.seen,
                        "val_accuracy": "" if p.val_accuracy is None else f"{p.val_accuracy:.6f}",
                        "test_accuracy": f"{p.test_accuracy:.6f}",
                        "observed_rate": f"{p.observed_rate:.6f}",
                        "effective_rate": f"{p.effective_rate:.6f}",
                        "disconnected": p.disconnected,
                        "path_exists": int(p.path_exists),
                        "train_accuracy": f"{history[-1]['train_accuracy']:.4f}" if history else "",
                        "epochs": result.trainer.epoch,
                        "cpu_s": f"{cpu:.2f}",
                        "train_cpu_s": f"{trained_at[0] - cpu0:.2f}",
                        "wall_s": f"{wall:.2f}",
                        "diverged": result.trainer.diverged or "",
                        "commit": code,
                    }
                )
            f.flush()
            print(
                f"[{n}/{len(todo)}] {job['label']} {job['dataset']} fold {job['fold']} seed {job['seed']}: "
                f"cpu {cpu:.1f}s ({time.perf_counter() - t_start:.0f}s so far)",
                flush=True,
            )
    print(f"machine {platform.machine()} {platform.processor()} torch {torch.__version__} commit {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
