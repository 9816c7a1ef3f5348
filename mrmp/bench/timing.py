"""Timing helpers: interleaved rounds and median ratios, the machine's GEMM peak, what the machine looked like.

Every figure of the suite is a ratio of two timings taken in the same process, interleaved round by round
(A, B, C, A, B, C, ...), so that a change of load on a shared machine hits numerator and denominator alike;
a ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping

import torch

from mrmp.provenance import git_commit


def loadavg() -> float | None:
    """The 1-minute load average (None where the OS does not tell)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, object]:
    """Where and when the suite ran: host, CPU, cores, torch build, threads used, load before starting."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_1min_before": loadavg(),
        "code": dict(zip(("commit", "dirty"), git_commit())),
    }


def time_call(fn: Callable[[], object], repeat: int = 1) -> float:
    """Seconds per call of `fn`, averaged over `repeat` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def interleaved(
    fns: Mapping[str, Callable[[], object]], rounds: int, repeat: int = 1, warmup: int = 2
) -> dict[str, list[float]]:
    """Per-call seconds of every function in every round, the functions taking turns within a round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            out[k].append(time_call(fn, repeat))
    return out


def median_ratio(times: Mapping[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of times[num][i] / times[den][i]."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def gemm_peak(n: int = 4096, repeat: int = 5) -> float:
    """This machine's fp32 GEMM rate in FLOP/s: the best of `repeat` (n × n) @ (n × n) `torch.mm` calls, with
    torch's current thread count (best, not median: a peak is what the hardware can do when nothing interferes)."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)  # warm-up: MKL's buffers, the threads
    best = min(time_call(lambda: torch.mm(a, b)) for _ in range(repeat))
    return 2.0 * n**3 / best
