"""Item 3: evaluating a 50-rate accuracy curve against one dense evaluation of the same test set.

The curve is `mrmp.train.evaluate_curve` (the run's own code: each rate's hard masks, the batched forward over
rates, the integrity report). The dense evaluation is one forward of the unmasked model on the test set and its
accuracy: the cheapest evaluation there is, so the ratio is the price of 50 rates against one.
"""

from __future__ import annotations

from typing import Any

import torch

from mrmp.train import PreparedData, Trainer, evaluate_curve

from .steps import make_trainer
from .timing import interleaved, median, median_ratio

CURVE_RATES = [round(0.5 + i / 100, 2) for i in range(50)]  # 0.50 .. 0.99
CURVE_METHODS = ("mrmp", "srmp", "tcmp", "mp")


@torch.no_grad()
def dense_accuracy(trainer: Trainer) -> float:
    """One dense evaluation: forward the test set through the unmasked model, accuracy."""
    model = trainer.model
    was_training = model.training
    model.eval()
    acc = float((model(trainer.x_test).argmax(-1) == trainer.y_test).float().mean())
    model.train(was_training)
    return acc


def curve_ratios(
    data: PreparedData,
    preset: str = "small",
    threads: int = 1,
    rounds: int = 7,
    methods: tuple[str, ...] = CURVE_METHODS,
    warm_steps: int = 5,
) -> dict[str, Any]:
    """Median over interleaved rounds of (50-rate curve ÷ one dense evaluation), per method."""
    trainers = {m: make_trainer(data, m, preset, threads) for m in methods}
    for t in trainers.values():  # a few steps: weights (and TCMP's threshold search) off their init
        for _ in range(warm_steps):
            t.train_epoch()
    reference = trainers[methods[0]]
    fns = {"dense": lambda: dense_accuracy(reference)}
    for m, t in trainers.items():
        fns[m] = lambda t=t: evaluate_curve(t.method, CURVE_RATES, (t.x_test, t.y_test))
    times = interleaved(fns, rounds, 1, 1)
    return {
        "ratios": {m: median_ratio(times, m, "dense") for m in methods},
        "ms": {k: 1e3 * median(v) for k, v in times.items()},
        "rates": len(CURVE_RATES),
        "test_samples": int(data.x_test.shape[0]),
        "rounds": rounds,
    }
