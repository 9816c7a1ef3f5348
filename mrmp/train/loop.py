"""The training loop: Adam over phases, rates from the method, masks from the method; nothing method-specific.

Deterministic for a seed (one torch seed for the initialisation, one CPU generator for batches and rate
sampling). When the batch size is 0 or covers the training set, every epoch is one full-batch step on tensors
that stay on the device (the fast path: no loader, no copies).

A `Trainer` is long-lived: `fit(until_epoch=E)` trains to epoch E and returns, and the next call continues from
there, with nothing rebuilt (a sweep trial advances its trainers from one report to the next this way). A loss
that turns NaN or infinite stops training: `diverged` says at which epoch, and `fit` trains no further.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from mrmp.config import RunConfig, TrainConfig
from mrmp.methods import Phase, PruningMethod, registry
from mrmp.model import AttentionGCN, build_model
from mrmp.torch_compat import Adam

from .data import PreparedData
from .evaluate import CurvePoint, accuracy_at, evaluate_curve


def lr_factor(train: TrainConfig, epoch: int, epochs: int) -> float:
    """The multiplier of `train.lr` during epoch `epoch` (0-based) of a phase of `epochs` epochs: a linear
    warm-up to 1 over the first `lr_warmup_epochs`, then `lr_schedule` from 1 towards `lr_floor`, read at the
    epoch's start (so the last epoch still trains, at slightly more than the floor). A pure function of the
    epoch: a resumed or continued training takes the same rates."""
    warm = min(train.lr_warmup_epochs, epochs)
    if epoch < warm:
        return (epoch + 1) / warm
    if train.lr_schedule == "constant":
        return 1.0
    progress = (epoch - warm) / max(1, epochs - warm)
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if train.lr_schedule == "cosine" else 1.0 - progress
    return train.lr_floor + (1.0 - train.lr_floor) * shape


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class EpochEvent:
    """What the loop tells its callback after each epoch. `state()` and `evaluate()` are computed on demand."""

    epoch: int  # 1-based, counted over all phases
    total_epochs: int
    phase: str
    metrics: dict[str, float]
    state: Callable[[], dict[str, Any]] = field(repr=False)
    evaluate: Callable[[list[float]], list[CurvePoint]] = field(repr=False)


class Trainer:
    """Builds the model and method for a config and trains them on prepared data."""

    def __init__(self, cfg: RunConfig, data: PreparedData, device: torch.device | None = None):
        self.cfg = cfg
        self.data = data
        self.device = device or resolve_device(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        m = cfg.model
        self.model: AttentionGCN = build_model(
            m.preset,
            data.in_features,
            data.num_nodes,
            data.num_classes,
            torch.as_tensor(data.adjacency),
            blocks=m.blocks,
            heads=m.heads,
            filters=m.filters,
            key_dim=m.key_dim,
            fc=m.fc,
        ).to(self.device)
        self.method: PruningMethod = registry.create(
            cfg.method.name, cfg.method.params, self.model, cfg.train.epochs, cfg.train.seed
        )
        self.generator = torch.Generator().manual_seed(cfg.train.seed + 1)
        dev = self.device
        self.x_train = torch.as_tensor(data.x_train, device=dev)
        self.y_train = torch.as_tensor(data.y_train, device=dev)
        self.x_val = torch.as_tensor(data.x_val, device=dev)
        self.y_val = torch.as_tensor(data.y_val, device=dev)
        self.x_test = torch.as_tensor(data.x_test, device=dev)
        self.y_test = torch.as_tensor(data.y_test, device=dev)
        self.epoch = 0  # epochs done, over all phases
        self.diverged: str | None = None  # why training stopped early (a non-finite loss), else None
        self.history: list[dict[str, float]] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self._phase_index = -1
        self._lr = cfg.train.lr
        self._last_loss = float("inf")
        self._ema: list[torch.Tensor] | None = None  # the averaged weights (train.ema_decay > 0), else None
        self._ema_steps = 0  # optimiser steps averaged in the current phase

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.method.phases())

    @property
    def done(self) -> bool:
        """Trained to the end, or stopped by a non-finite loss."""
        return self.diverged is not None or self.epoch >= self.total_epochs

    # --- checkpoint state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue training exactly where it stopped (weights_only-loadable).

        A deep copy: the snapshot stays valid while training goes on."""
        return copy.deepcopy(
            {
                "epoch": self.epoch,
                "phase_index": self._phase_index,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "method": self.method.state_dict(),
                "generator": self.generator.get_state(),
                "lr": self._lr,
                "last_loss": self._last_loss,
                "history": self.history,
                "diverged": self.diverged,
                "ema": self._ema,
                "ema_steps": self._ema_steps,
            }
        )

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.method.load_state_dict(state["method"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self._lr = float(state["lr"])
        self._last_loss = float(state["last_loss"])
        self.history = list(state["history"])
        self.diverged = state.get("diverged")
        self._phase_index = int(state["phase_index"])
        if self._phase_index >= 0:
            self._start_phase(self.method.phases()[self._phase_index])
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])
        self._ema = state.get("ema")
        self._ema_steps = int(state.get("ema_steps", 0))

    # --- training -------------------------------------------------------------------------------------------
    def parameters(self) -> list[torch.Tensor]:
        """What the optimiser trains: the model's parameters, then any the method owns (`method.parameters()`:
        e.g. MRMP's per-rate gains; none for most methods)."""
        return [*self.model.parameters(), *self.method.parameters()]

    def _start_phase(self, phase: Phase) -> None:
        self.method.begin_phase(phase)
        if phase.frozen and self._ema is not None:  # the model keeps the previous phase's average for good
            self._finish()
        for p in self.model.parameters():  # a frozen phase: no gradient for the model (and none computed)
            p.requires_grad_(not phase.frozen)
        params = self.method.parameters() if phase.frozen else self.parameters()
        # foreach: one multi-tensor kernel per update step instead of one per parameter (bitwise the same
        # update; measured 0.34 -> 0.23 ms per step for the small GCN's 16 tensors on the CPU)
        self.optimizer = Adam(  # torch's Adam, without importing its compiler (mrmp.torch_compat)
            params, lr=self._lr, weight_decay=self.cfg.train.weight_decay, foreach=True
        )
        if self.cfg.train.ema_decay > 0:  # each phase averages its own weights (MP's pruned ones stay 0)
            self._ema = [p.detach().clone() for p in self.parameters()]
            self._ema_steps = 0

    def enter_phase(self, index: int = 0) -> None:
        """Start phase `index` (the method's phase hook, a fresh optimiser) without training: `train_epoch` can
        then be called directly (benchmarks step the loop one epoch at a time)."""
        self._phase_index = index
        self._start_phase(self.method.phases()[index])

    def _batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        n = self.x_train.shape[0]
        bs = self.cfg.train.batch_size
        if bs == 0 or bs >= n:
            return [(self.x_train, self.y_train)]
        perm = torch.randperm(n, generator=self.generator).to(self.device)
        return [(self.x_train[perm[i : i + bs]], self.y_train[perm[i : i + bs]]) for i in range(0, n, bs)]

    def train_epoch(self) -> dict[str, float]:
        """One epoch of the current phase (one full-batch step on the fast path); its metrics."""
        self.model.train()
        assert self.optimizer is not None
        ce_sum = reg_sum = correct = seen = 0.0
        smoothing = self.cfg.train.label_smoothing
        for xb, yb in self._batches():
            rates = self.method.step_rates(self.generator)
            if self.method.splits_batch() and len(rates) > 1:
                logits, yb = self._split_forward(rates, xb, yb)
                ce = F.cross_entropy(logits[0], yb, label_smoothing=smoothing)
            else:
                logits = [self.model(xb, self.method.train_masks(r)) for r in rates]
                ce = self.method.task_loss(
                    rates, logits, lambda z, yb=yb: F.cross_entropy(z, yb, label_smoothing=smoothing)
                )
            correct += float((logits[0].argmax(-1) == yb).sum())
            reg = self.method.regularizer()
            loss = ce if reg is None else ce + reg
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self._ema is not None:
                self._update_ema()
            ce_sum += float(ce.detach()) * len(yb)
            reg_sum += float(reg.detach()) * len(yb) if reg is not None else 0.0
            seen += len(yb)
        return {"loss": ce_sum / seen, "regularizer": reg_sum / seen, "train_accuracy": correct / seen}

    def _split_forward(
        self, rates: Sequence[float | None], xb: torch.Tensor, yb: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The step's k rates on k equal shares of the batch, in one forward with the rates' masks stacked: rate
        i's network sees only share i, so every rate is trained at the cost of about one forward. The batch's
        last len % k samples sit this step out (the batches are reshuffled every epoch). Returns the (k·n,
        classes) logits, share by share, and their labels."""
        k = min(len(rates), len(yb))
        n = len(yb) // k
        masks = self.method.train_masks_batch(rates[:k])
        logits = self.model(xb[: k * n].unflatten(0, (k, n)), masks)  # (k, n, classes)
        return [logits.flatten(0, 1)], yb[: k * n]

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema ← d·ema + (1 − d)·w after each step, with d ramped up as (1 + t)/(10 + t) over the phase's first
        steps so that the initial weights are forgotten within a few dozen steps. The ramp reaches the configured
        decay only after (10·d − 1)/(1 − d) steps (890 for 0.99); until then it is the decay."""
        t = self._ema_steps
        d = min(self.cfg.train.ema_decay, (1 + t) / (10 + t))
        for avg, p in zip(self._ema, self.parameters()):
            avg.lerp_(p.detach(), 1.0 - d)
        self._ema_steps = t + 1

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside the block the model holds the averaged weights (when train.ema_decay > 0); the training
        weights come back on exit."""
        if self._ema is None or self.done:  # at the end of training the model already holds them
            yield
            return
        params = self.parameters()
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, avg in zip(params, self._ema):
                p.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, w in zip(params, saved):
                    p.copy_(w)

    def _adapt_lr(self, loss: float) -> None:
        """The sibling paper's rule on the base rate (the schedule multiplies it): x0.99 when the loss rises,
        x1/0.99 otherwise."""
        if not self.cfg.train.adaptive_lr:
            return
        self._lr = self._lr * 0.99 if loss > self._last_loss else self._lr / 0.99
        self._last_loss = loss

    def fit(
        self, callback: Callable[[EpochEvent], None] | None = None, until_epoch: int | None = None
    ) -> None:
        """Train to epoch `until_epoch` (default: the end of the last phase), continuing from where the trainer
        stands (a loaded state, or an earlier `fit`). Stops early, setting `diverged`, on a non-finite loss."""
        phases = self.method.phases()
        total = self.total_epochs
        stop = total if until_epoch is None else min(until_epoch, total)
        done_before = 0
        for index, phase in enumerate(phases):
            end = done_before + phase.epochs
            if self.epoch >= end:
                done_before = end
                continue
            if self.diverged is not None or self.epoch >= stop:
                return
            if index != self._phase_index:
                self._phase_index = index
                self._start_phase(phase)
            while self.epoch < min(end, stop):
                t0 = time.perf_counter()
                lr = self._lr * lr_factor(self.cfg.train, self.epoch - done_before, phase.epochs)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                metrics = self.train_epoch()
                self.epoch += 1
                bad = [k for k in ("loss", "regularizer") if not math.isfinite(metrics[k])]
                if bad:
                    values = ", ".join(f"{k} {metrics[k]}" for k in bad)
                    self.diverged = f"non-finite loss at epoch {self.epoch} ({values})"
                    return
                self.method.end_epoch(self.epoch, total)
                self._adapt_lr(metrics["loss"])
                metrics["lr"] = lr
                metrics["epoch_time_s"] = time.perf_counter() - t0
                self.history.append({"epoch": self.epoch, **metrics})
                if self.epoch == total:
                    self._finish()
                if callback is not None:
                    callback(EpochEvent(self.epoch, total, phase.name, metrics, self.state, self.evaluate))
            done_before = end

    @torch.no_grad()
    def _finish(self) -> None:
        """The end of training: the model takes the averaged weights for good (what is evaluated and saved), and
        its parameters take gradients again (a frozen last phase turned them off)."""
        if self._ema is not None:
            for p, avg in zip(self.parameters(), self._ema):
                p.copy_(avg)
        for p in self.model.parameters():
            p.requires_grad_(True)

    def evaluate(self, rates: list[float] | None = None) -> list[CurvePoint]:
        """The accuracy-vs-rate curve on the validation and test splits."""
        val = (self.x_val, self.y_val) if len(self.y_val) else None
        with self.averaged_weights():
            return evaluate_curve(self.method, rates or self.cfg.eval.rates, (self.x_test, self.y_test), val)

    def validation_accuracy(self, rates: list[float]) -> dict[float, float]:
        """Validation accuracy at each rate the method is scored at (no integrity report), on the weights the
        curve is read on: what a sweep reads between reports. Empty without a validation split."""
        if not len(self.y_val):
            return {}
        with self.averaged_weights():
            return accuracy_at(self.method, rates, self.x_val, self.y_val)
