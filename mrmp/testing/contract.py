"""The contract every registered pruning method passes (the `optuna.testing` pattern: one shared suite).

`tests/test_methods_contract.py` runs each `check_*` below for every name in `registry.names()`, so a new method
gets the whole suite by registering itself. The checks read a method's claims from its class (`nested`,
`rate_tolerance`) and test only what the interface promises:

- the observed rate is the target within `rate_tolerance` (plus one weight of rounding) at every rate, or at
  the seen rates for methods whose `rate_claim` is "seen" (SRMP and MRMP: the KL's claim after training);
- a seed fixes the run: the same curve and weights twice;
- `run(..., out_dir)` then `load_run(dir)` evaluates to the same curve;
- the integrity columns agree with an independent count of the masks: their zeros, and the disconnected
  connections an explicit graph search finds (rate 0 keeps everything);
- eval masks are binary, shaped like the weights, equal through `eval_masks` and `eval_masks_batch`, and
  nested across rates where the method claims it;
- train masks are None or finite tensors shaped like the weights, and the seen rates lie in [0, 1);
- the connections the integrity report calls disconnected are exactly those that cannot change a logit, at
  every rate 0.50–0.99 (`check_disconnected_are_inert`: zeroing them leaves the logits of random inputs
  unchanged, and every other kept connection moves some logit).

Everything runs on `toy_data()` with a small GCN (5.3k prunable weights: the KL-based rate claims are
statistical, a histogram needs enough weights) for 30 full-batch epochs: about a second per method on a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrmp.config import RunConfig, config_from_dict, default_rates
from mrmp.methods import PruningMethod, registry
from mrmp.model import consistent_masks, integrity
from mrmp.train import CurvePoint, PreparedData, RunResult, Trainer, load_run, run

HIGH_RATES = [round(0.5 + i / 100, 2) for i in range(50)]  # 0.50 ... 0.99: where connections disconnect
TOY_MODEL = {"blocks": 2, "heads": 2, "filters": 4, "key_dim": 4, "fc": 64}  # 5.3k prunable weights


def toy_data(
    n_train: int = 64, n_test: int = 32, classes: int = 3, nodes: int = 10, features: int = 12, seed: int = 0
) -> PreparedData:
    """A small learnable problem (class-dependent node features on a chain graph); no dataset needed."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, nodes, features))
    y = np.arange(n_train + n_test) % classes
    rng.shuffle(y)
    x = (centers[y] + rng.normal(scale=1.0, size=(len(y), nodes, features))).astype(np.float32)
    adj = np.zeros((nodes, nodes), np.float32)
    for i in range(nodes - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1
    y = y.astype(np.int64)
    n_val = n_test // 2  # the held-out part: half validation, half test
    return PreparedData(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train : n_train + n_val],
        y_val=y[n_train : n_train + n_val],
        x_test=x[n_train + n_val :],
        y_test=y[n_train + n_val :],
        adjacency=adj,
        class_names=tuple(f"c{i}" for i in range(classes)),
        dataset="toy",
        split="fold1",
    )


def toy_config(name: str, epochs: int = 30, seed: int = 0, **method: Any) -> RunConfig:
    """A validated config for `name` on the toy problem: tiny GCN, full batch, one thread, CPU."""
    raw = {
        "method": {"name": name, **method},
        "model": dict(TOY_MODEL),
        "train": {"epochs": epochs, "seed": seed, "device": "cpu", "threads": 1},
        "eval": {"rates": default_rates()},
    }
    return config_from_dict(raw, source=f"<contract:{name}>")


def _rows(curve: Sequence[CurvePoint]) -> list[tuple]:
    return [dataclasses.astuple(p) for p in curve]


def graph_search(
    masks: Sequence[torch.Tensor], in_repeats: Sequence[int]
) -> tuple[set[tuple[int, int, int]], set[tuple[int, int]], set[tuple[int, int]]]:
    """Disconnected kept connections of 2-D masks by an explicit search on the unit graph, edge by edge: the test
    oracle for `mrmp.model.topology`, sharing none of its code. Vertices are (layer, unit), one edge per kept
    weight (input row i of layer l is unit i mod C of the previous layer); a connection is connected iff a
    depth-first search from the inputs reaches its source and one from the outputs, backwards, reaches its
    target. Returns the disconnected edges {(layer, row, column)} and the accessible and co-accessible
    vertices."""
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    pred: dict[tuple[int, int], list[tuple[int, int]]] = {}
    edges = []
    widths = [m.shape[0] // r for m, r in zip(masks, in_repeats)] + [masks[-1].shape[1]]
    for layer, m in enumerate(masks):
        for i, j in (m != 0).nonzero().tolist():
            src, dst = (layer, i % widths[layer]), (layer + 1, j)  # input i is unit i mod C of layer `layer`
            edges.append((layer, i, j, src, dst))
            succ.setdefault(src, []).append(dst)
            pred.setdefault(dst, []).append(src)

    def reach(starts, nxt):
        seen, stack = set(starts), list(starts)
        while stack:
            for v in nxt.get(stack.pop(), []):
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return seen

    accessible = reach([(0, u) for u in range(widths[0])], succ)
    coaccessible = reach([(len(masks), u) for u in range(widths[-1])], pred)
    bad = {
        (layer, i, j) for layer, i, j, src, dst in edges if src not in accessible or dst not in coaccessible
    }
    return bad, accessible, coaccessible


# --- checks on a trained run --------------------------------------------------------------------------------


def check_rates(result: RunResult) -> None:
    """Observed rate within the method's `rate_tolerance` of each target (+ one weight of rounding), at every
    evaluated rate or, for methods whose `rate_claim` is "seen", at the rates training targeted."""
    method = result.trainer.method
    n = sum(w.numel() for w in method.model.prunable_weights())
    tol = type(method).rate_tolerance + 1.0 / n + 1e-9
    claim = type(method).rate_claim
    assert claim in ("all", "seen"), f"{method.name}: rate_claim must be 'all' or 'seen', got {claim!r}"
    points = [p for p in result.curve if claim == "all" or p.seen]
    assert points, f"{method.name}: no evaluated rate to check the rate claim on"
    bad = [(p.rate, p.observed_rate) for p in points if abs(p.observed_rate - p.rate) > tol]
    assert not bad, (
        f"{method.name}: observed rate off target by more than {tol:.4f} at (rate, observed) {bad}"
    )


def check_integrity_columns(result: RunResult) -> None:
    """The curve is scored exactly where the method is defined (its trained rates, or the whole grid for a
    method read at any rate); effective ≥ observed, disconnected ≥ 0 and consistent with the rates; rate 0, where
    scored, keeps every weight."""
    method = result.trainer.method
    trained = type(method).trained_rates(method.params)
    expected = list(result.config.eval.rates) if trained is None else list(trained)
    assert [p.rate for p in result.curve] == expected, (
        f"{method.name}: scored at {[p.rate for p in result.curve]}, expected {expected}"
    )
    n = sum(w.numel() for w in method.model.prunable_weights())
    for p in result.curve:
        assert 0.0 <= p.observed_rate <= p.effective_rate <= 1.0, (method.name, p)
        assert p.seen in (0, 1), (method.name, p)
    # the columns against an independent count: the masks' zeros, and the graph search's disconnected edges
    step = max(1, len(result.curve) // 6)
    for p in result.curve[::step]:
        masks = [m[0] for m in method.eval_masks_batch([p.rate])]
        kept = sum(int((m != 0).sum()) for m in masks)
        bad = len(graph_search(masks, method.in_repeats)[0])
        assert math.isclose(p.observed_rate, 1 - kept / n, abs_tol=1e-9), (method.name, p, kept)
        assert p.disconnected == bad, (
            f"{method.name}: {p.disconnected} disconnected reported, {bad} found at {p}"
        )
        assert math.isclose(p.effective_rate, 1 - (kept - bad) / n, abs_tol=1e-9), (method.name, p)
    for p in result.curve:
        if p.rate == 0.0:
            assert p.observed_rate == 0.0, f"{method.name}: rate 0 must keep every weight, got {p}"


def check_eval_masks(method: PruningMethod, rates: Sequence[float]) -> None:
    """Weight-shaped, exactly 0 where pruned and above ½ where kept (1, or a per-rate gain folded in: MRMP's
    calibration), the same through both entry points, keeping everything at rate 0, nested if claimed."""
    rates = sorted(set([0.0, *rates]))
    weights = method.model.prunable_weights()
    batch = method.eval_masks_batch(rates)
    assert len(batch) == len(weights), f"{method.name}: one mask per prunable layer"
    for m, w in zip(batch, weights):
        assert m.shape == (len(rates), *w.shape), (method.name, m.shape, w.shape)
        assert bool(((m == 0) | (m > 0.5)).all()), f"{method.name}: eval masks must be 0 or above ½"
        assert bool((m[0] != 0).all()), f"{method.name}: rate 0 must keep every weight"
    for i in (1, len(rates) - 1):
        single = method.eval_masks(rates[i])
        for s, m in zip(single, batch):
            assert torch.equal(s, m[i]), (
                f"{method.name}: eval_masks and eval_masks_batch differ at {rates[i]}"
            )
    if type(method).nested:
        for m in batch:
            kept = (m != 0).to(m.dtype)
            assert bool((kept[1:] <= kept[:-1]).all()), f"{method.name}: masks not nested across rates"


def check_disconnected_are_inert(method: PruningMethod, rates: Sequence[float], samples: int = 16) -> None:
    """At each rate, a kept connection is disconnected in the integrity report iff removing it can change no
    logit, checked on the forward pass itself, not on the unit graph:

    - zeroing every connection the report calls disconnected leaves the logits of random inputs unchanged (to
      float tolerance), through all the paths the network has (biases, attention projections, the FC);
    - every other kept connection moves some logit: a nonzero gradient of the logits with respect to its mask
      entry, on a float64 copy of the model whose biases are large enough to keep every ReLU open (so that a
      connection's effect cannot hide behind a closed ReLU)."""
    model = method.model
    rates = list(rates)
    masks = [m.detach() for m in method.eval_masks_batch(rates)]
    consistent = consistent_masks(masks, method.in_repeats)
    rep = integrity(masks, method.in_repeats)
    kept = [m != 0 for m in masks]
    per_rate = sum((k & (c == 0)).sum((-1, -2)) for k, c in zip(kept, consistent))
    assert per_rate.tolist() == rep.disconnected.tolist(), (
        f"{method.name}: disconnected connections {per_rate.tolist()} vs integrity {rep.disconnected.tolist()}"
    )
    gen = torch.Generator().manual_seed(0)
    c_in = model.prunable_weights()[0].shape[0]
    x = torch.randn(samples, model.num_nodes, c_in, generator=gen, dtype=model.fc_w.dtype) * 2.0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        full = model(x.to(model.fc_w.device), masks)
        inert = model(x.to(model.fc_w.device), [m * (c != 0) for m, c in zip(masks, consistent)])
    model.train(was_training)
    moved = (full - inert).abs().amax((-1, -2))
    scale = full.abs().amax().clamp_min(1.0)
    bad = [(r, float(d)) for r, d in zip(rates, moved) if float(d) > 1e-5 * float(scale)]
    assert not bad, (
        f"{method.name}: zeroing disconnected connections moved the logits at (rate, max |Δ|) {bad}"
    )

    probe = copy.deepcopy(model).double().cpu()
    with torch.no_grad():  # layer l's biases ≫ its pre-activations: every ReLU open for these inputs
        for i, b in enumerate([*probe.filter_b, probe.fc_b]):
            b.fill_(10.0 ** (3 + 3 * i))
    leaves = [m.double().cpu().requires_grad_(True) for m in masks]
    logits = probe(x.double().cpu(), leaves)
    weights = torch.randn(logits.shape, generator=gen, dtype=torch.float64)
    (logits * weights).sum().backward()
    for layer, (leaf, c) in enumerate(zip(leaves, consistent)):
        silent = (c.cpu() != 0) & (leaf.grad == 0)
        assert not bool(silent.any()), (
            f"{method.name}: {int(silent.sum())} connections of layer {layer} count as connected but move no "
            f"logit (rates {[r for r, s in zip(rates, silent.flatten(1).any(1)) if s]})"
        )


def check_train_masks(trainer: Trainer) -> None:
    """The rates of a step are None or in [0, 1); their masks None or finite weight-shaped tensors."""
    method = trainer.method
    rates = method.step_rates(torch.Generator().manual_seed(0))
    assert len(rates) >= 1, f"{method.name}: a step targets at least one rate"
    weights = method.model.prunable_weights()
    for r in rates:
        assert r is None or 0.0 <= r < 1.0, (method.name, r)
        masks = method.train_masks(r)
        if masks is None:
            continue
        assert len(masks) == len(weights), f"{method.name}: one train mask per prunable layer"
        for m, w in zip(masks, weights):
            assert m.shape == w.shape and bool(torch.isfinite(m).all()), (method.name, m.shape)
    assert all(0.0 <= s < 1.0 for s in method.seen_rates()), (method.name, method.seen_rates())


def check_documented(name: str) -> None:
    """The class names its paper (or says it is a baseline) and its Params are default-constructible."""
    cls = registry.get(name)
    assert cls.__doc__ or sys.modules[cls.__module__].__doc__, f"{name}: no docstring naming its paper"
    params = cls.Params()
    for f in dataclasses.fields(params):
        assert f.metadata.get("help"), f"{name}: method.{f.name} has no help text"


# --- checks that train ----------------------------------------------------------------------------------------


def check_deterministic(name: str, data: PreparedData, first: RunResult, epochs: int = 30) -> None:
    """The same seed gives the same curve and the same weights."""
    again = run(toy_config(name, epochs=epochs), data)
    assert _rows(again.curve) == _rows(first.curve), f"{name}: two runs with one seed gave different curves"
    for (k, a), b in zip(first.trainer.model.state_dict().items(), again.trainer.model.state_dict().values()):
        assert torch.equal(a, b), f"{name}: parameter {k} differs between two runs with one seed"


def check_save_load(name: str, data: PreparedData, first: RunResult, run_dir: str | Path) -> None:
    """`load_run` on the written directory evaluates to the very same curve."""
    for f in ("config.yaml", "curve.csv", "summary.json", "model.pt"):
        assert (Path(run_dir) / f).is_file(), f"{name}: {f} not written"
    trainer = load_run(run_dir, data)
    assert _rows(trainer.evaluate()) == _rows(first.curve), f"{name}: the reloaded run evaluates differently"


def trained(name: str, data: PreparedData, run_dir: str | Path, epochs: int = 30) -> RunResult:
    """The run every check reads: `name` on the toy problem, outputs written to `run_dir`."""
    return run(toy_config(name, epochs=epochs), data, out_dir=run_dir)


def check_all(name: str, run_dir: str | Path, epochs: int = 30) -> None:
    """Every check above for one method (what a new method's author runs first)."""
    data = toy_data()
    result = trained(name, data, run_dir, epochs)
    check_documented(name)
    check_rates(result)
    check_integrity_columns(result)
    check_eval_masks(result.trainer.method, result.trainer.cfg.eval.rates)
    check_train_masks(result.trainer)
    check_disconnected_are_inert(result.trainer.method, HIGH_RATES)
    check_deterministic(name, data, result, epochs)
    check_save_load(name, data, result, run_dir)
