"""Items 5 and 6: whole trainings through `mrmp.train.run` (train, then the full default evaluation curve).

- Item 5: one MRMP training, which gives the whole curve, against one SRMP training (one rate), same epochs.
- Item 6: the wall time of one paper-protocol training (2700 epochs) on synthetic SBU fold 1, data preparation
  included; `--quick` trains fewer epochs and extrapolates the training part linearly (marked as such).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from mrmp.config import DataConfig, load_config
from mrmp.train import PreparedData, prepare_data, run

from .timing import median

PROTOCOL_EPOCHS = 2700


def _cfg(method: str, epochs: int, preset: str, threads: int, device: str = "cpu") -> Any:
    return load_config(
        None,
        [
            f"method.name={method}",
            f"model.preset={preset}",
            f"train.epochs={epochs}",
            f"train.threads={threads}",
            f"train.device={device}",
        ],
    )


def timed_run(method: str, data: PreparedData, epochs: int, preset: str, threads: int) -> dict[str, float]:
    """One `run()` (no outputs written): its setup, train and eval seconds as the run itself measures them."""
    s = run(_cfg(method, epochs, preset, threads), data).summary
    return {k: s[f"{k}_s"] for k in ("setup_time", "train_time", "eval_time", "wall_time")}


def mrmp_over_srmp(
    data: PreparedData, epochs: int = 300, preset: str = "small", threads: int = 1, pairs: int = 3
) -> dict[str, Any]:
    """Item 5: median over `pairs` alternating runs of (MRMP run ÷ SRMP run), each timed train + eval."""
    ratios, mrmp_s, srmp_s = [], [], []
    for _ in range(pairs):
        a = timed_run("mrmp", data, epochs, preset, threads)
        b = timed_run("srmp", data, epochs, preset, threads)
        mrmp_s.append(a["train_time"] + a["eval_time"])
        srmp_s.append(b["train_time"] + b["eval_time"])
        ratios.append(mrmp_s[-1] / srmp_s[-1])
    return {
        "ratio": median(ratios),
        "mrmp_s": median(mrmp_s),
        "srmp_s": median(srmp_s),
        "epochs": epochs,
        "pairs": pairs,
    }


def protocol_time(
    methods: tuple[str, ...] = ("mrmp",),
    epochs: int = PROTOCOL_EPOCHS,
    preset: str = "small",
    threads: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """Item 6: wall seconds of one 2700-epoch training per method (data preparation, setup, training, the
    51-rate curve). With `epochs` < 2700 the training time is scaled by 2700 / epochs ("extrapolated")."""
    out: dict[str, Any] = {"epochs_run": epochs, "extrapolated": epochs != PROTOCOL_EPOCHS, "preset": preset}
    out["device"] = device
    per: dict[str, dict[str, float]] = {}
    for m in methods:
        t0 = time.perf_counter()
        data = prepare_data(DataConfig(name="synthetic-sbu", fold=1))
        prep = time.perf_counter() - t0
        cfg = _cfg(m, epochs, preset, threads, device)
        s = run(cfg, data).summary
        train = s["train_time_s"] * PROTOCOL_EPOCHS / epochs
        per[m] = {
            "data_s": prep,
            "setup_s": s["setup_time_s"],
            "train_s": train,
            "eval_s": s["eval_time_s"],
            "wall_s": prep + s["setup_time_s"] + train + s["eval_time_s"],
            "ms_per_epoch": 1e3 * s["train_time_s"] / epochs,
        }
    out["methods"] = per
    out["wall_s"] = per[methods[0]]["wall_s"]
    out["headline_method"] = methods[0]
    out["threads"] = threads if device == "cpu" else None
    out["cuda"] = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return out
