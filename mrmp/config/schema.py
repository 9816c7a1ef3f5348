"""The typed run config: what `mrmp train` reads, what a sweep's base config is, what `export` writes.

Every key has a default, so an empty config runs (synthetic SBU, small GCN, dense). Method-specific keys
(`method.prior`, `method.seen_rates`, ...) are the fields of the chosen method's `Params` dataclass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from mrmp.data.registry import DATASETS, dataset_names
from mrmp.methods import registry
from mrmp.validation import Reporter, build, spec, suggest


def default_rates() -> list[float]:
    """0 (the dense network) and 0.50, 0.51, ..., 0.99."""
    return [0.0] + [round(0.5 + i / 100, 2) for i in range(50)]


@dataclass
class DataConfig:
    name: str = field(default="synthetic-sbu", metadata=spec(choices=dataset_names, help="dataset"))
    root: str | None = field(default=None, metadata=spec(help="dataset directory (required for sbu/fpha)"))
    fold: int = field(default=1, metadata=spec(ge=1, le=5, help="SBU fold 1..5 held out; FPHA: 1 (official)"))
    seed: int = field(default=0, metadata=spec(help="synthetic generator seed"))
    val_fraction: float = field(
        default=0.2,
        metadata=spec(
            ge=0.0,
            lt=1.0,
            help="share of each class of the training split held out for validation, where sweeps select; "
            "0 = none (test only, nothing to select on)",
        ),
    )
    val_seed: int = field(default=0, metadata=spec(help="seed of the validation draw (stratified by class)"))
    chunks: int = field(default=4, metadata=spec(ge=1, le=64, help="temporal chunks per trajectory"))
    center: bool = field(default=True, metadata=spec(help="subtract the first frame's reference joint"))
    scale: bool | None = field(
        default=None,
        metadata=spec(
            help="divide by the mean bone length; null = auto (on for FPHA's millimetres, off for SBU)"
        ),
    )


@dataclass
class ModelConfig:
    preset: str = field(default="small", metadata=spec(choices=("small", "paper"), help="GCN size"))
    blocks: int | None = field(default=None, metadata=spec(ge=1, le=16, help="override: attention+GC blocks"))
    heads: int | None = field(default=None, metadata=spec(ge=1, le=64, help="override: attention heads"))
    filters: int | None = field(default=None, metadata=spec(ge=1, le=4096, help="override: filters per head"))
    key_dim: int | None = field(
        default=None, metadata=spec(ge=1, le=1024, help="override: attention key size")
    )
    fc: int | None = field(default=None, metadata=spec(ge=1, le=65536, help="override: FC width"))


@dataclass
class TrainConfig:
    """The training recipe (docs/training.md says why each default is what it is, with the measured figures).

    The learning rate of epoch e of a phase is `lr · warm-up(e) · schedule(e)`, times the adaptive factor when
    `adaptive_lr` is on; each phase (e.g. MP's fine-tuning) restarts the warm-up and the schedule."""

    epochs: int = field(default=300, metadata=spec(ge=0, help="epochs of the main phase"))
    batch_size: int = field(
        default=96,
        metadata=spec(
            ge=0,
            help="samples per step, reshuffled each epoch (seeded); 0 or ≥ the training set = one full-batch "
            "step per epoch",
        ),
    )
    lr: float = field(default=0.01, metadata=spec(gt=0, help="Adam learning rate (peak of the schedule)"))
    lr_schedule: str = field(
        default="constant",
        metadata=spec(
            choices=("constant", "cosine", "linear"),
            help="after the warm-up, per epoch: constant, or cosine / linear decay from lr to lr·lr_floor "
            "over the rest of the phase",
        ),
    )
    lr_warmup_epochs: int = field(
        default=10,
        metadata=spec(ge=0, help="epochs of linear warm-up from lr/warm-up to lr at each phase start"),
    )
    lr_floor: float = field(
        default=0.0, metadata=spec(ge=0.0, le=1.0, help="the decay's end, as a fraction of lr")
    )
    seed: int = field(default=0, metadata=spec(help="init / batching / rate sampling seed"))
    adaptive_lr: bool = field(default=False, metadata=spec(help="x0.99 when the loss rises, /0.99 otherwise"))
    weight_decay: float = field(default=0.0, metadata=spec(ge=0, help="Adam's L2 penalty on every weight"))
    label_smoothing: float = field(
        default=0.1,
        metadata=spec(ge=0.0, lt=1.0, help="cross-entropy target smoothing (0 = one-hot targets)"),
    )
    ema_decay: float = field(
        default=0.0,
        metadata=spec(
            ge=0.0,
            lt=1.0,
            help="evaluate an exponential moving average of the weights, updated after every step with this "
            "decay, ramped up as (1 + t)/(10 + t) over the first steps (0.99 is reached after 890 steps, 0.995 "
            "after 1790: a shorter training never reaches it) (0 = off: the last weights)",
        ),
    )
    device: str = field(default="auto", metadata=spec(help="auto (CUDA when present), cpu, cuda, cuda:N"))
    threads: int = field(default=0, metadata=spec(ge=0, help="torch CPU threads; 0 = torch's default"))


@dataclass
class EvalConfig:
    rates: list[float] = field(
        default_factory=default_rates, metadata=spec(ge=0.0, lt=1.0, help="pruning rates evaluated")
    )


@dataclass
class MethodConfig:
    """`name` picks the method; `params` is that method's own typed Params (its keys sit beside `name`)."""

    name: str = "dense"
    params: Any = None

    @property
    def rate(self) -> float | None:
        return getattr(self.params, "rate", None)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (method params flattened beside `name`): YAML-ready and re-loadable."""
        out = {s: dataclasses.asdict(getattr(self, s)) for s in ("data", "model", "train", "eval")}
        method = {"name": self.method.name}
        if self.method.params is not None:
            method.update(dataclasses.asdict(self.method.params))
        return {
            "data": out["data"],
            "model": out["model"],
            "method": method,
            "train": out["train"],
            "eval": out["eval"],
        }

    def flat(self) -> dict[str, Any]:
        """Dotted keys -> values (lists as JSON): MLflow params, config hashes."""
        flat: dict[str, Any] = {}
        for section, values in self.to_dict().items():
            for k, v in values.items():
                flat[f"{section}.{k}"] = json.dumps(v) if isinstance(v, list) else v
        return flat

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}


def build_run_config(raw: Any, rep: Reporter) -> RunConfig:
    """Validate a raw mapping into a RunConfig; every problem goes to `rep`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        rep.add("", f"the top level must be a mapping of sections, got {type(raw).__name__}")
        raw = {}
    known = [*SECTIONS, "method"]
    for key in raw:
        if key not in known:
            rep.add(str(key), f"unknown section{suggest(str(key), known)}; sections: {', '.join(known)}")
    sections = {name: build(cls, raw.get(name), name, rep) for name, cls in SECTIONS.items()}

    method_raw = raw.get("method") or {}
    if not isinstance(method_raw, dict):
        rep.add("method", f"must be a mapping, got {type(method_raw).__name__}")
        method_raw = {}
    name = method_raw.get("name", "dense")
    names = registry.names()
    if name not in names:
        hint = suggest(str(name), names)
        rep.add("method.name", f"unknown method '{name}'{hint}; choose one of: {', '.join(names)}")
        method = MethodConfig(name=str(name), params=None)
    else:
        params_cls = registry.get(name).Params
        params = build(params_cls, {k: v for k, v in method_raw.items() if k != "name"}, "method", rep)
        method = MethodConfig(name=name, params=params)
        check = getattr(params, "check", None)
        if check is not None:
            check(rep, sections["eval"])
    cfg = RunConfig(method=method, **sections)
    _cross_checks(cfg, rep)
    return cfg


def _cross_checks(cfg: RunConfig, rep: Reporter) -> None:
    rates = cfg.eval.rates
    if not rates:
        rep.add("eval.rates", "must list at least one rate")
    elif any(b <= a for a, b in zip(rates, rates[1:])):
        rep.add("eval.rates", "must be strictly increasing")
    entry = DATASETS.get(cfg.data.name)
    if entry is None:
        return  # already reported as an unknown dataset
    if entry.needs_root and not cfg.data.root:
        rep.add("data.root", f"is required for data.name={cfg.data.name} (the dataset directory)")
    if cfg.data.fold > entry.folds:
        rep.add(
            "data.fold",
            f"{cfg.data.name} has {entry.folds} fold{'s' if entry.folds > 1 else ''} ({entry.protocol}): "
            f"use {'1' if entry.folds == 1 else f'1..{entry.folds}'}",
        )
