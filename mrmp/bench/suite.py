"""The whole suite: every figure of issue #7 as a ratio (or seconds, item 6), its goal, and the details.

`run_suite(quick=...)` returns a JSON-ready dict:

    figures  headline values, every one finite and positive (`FIGURE_KEYS`)
    goals    the goal of each figure that has one ("<= 1.10", ">= 0.40", "<= step_ratio.torch_prune")
    met      whether each goal holds in this run
    details  per item: absolute times, counts, settings
    machine  CPU, threads, torch, date, load average before and after

`--quick` shrinks every item (fewer rounds, epochs and trials) so that the suite runs in about a minute; its
figures are noisier, and item 6 is extrapolated from a shorter training.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .timing import loadavg, machine_info, median

FIGURE_KEYS = (
    "step_ratio.srmp",
    "step_ratio.mrmp",
    "step_ratio.tcmp",
    "step_ratio.mp_finetune",
    "step_ratio.torch_prune",
    "flops_fraction.paper",
    "curve_ratio.mrmp",
    "curve_ratio.srmp",
    "curve_ratio.tcmp",
    "curve_ratio.mp",
    "sweep_ratio",
    "sweep_trial_overhead_s",
    "sweep_to_training_s",
    "sweep_floor.to_training_s",
    "sweep_floor.ratio",
    "mrmp_over_srmp",
    "protocol_s.small_cpu",
)

GOALS = {
    "step_ratio.srmp": "<= 1.10",
    "step_ratio.mrmp": "<= 1.10",
    "step_ratio.tcmp": "<= 1.25",
    "step_ratio.mp_finetune": "<= step_ratio.torch_prune",
    "flops_fraction.paper": ">= 0.40",
    "curve_ratio.mrmp": "<= 8",
    "curve_ratio.srmp": "<= 8",
    "curve_ratio.tcmp": "<= 8",
    "curve_ratio.mp": "<= 8",
    "sweep_ratio": "<= 1.25",  # issue #10 (issue #7 had asked 1.10)
    "sweep_trial_overhead_s": "<= 0.5",
    "sweep_to_training_s": "<= 5",
    "mrmp_over_srmp": "<= 1.5",
    "protocol_s.small_cpu": "<= 60",
}


@dataclass(frozen=True)
class Settings:
    """How hard each item measures (the full suite, or `--quick`)."""

    step_rounds: int
    step_repeat: int
    flop_rounds: int
    flop_repeat: int
    gemm_n: int
    curve_rounds: int
    sweep_methods: tuple[str, ...]
    sweep_seeds: tuple[int, ...]
    sweep_epochs: int
    sweep_report_every: int
    floor_samples: int  # Ray's floor under item 4, each in a fresh process: before and after the sweep
    pair_epochs: int
    pairs: int
    protocol_epochs: int
    protocol_methods: tuple[str, ...]
    all_cores: (
        bool  # items 2 and 6 also with every core (the machine's figures); else the suite's threads only
    )


FULL = Settings(
    step_rounds=15,
    step_repeat=5,
    flop_rounds=3,
    flop_repeat=10,
    gemm_n=4096,
    curve_rounds=9,
    sweep_methods=("srmp", "mrmp", "tcmp"),
    sweep_seeds=(0, 1),
    sweep_epochs=300,
    sweep_report_every=50,
    floor_samples=2,
    pair_epochs=300,
    pairs=3,
    protocol_epochs=2700,
    protocol_methods=("mrmp", "srmp", "tcmp", "dense"),
    all_cores=True,
)
QUICK = Settings(
    step_rounds=3,
    step_repeat=2,
    flop_rounds=1,
    flop_repeat=2,
    gemm_n=2048,
    curve_rounds=2,
    sweep_methods=("srmp", "mrmp"),
    sweep_seeds=(0,),
    sweep_epochs=20,
    sweep_report_every=10,
    floor_samples=1,
    pair_epochs=30,
    pairs=1,
    protocol_epochs=60,
    protocol_methods=("mrmp",),
    all_cores=False,
)


def check_goal(goal: str, value: float, figures: dict[str, float]) -> bool:
    """Whether `value` meets `goal` ("<= 1.10", ">= 0.4", or a bound that names another figure)."""
    op, bound = goal.split()
    limit = figures[bound] if bound in figures else float(bound)
    return value <= limit if op == "<=" else value >= limit


def run_suite(
    quick: bool = False,
    threads: int = 1,
    items: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the items asked for (1..6) and gather their figures (see the module docstring)."""
    from mrmp.config import DataConfig
    from mrmp.train import prepare_data

    from .curve import curve_ratios
    from .rayfloor import ray_floor
    from .steps import flop_fraction, step_ratios
    from .sweep import sweep_overhead
    from .training import mrmp_over_srmp, protocol_time

    s = QUICK if quick else FULL
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"quick": quick, "machine": machine_info(threads), "figures": {}, "details": {}}
    fig, det = out["figures"], out["details"]
    data = prepare_data(DataConfig(name="synthetic-sbu", fold=1))

    def item(n: int, title: str) -> bool:
        if n in items:
            log(f"[{time.perf_counter() - t_start:6.1f} s] item {n}: {title}")
        return n in items

    if item(1, "train step of each method ÷ dense step"):
        r = step_ratios(data, "small", threads, s.step_rounds, s.step_repeat)
        det["step"] = r
        fig.update({f"step_ratio.{k}": v for k, v in r["ratios"].items()})
    cores = os.cpu_count() or 1
    thread_counts = sorted({threads, cores}) if s.all_cores else [threads]
    if item(2, "FLOP/s of a paper-preset step ÷ GEMM peak"):
        runs = {}
        for n in thread_counts:
            torch.set_num_threads(n)
            runs[n] = flop_fraction(data, "paper", n, s.flop_repeat, s.gemm_n, s.flop_rounds)
        torch.set_num_threads(threads)
        det["flops"] = {"by_threads": runs, "headline_threads": thread_counts[-1]}
        fig["flops_fraction.paper"] = runs[thread_counts[-1]]["fraction"]  # every core: the machine's peak
    if item(3, "50-rate curve ÷ one dense evaluation"):
        r = curve_ratios(data, "small", threads, s.curve_rounds)
        det["curve"] = r
        fig.update({f"curve_ratio.{k}": v for k, v in r["ratios"].items()})
    if item(4, "sweep wall ÷ (Σ trial training times ÷ 2)"):
        floors = [ray_floor() for _ in range(s.floor_samples // 2)]
        r = sweep_overhead(list(s.sweep_methods), list(s.sweep_seeds), s.sweep_epochs, s.sweep_report_every)
        floors += [ray_floor() for _ in range(s.floor_samples - len(floors))]
        det["sweep"] = r
        det["sweep_floor"] = floor = sweep_floor(floors, r)
        fig["sweep_ratio"] = r["ratio"]
        fig["sweep_trial_overhead_s"] = r["median_trial_overhead_s"]
        fig["sweep_to_training_s"] = r["train_start_s"]
        fig["sweep_floor.to_training_s"] = floor["task_s"]
        fig["sweep_floor.ratio"] = floor["ratio"]
        torch.set_num_threads(threads)  # the sweep's Ray may have changed the driver's environment
    if item(5, "MRMP training (whole curve) ÷ one SRMP training"):
        r = mrmp_over_srmp(data, s.pair_epochs, "small", threads, s.pairs)
        det["mrmp_over_srmp"] = r
        fig["mrmp_over_srmp"] = r["ratio"]
    if item(6, "one 2700-epoch training, small preset on the CPU"):
        runs = {}
        for n in thread_counts:  # every method with every core; the headline method alone otherwise
            torch.set_num_threads(n)
            methods = s.protocol_methods if n == thread_counts[-1] else s.protocol_methods[:1]
            runs[n] = protocol_time(methods, s.protocol_epochs, "small", n)
        torch.set_num_threads(threads)
        best = min(runs, key=lambda n: runs[n]["wall_s"])
        det["protocol_small_cpu"] = {**runs[best], "by_threads": runs, "headline_threads": best}
        fig["protocol_s.small_cpu"] = runs[best]["wall_s"]  # train.threads is a config key: the faster count
        if torch.cuda.is_available():
            det["protocol_paper_gpu"] = protocol_time(("mrmp",), s.protocol_epochs, "paper", 0, "cuda")
        else:
            det["protocol_paper_gpu"] = "not measured: no GPU on this machine"
    out["goals"] = {k: g for k, g in GOALS.items() if k in fig}
    out["met"] = {k: check_goal(g, fig[k], fig) for k, g in out["goals"].items() if _finite(fig.get(k))}
    out["machine"]["loadavg_1min_after"] = loadavg()
    out["elapsed_s"] = time.perf_counter() - t_start
    return out


def sweep_floor(samples: list[dict[str, Any]], sweep: dict[str, Any]) -> dict[str, Any]:
    """Item 4 against Ray's own floor (`rayfloor`): the earliest any sweep on a local Ray could train (`task_s`),
    the sweep ratio of a sweep that added nothing to Ray's start and stop (`ratio`: Σ training ÷ concurrency,
    plus `task_s` and `shutdown_s`, over Σ training ÷ concurrency), and what this sweep adds to its start."""
    task = median([f["task_s"] for f in samples])
    shutdown = median([f["shutdown_s"] for f in samples])
    ideal = sweep["sum_train_s"] / sweep["concurrency"]
    return {
        "samples": samples,
        "task_s": task,
        "shutdown_s": shutdown,
        "ratio": (ideal + task + shutdown) / ideal,
        "to_training_above_floor_s": sweep["train_start_s"] - task
        if sweep["train_start_s"] is not None
        else None,
    }


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def format_table(result: dict[str, Any]) -> str:
    """The figures, their goals and whether each is met, as aligned text."""
    lines = [f"{'figure':<26} {'value':>10}  {'goal':<26} met"]
    for k, v in result["figures"].items():
        goal = result["goals"].get(k, "")
        met = result["met"].get(k)
        mark = "" if met is None else ("yes" if met else "NO")
        value = f"{v:10.3f}" if _finite(v) else f"{v!s:>10}"
        lines.append(f"{k:<26} {value}  {goal:<26} {mark}")
    m = result["machine"]
    lines.append(
        f"machine: {m['cpu']}, {m['cores']} cores, {m['threads']} torch thread(s), torch {m['torch']}; "
        f"load {m['loadavg_1min_before']} -> {m.get('loadavg_1min_after')}; {result['elapsed_s']:.0f} s"
    )
    return "\n".join(lines)
