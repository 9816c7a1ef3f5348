"""Items 1 and 2: the training step of each pruning method against the dense step, and the FLOP rate of a step.

A step is `Trainer.train_epoch()` on the full batch (the fast path: one forward, one backward, one Adam step,
the method's masks and regulariser included). The reference for item 1 is `torch.nn.utils.prune`: the dense
model whose prunable weights are masked by `prune.global_unstructured` (L1, the same global magnitude masks as
MP) through its forward pre-hooks, trained the same way.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.utils import prune
from torch.utils.flop_counter import FlopCounterMode

from mrmp.config import load_config
from mrmp.train import PreparedData, Trainer

from .timing import gemm_peak, interleaved, median, median_ratio

# item 1's variants: name -> (method, extra config keys, phase index to step in)
VARIANTS: dict[str, tuple[str, list[str], int]] = {
    "dense": ("dense", [], 0),
    "srmp": ("srmp", [], 0),
    "mrmp": ("mrmp", [], 0),
    "tcmp": ("tcmp", [], 0),
    "mp_finetune": ("mp", ["method.finetune_epochs=1"], 1),  # MP's fixed hard mask (the like-for-like case)
}
PRUNE_RATE = 0.9


def make_trainer(
    data: PreparedData,
    method: str,
    preset: str = "small",
    threads: int = 1,
    sets: list[str] | None = None,
    phase: int = 0,
    epochs: int = 300,
) -> Trainer:
    """A Trainer for `method` on `data` (CPU, `threads` torch threads), already in phase `phase`."""
    cfg = load_config(
        None,
        [
            f"method.name={method}",
            f"model.preset={preset}",
            f"train.epochs={epochs}",
            f"train.threads={threads}",
            "train.device=cpu",
            *(sets or []),
        ],
    )
    trainer = Trainer(cfg, data)
    trainer.enter_phase(phase)
    return trainer


def attach_prune_hooks(model: nn.Module, rate: float = PRUNE_RATE) -> None:
    """Mask the model's prunable weights with `torch.nn.utils.prune` (global L1 at `rate`), through its hooks.

    The block filters live in a ParameterList, which is never called, so its pre-hooks (one per pruned
    entry) are fired from a pre-hook on the model: every forward recomputes `w = w_orig * mask` exactly as
    prune does for a called module."""
    plist = model.filter_w
    targets = [(plist, str(i)) for i in range(len(plist))] + [(model, "fc_w")]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=rate)

    def fire(module: nn.Module, args: Any) -> None:
        for hook in plist._forward_pre_hooks.values():
            hook(plist, args)

    model.register_forward_pre_hook(fire, prepend=True)


def prune_trainer(data: PreparedData, preset: str = "small", threads: int = 1) -> Trainer:
    """The torch.nn.utils.prune reference: a dense Trainer whose model is masked through prune's hooks."""
    trainer = make_trainer(data, "dense", preset, threads)
    attach_prune_hooks(trainer.model)
    trainer.enter_phase(0)  # a fresh optimiser over the re-registered (`*_orig`) parameters
    return trainer


def step_ratios(
    data: PreparedData, preset: str = "small", threads: int = 1, rounds: int = 15, repeat: int = 5
) -> dict[str, Any]:
    """Item 1: median over interleaved rounds of (method step ÷ dense step), for every variant and prune."""
    trainers = {
        name: make_trainer(data, method, preset, threads, sets, phase)
        for name, (method, sets, phase) in VARIANTS.items()
    }
    trainers["torch_prune"] = prune_trainer(data, preset, threads)
    times = interleaved({k: t.train_epoch for k, t in trainers.items()}, rounds, repeat)
    return {
        "ratios": {k: median_ratio(times, k, "dense") for k in trainers if k != "dense"},
        "step_ms": {k: 1e3 * median(v) for k, v in times.items()},
        "rounds": rounds,
        "steps_per_round": repeat,
        "preset": preset,
        "batch": int(data.x_train.shape[0]),
    }


def step_flops(trainer: Trainer) -> int:
    """FLOPs of one training step (forward and backward) as torch.utils.flop_counter counts them: matrix
    products only (mm, bmm, addmm, baddbmm and the like); softmax, elementwise ops and Adam are not counted."""
    with FlopCounterMode(display=False) as counter:
        trainer.train_epoch()
    return int(counter.get_total_flops())


def flop_fraction(
    data: PreparedData,
    preset: str = "paper",
    threads: int = 1,
    repeat: int = 10,
    gemm_n: int = 4096,
    rounds: int = 3,
) -> dict[str, Any]:
    """Item 2: achieved FLOP/s of a dense `preset` training step ÷ the machine's fp32 GEMM peak, both with
    `threads` torch threads, measured in turns (`rounds` × (peak, steps)); the median of the per-round ratios."""
    trainer = make_trainer(data, "dense", preset, threads)
    flops = step_flops(trainer)
    for _ in range(2):
        trainer.train_epoch()
    peaks, steps = [], []
    for _ in range(rounds):
        peaks.append(gemm_peak(gemm_n))
        steps.append(median(interleaved({"s": trainer.train_epoch}, repeat, 1, 0)["s"]))
    fractions = [flops / s / p for s, p in zip(steps, peaks)]
    return {
        "fraction": median(fractions),
        "step_flops": flops,
        "step_ms": 1e3 * median(steps),
        "achieved_gflops": flops / median(steps) / 1e9,
        "gemm_peak_gflops": max(peaks) / 1e9,
        "gemm_n": gemm_n,
        "flop_count": "torch.utils.flop_counter.FlopCounterMode over one step (matrix products only)",
        "preset": preset,
        "threads": threads,
    }
