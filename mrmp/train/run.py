"""`run(cfg)`: the one training entry point (what `mrmp train` and every sweep trial call).

With `out_dir` it writes `config.yaml` (resolved), `curve.csv`, `summary.json` and `model.pt`, each atomically
(temp file + rename), so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import mrmp
from mrmp.config import DataConfig, RunConfig, config_from_dict, dump_config
from mrmp.model import parameter_table

from .data import PreparedData, prepare_data
from .evaluate import CURVE_COLUMNS, CurvePoint
from .loop import EpochEvent, Trainer


@dataclass
class RunResult:
    config: RunConfig
    curve: list[CurvePoint]
    summary: dict[str, Any]
    trainer: Trainer


def curve_summary(curve: list[CurvePoint], target: float | None) -> dict[str, float | None]:
    """Headline accuracies of a curve, validation and test apart: at rate 0, at the target rate, and the means
    over the pruned rates that training targeted (seen) and did not (unseen)."""
    by_rate = {round(p.rate, 6): p for p in curve}
    out: dict[str, float | None] = {}
    for split in ("val", "test"):
        acc = f"{split}_accuracy"

        def mean(points: list[CurvePoint], acc: str = acc) -> float | None:
            values = [getattr(p, acc) for p in points if getattr(p, acc) is not None]
            return sum(values) / len(values) if values else None

        at_target = by_rate.get(round(target, 6)) if target is not None else None
        out[f"{split}_dense_accuracy"] = getattr(by_rate[0.0], acc) if 0.0 in by_rate else None
        out[f"{split}_accuracy_at_target"] = getattr(at_target, acc) if at_target is not None else None
        out[f"{split}_mean_seen_accuracy"] = mean([p for p in curve if p.seen and p.rate > 0])
        out[f"{split}_mean_unseen_accuracy"] = mean([p for p in curve if not p.seen and p.rate > 0])
    return out


def summarize(cfg: RunConfig, trainer: Trainer, curve: list[CurvePoint], timings: dict[str, float]) -> dict:
    """summary.json: headline accuracies, parameter counts, timings, device, provenance."""
    table = parameter_table(trainer.model)
    return {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "split": trainer.data.split,
        "sizes": {
            "train": len(trainer.data.y_train),
            "val": len(trainer.data.y_val),
            "test": len(trainer.data.y_test),
        },
        "target_rate": cfg.method.rate,
        **curve_summary(curve, cfg.method.rate),
        "max_disconnected": max((p.disconnected for p in curve), default=0),
        "diverged": trainer.diverged,
        "final_loss": trainer.history[-1]["loss"] if trainer.history else None,
        "epochs": trainer.epoch,
        "params": {
            "total": sum(r["params"] for r in table),
            "prunable": sum(r["params"] for r in table if r["prunable"]),
            "layers": table,
        },
        "device": str(trainer.device),
        "device_name": torch.cuda.get_device_name(trainer.device)
        if trainer.device.type == "cuda"
        else platform.processor() or platform.machine(),
        **{f"{k}_s": round(v, 3) for k, v in timings.items()},
        "config_hash": cfg.hash(),
        "split_hash": trainer.data.split_hash(),
        "versions": {
            "mrmp": mrmp.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }


_FLOAT_COLUMNS = ("rate", "val_accuracy", "test_accuracy", "observed_rate", "effective_rate")


def curve_csv(curve: list[CurvePoint]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    w.writeheader()
    for p in curve:
        row = p.row()
        row.update({k: "" if row[k] is None else f"{row[k]:.6f}" for k in _FLOAT_COLUMNS})
        w.writerow(row)
    return buf.getvalue()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_outputs(out_dir: str | Path, result: RunResult) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "config.yaml", lambda p: dump_config(result.config, p))
    _atomic_write(out / "curve.csv", lambda p: p.write_text(curve_csv(result.curve)))
    _atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(result.summary, indent=2) + "\n"))
    t = result.trainer
    blob = {"model": t.model.state_dict(), "method": t.method.state_dict(), "config": result.config.to_dict()}
    _atomic_write(out / "model.pt", lambda p: torch.save(blob, p))


def run(
    cfg: RunConfig,
    data: PreparedData | None = None,
    out_dir: str | Path | None = None,
    callback: Callable[[EpochEvent], None] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> RunResult:
    """Train `cfg` on `data` (prepared from `cfg.data` when None), evaluate its curve, optionally write outputs.

    A training that diverges (`result.trainer.diverged`) stops there and writes nothing."""
    t0 = time.perf_counter()
    data = data if data is not None else prepare_data(cfg.data)
    trainer = Trainer(cfg, data)
    if resume_state is not None:
        trainer.load_state(resume_state)
    t1 = time.perf_counter()
    trainer.fit(callback)
    t2 = time.perf_counter()
    curve = trainer.evaluate()
    t3 = time.perf_counter()
    timings = {"setup_time": t1 - t0, "train_time": t2 - t1, "eval_time": t3 - t2, "wall_time": t3 - t0}
    result = RunResult(cfg, curve, summarize(cfg, trainer, curve, timings), trainer)
    if out_dir is not None and trainer.diverged is None:  # a diverged network is not worth a file
        write_outputs(out_dir, result)
    return result


def load_run(run_dir: str | Path, data: PreparedData | None = None, device: str = "cpu") -> Trainer:
    """Rebuild a trained model and method from `run_dir/model.pt` (loaded with weights_only=True)."""
    blob = torch.load(Path(run_dir) / "model.pt", map_location=device, weights_only=True)
    cfg = config_from_dict(blob["config"], source=str(Path(run_dir) / "model.pt"))
    return restore_trainer(blob, cfg, data, device)


def restore_trainer(
    blob: dict[str, Any],
    cfg: RunConfig,
    data: PreparedData | None = None,
    device: str = "cpu",
    prepare: Callable[[DataConfig], PreparedData] | None = None,
) -> Trainer:
    """A trained Trainer from a checkpoint's model and method states (`cfg` already read from it); its data is
    `data`, else `prepare(cfg.data)` (default: `prepare_data`; a caller holding the data passes a lookup)."""
    cfg.train.device = device
    data = data if data is not None else (prepare or prepare_data)(cfg.data)
    trainer = Trainer(cfg, data)
    trainer.model.load_state_dict(blob["model"])
    trainer.method.load_state_dict(blob["method"])
    trainer.epoch = cfg.train.epochs
    return trainer
