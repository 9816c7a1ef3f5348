"""A trained network pruned at one rate, on disk in a file whose size follows its sparsity.

`write_network(trainer, path, rate)` bakes the method's hard mask at `rate` into the prunable weights and writes
them sparse; `load_network(path)` rebuilds a plain `AttentionGCN` (pruned weights are exact zeros, no method
needed) whose logits are the trainer's masked evaluation at that rate. `export_run(source, path, rate)` does
both steps from a `mrmp train` output folder or its `model.pt` (the blob every sweep trial also logs).

Which rates: a network read at any rate (`trained_rates(params)` is None: MRMP, MP without fine-tuning,
random) can be written at any rate in [0, 1); a single-rate network (SRMP, TCMP, MP with fine-tuning, dense)
only at the rate it was trained for.

The file is a plain dict of tensors, strings and numbers (`torch.load(..., weights_only=True)` reads it).
Each prunable matrix is stored in whichever of three encodings is smallest for its number n of weights and k
of kept ones (float32 values, the kept ones in row-major order):

- `dense`: all n values, 4n bytes (wins at low rates);
- `bitmask`: the mask packed 8 weights a byte, then the k kept values: n/8 + 4k bytes (wins from ~3 % up to
  ~94 % pruned);
- `positions`: the k flat positions as int16 (int32 beyond 32,768 weights), then the values: 6k (8k) bytes
  (wins above ~94 % (~97 %) pruned, where the bitmask's fixed n/8 dominates).

A bitmask plus values is the simplest form that is small over the rates people prune at, and decoding it is one
indexing operation; positions take over at extreme sparsity. CSR's row pointers would buy nothing here: the
prunable matrices are few and small, and inference rebuilds them dense anyway. The other parameters (attention
projections, biases, classifier) are stored dense, and the adjacency as 0/1 bytes; the pruned network's unit
gates are baked into them (`AttentionGCN.pruned_state`: a disconnected unit's bias and attention reads are 0), so
the plain forward of the rebuilt module is the masked one.
"""

from __future__ import annotations

import io
import math
import pickle
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import mrmp
from mrmp.config import DataConfig, RunConfig, config_from_dict
from mrmp.methods import registry
from mrmp.model import AttentionGCN
from mrmp.validation import ConfigError, Issue

from .data import PreparedData, prepare_data
from .loop import Trainer
from .run import _atomic_write, restore_trainer

FORMAT = "mrmp.pruned-network"
FORMAT_VERSION = 1
ENCODINGS = ("dense", "bitmask", "positions")
_RATE_MATCH = 1e-6  # a requested rate equals a trained one within this


@dataclass(frozen=True)
class NetworkInfo:
    """What a network file says about itself (stored in it as a plain dict)."""

    method: str
    rate: float  # the pruning rate the mask was taken at
    trained_rates: list[float] | None  # the source network's trained rates; None: it was read at any rate
    dataset: str  # data.name it was trained and scored on (synthetic-* is never the real dataset)
    split: str
    class_names: list[str]
    val_accuracy: float | None  # at `rate`, on the run's validation split (None without one)
    test_accuracy: float  # at `rate`, on the test split
    observed_rate: float
    effective_rate: float
    disconnected: int
    kept: int  # prunable weights kept
    prunable: int  # prunable weights in all
    nonzero: int  # non-zero parameters, prunable or not
    params: int  # parameters in all
    encodings: dict[str, str]  # per prunable matrix: dense | bitmask | positions
    mrmp_version: str


@dataclass(frozen=True)
class NetworkFile:
    """A network file on disk: where, how many bytes, and its `NetworkInfo`."""

    path: Path
    bytes: int
    info: NetworkInfo


@dataclass
class LoadedNetwork:
    """A network file read back: the module (eval mode, pruned weights baked in as zeros), its info and the
    config of the run that trained it (its `data` section says where the network's inputs come from)."""

    module: AttentionGCN
    info: NetworkInfo
    config: RunConfig
    path: Path
    bytes: int


# --- rates ---------------------------------------------------------------------------------------------------


def resolve_rate(method: str, params: Any, rate: float | None, source: str = "<network>") -> float:
    """The rate to write a `method` network at: `rate`, checked against what the method allows, or (None) its
    single trained rate. Raises ConfigError (key `rate`) with a message that says what is allowed."""
    trained = registry.get(method).trained_rates(params)
    if rate is None:
        if trained is not None and len(trained) == 1:
            return float(trained[0])
        raise ConfigError(
            [Issue(source, "rate", f"a {method} network is read at any rate: choose one, e.g. --rate 0.9")]
        )
    if not 0.0 <= rate < 1.0:
        raise ConfigError([Issue(source, "rate", f"must be in [0, 1), got {rate}")])
    if trained is None:
        return float(rate)
    for t in trained:
        if abs(rate - t) <= _RATE_MATCH:
            return float(t)
    allowed = ", ".join(f"{t:g}" for t in trained)
    raise ConfigError(
        [
            Issue(
                source,
                "rate",
                f"a {method} network is trained for rate {allowed} only, not {rate:g}; write it at {allowed}, "
                "or train it for that rate (an MRMP network can be written at any rate)",
            )
        ]
    )


# --- encoding ------------------------------------------------------------------------------------------------


def _encoding_sizes(n: int, k: int, value_bytes: int) -> dict[str, int]:
    pos_bytes = 2 if n <= 2**15 else 4
    return {
        "dense": value_bytes * n,
        "bitmask": math.ceil(n / 8) + value_bytes * k,
        "positions": (pos_bytes + value_bytes) * k,
    }


def encode_weight(weight: Tensor, mask: Tensor) -> dict[str, Any]:
    """One prunable matrix with its mask's zeros baked in, in the smallest of the three encodings. A mask may
    carry values other than 1 where it keeps (MRMP's per-rate gains): those are expected already in `weight`
    (`AttentionGCN.pruned_state`), and only where the mask is 0 counts here."""
    keep = mask.detach().reshape(-1) != 0
    w = (weight.detach().reshape(-1) * keep.to(weight.dtype)).to("cpu")
    keep = keep.to("cpu")
    n, k = w.numel(), int(keep.sum())
    sizes = _encoding_sizes(n, k, w.element_size())
    encoding = min(ENCODINGS, key=lambda e: sizes[e])  # ties: the first listed
    entry: dict[str, Any] = {"shape": list(weight.shape), "encoding": encoding}
    if encoding == "dense":
        entry["values"] = w.clone()
        return entry
    entry["values"] = w[keep].clone()  # row-major order of the kept weights
    if encoding == "bitmask":
        entry["bits"] = torch.from_numpy(np.packbits(keep.numpy()))
    else:
        dtype = torch.int16 if n <= 2**15 else torch.int32
        entry["positions"] = keep.nonzero().reshape(-1).to(dtype)
    return entry


def decode_weight(entry: dict[str, Any], source: str = "<network>", name: str = "") -> Tensor:
    """The dense matrix of one encoded entry (zeros where pruned). ConfigError if the entry is inconsistent."""
    shape = tuple(int(s) for s in entry["shape"])
    n = math.prod(shape)
    values: Tensor = entry["values"]
    encoding = entry["encoding"]
    if encoding == "dense":
        keep = None
    elif encoding == "bitmask":
        keep = torch.from_numpy(np.unpackbits(entry["bits"].cpu().numpy(), count=n).astype(bool))
    elif encoding == "positions":
        keep = entry["positions"].long()
    else:
        raise ConfigError([Issue(source, f"prunable.{name}.encoding", f"unknown encoding {encoding!r}")])
    expected = n if keep is None else int(keep.sum()) if keep.dtype == torch.bool else keep.numel()
    if values.numel() != expected:
        raise ConfigError(
            [Issue(source, f"prunable.{name}", f"{values.numel()} values for {expected} kept weights")]
        )
    if keep is None:
        return values.reshape(shape).clone()
    out = torch.zeros(n, dtype=values.dtype, device=values.device)
    out[keep.to(values.device)] = values
    return out.reshape(shape)


# --- writing -------------------------------------------------------------------------------------------------


def architecture(model: AttentionGCN) -> dict[str, int]:
    """The constructor arguments of `model` (besides its adjacency): what a file needs to rebuild it."""
    return {
        "in_features": int(model.filter_w[0].shape[0]),
        "num_nodes": int(model.num_nodes),
        "num_classes": int(model.classifier.out_features),
        "blocks": len(model.filter_w),
        "heads": int(model.heads),
        "filters": int(model.filters),
        "key_dim": int(model.key_dim),
        "fc": int(model.fc_w.shape[1]),
    }


def network_blob(trainer: Trainer, rate: float | None = None) -> tuple[dict[str, Any], NetworkInfo]:
    """The file's content for `trainer`'s network at `rate` (see `resolve_rate`), and its info. Scores the
    network at that rate on the trainer's validation and test splits (one batched evaluation)."""
    cfg = trainer.cfg
    rate = resolve_rate(cfg.method.name, cfg.method.params, rate)
    model, method = trainer.model, trainer.method
    point = trainer.evaluate([rate])[0]
    masks = method.eval_masks(rate)
    names = {id(p): n for n, p in model.named_parameters()}
    prunable_ids = {id(layer.weight) for layer in model.prunable}
    baked = model.pruned_state(masks)  # masks and unit gates (biases, attention reads) baked in
    prunable: dict[str, dict[str, Any]] = {}
    for layer, mask in zip(model.prunable, masks):
        prunable[names[id(layer.weight)]] = encode_weight(baked[names[id(layer.weight)]], mask)
    dense = {n: baked[n].to("cpu") for n, p in model.named_parameters() if id(p) not in prunable_ids}
    kept = int(sum(int((m != 0).sum()) for m in masks))
    total_prunable = sum(layer.weight.numel() for layer in model.prunable)
    nonzero = kept + sum(int((p != 0).sum()) for p in dense.values())
    trained = registry.get(cfg.method.name).trained_rates(cfg.method.params)
    info = NetworkInfo(
        method=cfg.method.name,
        rate=rate,
        trained_rates=None if trained is None else [float(t) for t in trained],
        dataset=trainer.data.dataset,
        split=trainer.data.split,
        class_names=list(trainer.data.class_names),
        val_accuracy=point.val_accuracy,
        test_accuracy=point.test_accuracy,
        observed_rate=point.observed_rate,
        effective_rate=point.effective_rate,
        disconnected=point.disconnected,
        kept=kept,
        prunable=total_prunable,
        nonzero=nonzero,
        params=sum(p.numel() for p in model.parameters()),
        encodings={n: e["encoding"] for n, e in prunable.items()},
        mrmp_version=mrmp.__version__,
    )
    blob = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "architecture": architecture(model),
        "adjacency": torch.as_tensor(trainer.data.adjacency).to(torch.uint8).cpu().clone(),
        "prunable": prunable,
        "dense": dense,
        "info": asdict(info),
        "config": cfg.to_dict(),
    }
    return blob, info


def write_network(trainer: Trainer, path: str | Path, rate: float | None = None) -> NetworkFile:
    """Write `trainer`'s network pruned at `rate` to `path` (atomically: a complete file or none)."""
    blob, info = network_blob(trainer, rate)
    buf = io.BytesIO()  # serialised in memory: the archive's inner folder is then "archive", not a temp name
    torch.save(blob, buf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda p: p.write_bytes(buf.getvalue()))
    return NetworkFile(path, path.stat().st_size, info)


# --- reading ---------------------------------------------------------------------------------------------------

# What torch.load raises on a torch archive it cannot read (truncated, or objects weights_only refuses).
_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile)


def _read_blob(path: Path, what: str, device: str = "cpu") -> dict[str, Any]:
    """torch.load(path, weights_only=True) of a dict, or ConfigError naming the file and what is wrong."""
    if not path.is_file():
        raise ConfigError([Issue(str(path), "", f"no such file (expected {what})")])
    return _load_blob(path.read_bytes(), str(path), what, device)


def _load_blob(raw: bytes, source: str, what: str, device: str = "cpu") -> dict[str, Any]:
    if raw[:4] != b"PK\x03\x04":  # torch.save writes a zip archive
        raise ConfigError([Issue(source, "", f"not {what} (not a file written by torch.save)")])
    try:
        blob = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(
            [Issue(source, "", f"not {what} (it holds Python objects that a weights-only load refuses)")]
        ) from None
    except _LOAD_ERRORS as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError([Issue(source, "", f"not {what} ({first})")]) from None
    if not isinstance(blob, dict):
        raise ConfigError([Issue(source, "", f"not {what} (holds a {type(blob).__name__})")])
    return blob


def load_network(path: str | Path, device: str = "cpu") -> LoadedNetwork:
    """Read a network file (weights_only) and rebuild its module with the pruned weights as zeros."""
    path = Path(path)
    source = str(path)
    blob = _read_blob(path, "a network file written by mrmp", device)
    if blob.get("format") != FORMAT:
        hint = ""
        if {"model", "method", "config"} <= set(blob):
            hint = (
                ": it is a training checkpoint (model.pt); write a network file from it with "
                f"`mrmp export-network {path.parent} --rate R --out FILE`"
            )
        raise ConfigError([Issue(source, "format", f"not a network file written by mrmp{hint}")])
    if int(blob.get("version", 0)) > FORMAT_VERSION:
        raise ConfigError(
            [
                Issue(
                    source,
                    "version",
                    f"format version {blob['version']} is newer than this mrmp reads "
                    f"({FORMAT_VERSION}); upgrade mrmp",
                )
            ]
        )
    missing = [
        k for k in ("architecture", "adjacency", "prunable", "dense", "info", "config") if k not in blob
    ]
    if missing:
        raise ConfigError([Issue(source, "", f"network file without {', '.join(missing)} (damaged?)")])
    config = config_from_dict(blob["config"], source=f"{source} (config)")
    arch = blob["architecture"]
    module = AttentionGCN(adjacency=blob["adjacency"].float(), **arch)
    state = dict(blob["dense"])
    for name, entry in blob["prunable"].items():
        state[name] = decode_weight(entry, source, name)
    module.load_state_dict(state)
    module.to(device).eval()
    known = {f.name for f in fields(NetworkInfo)}
    info = NetworkInfo(**{k: v for k, v in blob["info"].items() if k in known})
    return LoadedNetwork(module, info, config, path, path.stat().st_size)


# --- from a training run ---------------------------------------------------------------------------------------


_CHECKPOINT = "a model.pt written by `mrmp train` or a sweep trial"


def _read_checkpoint(source: str | Path | bytes, device: str) -> tuple[str, dict[str, Any], RunConfig]:
    if isinstance(source, bytes):
        file = "model.pt (bytes)"
        blob = _load_blob(source, file, _CHECKPOINT, device)
    else:
        path = Path(source)
        path = path / "model.pt" if path.is_dir() else path
        file = str(path)
        blob = _read_blob(path, _CHECKPOINT, device)
    missing = [k for k in ("model", "method", "config") if k not in blob]
    if missing:
        hint = ": it is a network file; run it with `mrmp predict`" if blob.get("format") == FORMAT else ""
        raise ConfigError([Issue(str(file), "", f"not {_CHECKPOINT} (no {', '.join(missing)}){hint}")])
    return file, blob, config_from_dict(blob["config"], source=f"{file} (config)")


def load_trained(
    source: str | Path | bytes,
    data: PreparedData | None = None,
    device: str = "cpu",
    prepare: Callable[[DataConfig], PreparedData] | None = None,
) -> Trainer:
    """A trained `Trainer` from a `mrmp train` output folder, a `model.pt` file of that form, or the bytes of one
    (a sweep trial's `model.pt` artifact, e.g. `tracker.read_artifact(run_id, "model.pt")`); `data` defaults to
    the run's own, `prepare(cfg.data)` (`prepare` defaults to `prepare_data`)."""
    _, blob, cfg = _read_checkpoint(source, device)
    return restore_trainer(blob, cfg, data, device, prepare)


def export_run(
    source: str | Path | bytes,
    path: str | Path,
    rate: float | None = None,
    data: PreparedData | None = None,
    device: str = "cpu",
) -> NetworkFile:
    """The network of `source` (see `load_trained`) written to `path` at `rate` (what `mrmp export-network`
    does). The rate is checked before any data is read or prepared."""
    file, blob, cfg = _read_checkpoint(source, device)
    rate = resolve_rate(cfg.method.name, cfg.method.params, rate, str(file))
    return write_network(restore_trainer(blob, cfg, data, device), path, rate)


# --- running a network file ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkScore:
    """A network file run on one split: how many clips, how many right, how long the forward took."""

    split: str  # "val" or "test"
    clips: int
    correct: int
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.clips if self.clips else float("nan")


def network_data(
    network: LoadedNetwork,
    name: str | None = None,
    root: str | None = None,
    fold: int | None = None,
    source: str = "mrmp predict",
) -> PreparedData:
    """The data a network file's run was trained on (its config's `data` section), with `name`, `root` and
    `fold` overridden where given; ConfigError if the result is not a valid data config or does not fit the
    network (nodes, features, classes)."""
    raw = network.config.to_dict()
    if name is not None:
        raw["data"]["name"] = name
        if root is None and name != network.config.data.name:
            raw["data"]["root"] = None
    if root is not None:
        raw["data"]["root"] = root
    if fold is not None:
        raw["data"]["fold"] = fold
    cfg = config_from_dict(raw, source=source)
    data = prepare_data(cfg.data)
    arch = architecture(network.module)
    got = (data.num_nodes, data.in_features, data.num_classes)
    want = (arch["num_nodes"], arch["in_features"], arch["num_classes"])
    if got != want:
        raise ConfigError(
            [
                Issue(
                    source,
                    "data",
                    f"{cfg.data.name} fold {cfg.data.fold} gives {got[0]} nodes x {got[1]} features and "
                    f"{got[2]} classes; the network {network.path} takes {want[0]} x {want[1]} and "
                    f"{want[2]} classes",
                )
            ]
        )
    return data


@torch.no_grad()
def score_network(network: LoadedNetwork, data: PreparedData, split: str = "test") -> NetworkScore:
    """Accuracy of the network's module (its plain forward, no masks) on `data`'s `split` ("val" or "test")."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    x_np, y_np = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    device = next(network.module.parameters()).device
    x, y = torch.as_tensor(x_np, device=device), torch.as_tensor(y_np, device=device)
    if len(y):
        network.module(x[:1])  # warm-up: the timed pass below is the steady state
    start = time.perf_counter()
    pred = network.module(x).argmax(-1) if len(y) else y
    seconds = time.perf_counter() - start
    return NetworkScore(split, int(len(y)), int((pred == y).sum()), seconds)
