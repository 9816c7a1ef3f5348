"""Model, magnitude pruning, integrity check, training and the run outputs (toy data: no dataset needed)."""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils import prune

from mrmp.config import load_config
from mrmp.methods import rank_keep_masks
from mrmp.model import build_model, integrity
from mrmp.testing.contract import graph_search
from mrmp.train import CURVE_COLUMNS, Trainer, load_run, run
from tests.toy import toy_data


def cfg_for(*sets):
    return load_config(None, ["train.epochs=40", "train.lr=0.01", *sets])


def test_model_shapes_and_batched_masks_match_single_rate():
    torch.manual_seed(0)
    model = build_model("small", 12, 10, 4, torch.eye(10))
    x = torch.randn(7, 10, 12)
    assert model(x).shape == (7, 4)
    masks = [(torch.rand(3, *w.shape) > 0.5).float() for w in model.prunable_weights()]
    batched = model(x, masks)
    assert batched.shape == (3, 7, 4)
    for r in range(3):
        torch.testing.assert_close(batched[r], model(x, [m[r] for m in masks]))
    ones = [torch.ones_like(w) for w in model.prunable_weights()]
    torch.testing.assert_close(model(x, ones), model(x))


@pytest.mark.parametrize("rate", [0.3, 0.5, 0.9, 0.97])
def test_global_mp_masks_equal_torch_prune(rate):
    torch.manual_seed(1)
    model = build_model("small", 12, 10, 4, torch.eye(10))
    ours = rank_keep_masks([w.detach().abs() for w in model.prunable_weights()], [rate])
    holders = [torch.nn.Linear(1, 1, bias=False) for _ in model.prunable]
    for h, w in zip(holders, model.prunable_weights()):
        h.weight = torch.nn.Parameter(w.detach().clone())
    prune.global_unstructured(
        [(h, "weight") for h in holders], pruning_method=prune.L1Unstructured, amount=rate
    )
    for m, h in zip(ours, holders):
        assert torch.equal(m[0], h.weight_mask)


def test_layerwise_masks_prune_every_layer_at_the_rate():
    torch.manual_seed(2)
    ws = [torch.randn(12, 16), torch.randn(16, 16), torch.randn(160, 32)]
    masks = rank_keep_masks([w.abs() for w in ws], [0.75], layerwise=True)
    for m, w in zip(masks, ws):
        assert int(m.sum()) == w.numel() - round(0.75 * w.numel())


def test_integrity_on_a_hand_built_graph():
    # 2 inputs -> 2 hidden -> FC over 2 nodes x 2 channels -> 1 output
    m1 = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # input0 -> hidden0 only
    m2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # hidden0 -> h1 ; hidden1 -> h0 (hidden1 not accessible)
    fc = torch.tensor([[0.0], [1.0], [0.0], [0.0]])  # only (node0, channel1) -> output
    rep = integrity([m1, m2, fc], [1, 1, 2])
    assert int(rep.kept) == 4
    # consistent: m1[0,0], m2[0,1], fc[1,0]; m2[1,0] starts at an inaccessible unit
    assert int(rep.consistent) == 3 and int(rep.disconnected) == 1 and bool(rep.path_exists)
    rep = integrity([m1, torch.zeros(2, 2), fc], [1, 1, 2])
    assert int(rep.consistent) == 0 and not bool(rep.path_exists) and int(rep.disconnected) == 2


@pytest.mark.parametrize("seed", range(6))
def test_integrity_and_unit_gates_agree_with_an_explicitgraph_search(seed):
    """Random sparse masks on a small layered graph with a tiled last layer (like the FC over nodes), at several
    densities: integrity's count, consistent_masks' edges and unit_gates' units match a path search."""
    from mrmp.model import consistent_masks, unit_gates

    gen = torch.Generator().manual_seed(seed)
    shapes, in_repeats = [(5, 6), (6, 7), (7, 6), (18, 4)], [1, 1, 1, 3]
    for density in (0.08, 0.15, 0.3, 0.6):
        masks = [(torch.rand(s, generator=gen) < density).float() for s in shapes]
        bad, accessible, coaccessible = graph_search(masks, in_repeats)
        rep = integrity(masks, in_repeats)
        assert int(rep.disconnected) == len(bad)
        assert int(rep.kept) == sum(int(m.sum()) for m in masks)
        found = {
            (layer, i, j)
            for layer, (m, c) in enumerate(zip(masks, consistent_masks(masks, in_repeats)))
            for i, j in ((m != 0) & (c == 0)).nonzero().tolist()
        }
        assert found == bad
        gates = unit_gates(masks, in_repeats)
        for layer in range(len(masks)):
            alive = {(layer + 1, u) for u in gates.alive[layer].nonzero().flatten().tolist()}
            assert alive == {v for v in accessible if v[0] == layer + 1} - {(0, u) for u in range(5)}
            read = {(layer, u) for u in gates.read[layer].nonzero().flatten().tolist()}
            assert read == {v for v in coaccessible if v[0] == layer}
        assert bool(rep.path_exists) == any((len(masks), u) in accessible for u in range(4))


def test_integrity_matches_the_graph_search_on_the_models_own_layers():
    torch.manual_seed(3)
    model = build_model("small", 12, 10, 4, torch.eye(10))
    in_repeats = [p.in_repeat for p in model.prunable]
    for rate in (0.8, 0.95, 0.99):
        masks = rank_keep_masks([torch.rand_like(w) for w in model.prunable_weights()], [rate])
        masks = [m[0] for m in masks]
        bad, _, _ = graph_search(masks, in_repeats)
        assert int(integrity(masks, in_repeats).disconnected) == len(bad) > 0


def test_a_masked_network_drops_its_disconnected_units():
    """A unit without a kept input outputs 0 (its bias is dropped); a unit without a kept output is not read by
    the next block's attention: zeroing such units' edges, or changing their weights, cannot move a logit."""
    torch.manual_seed(0)
    model = build_model("small", 12, 10, 4, torch.eye(10))
    with torch.no_grad():
        for b in [*model.filter_b, model.fc_b]:
            b.uniform_(0.5, 1.0)  # positive biases: a kept bias would show through the ReLU
    masks = [torch.ones_like(w) for w in model.prunable_weights()]
    masks[0][:, 3] = 0  # block 1's unit 3: no input, so no bias
    masks[1][5, :] = 0  # block 1's unit 5: no output edge, so block 2's attention must not read it
    x = torch.randn(8, 10, 12)
    with torch.no_grad():
        base = model(x, masks)
        model.filter_b[0][3] += 10.0  # the dropped bias
        model.query[1][5] += 3.0  # attention rows of the unread unit
        model.key[1][5] -= 3.0
        model.filter_w[0][:, 5] *= 2.0  # the unread unit's inputs
        torch.testing.assert_close(model(x, masks), base, rtol=0, atol=0)
        model.query[1][4] += 3.0  # a unit that is read: the logits move
        assert not torch.allclose(model(x, masks), base)


def test_loss_decreases_and_training_is_deterministic():
    data = toy_data()
    a = Trainer(cfg_for(), data)
    a.fit()
    losses = [h["loss"] for h in a.history]
    assert losses[-1] < 0.5 * losses[0]
    b = Trainer(cfg_for(), data)
    b.fit()
    assert [h["loss"] for h in b.history] == losses
    c = Trainer(cfg_for("train.seed=1"), data)
    c.fit()
    assert [h["loss"] for h in c.history] != losses


def test_minibatch_and_adaptive_lr_paths():
    data = toy_data()
    t = Trainer(cfg_for("train.batch_size=32", "train.adaptive_lr=true", "train.epochs=10"), data)
    t.fit()
    assert len(t.history) == 10 and t.history[-1]["lr"] != 0.01
    assert t.history[-1]["loss"] < t.history[0]["loss"]


# every recipe element on: mini-batches, warm-up, decay, smoothing, averaging, the adaptive rule
RECIPE = [
    "train.batch_size=32",
    "train.lr_warmup_epochs=3",
    "train.lr_schedule=cosine",
    "train.lr_floor=0.1",
    "train.label_smoothing=0.1",
    "train.ema_decay=0.9",
    "train.adaptive_lr=true",
]


def test_resume_from_state_continues_exactly():
    data = toy_data()
    # MP with fine-tuning: the state crosses a phase boundary (a new optimiser, schedule and average)
    cfg = cfg_for(*RECIPE, "train.epochs=8", "method.name=mp", "method.finetune_epochs=6")
    full = Trainer(cfg, data)
    states = {}
    full.fit(lambda ev: states.__setitem__(ev.epoch, ev.state()) if ev.epoch in (5, 10) else None)
    for epoch in (5, 10):
        resumed = Trainer(cfg, data)
        resumed.load_state(states[epoch])
        resumed.fit()
        assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
        assert [h["lr"] for h in resumed.history] == [h["lr"] for h in full.history]
        for a, b in zip(resumed.model.parameters(), full.model.parameters()):
            assert torch.equal(a, b)


def test_run_writes_curve_summary_config_and_model(tmp_path):
    data = toy_data()
    cfg = cfg_for("method.name=mp", "method.rate=0.9", "method.finetune_epochs=5")
    result = run(cfg, data, out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.yaml",
        "curve.csv",
        "model.pt",
        "summary.json",
    ]
    rows = list(csv.DictReader((tmp_path / "curve.csv").open()))
    assert tuple(rows[0].keys()) == CURVE_COLUMNS
    assert [float(r["rate"]) for r in rows] == [0.9]  # fine-tuned at 0.9: scored there only
    seen = {float(r["rate"]) for r in rows if r["seen"] == "1"}
    assert seen == {0.9}
    for r in rows:
        rate, obs, eff = float(r["rate"]), float(r["observed_rate"]), float(r["effective_rate"])
        assert abs(obs - rate) < 1e-3 and eff >= obs - 1e-9 and int(r["disconnected"]) >= 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("params", "wall_time_s", "device", "val_accuracy_at_target", "sizes", "split_hash"):
        assert key in summary
    assert summary["params"]["prunable"] < summary["params"]["total"]
    assert summary["test_accuracy_at_target"] == pytest.approx(result.curve[0].test_accuracy)
    assert summary["val_accuracy_at_target"] == pytest.approx(result.curve[0].val_accuracy)
    # save -> load -> same curve
    again = load_run(tmp_path, data).evaluate()
    assert [p.row() for p in again] == [p.row() for p in result.curve]
    assert load_config(tmp_path / "config.yaml") == cfg


def test_dense_reports_only_rate_zero(tmp_path):
    result = run(cfg_for("train.epochs=3"), toy_data())
    assert [p.rate for p in result.curve] == [0.0] and result.curve[0].seen == 1


def test_core_never_imports_ray_mlflow_or_optuna():
    core = Path(__file__).parents[1] / "mrmp"
    pattern = re.compile(r"^\s*(import|from)\s+(ray|mlflow|optuna)\b", re.M)
    for sub in ("config", "data", "model", "methods", "train"):
        for f in (core / sub).rglob("*.py"):
            assert not pattern.search(f.read_text()), f


def test_validation_split_is_stratified_seeded_disjoint_and_in_the_hash():
    from mrmp.config import DataConfig
    from mrmp.train import prepare_data
    from mrmp.train.data import stratified_holdout

    labels = np.repeat(np.arange(4), [10, 20, 2, 1])
    held = stratified_holdout(labels, 0.2, seed=3)
    counts = np.bincount(labels[held], minlength=4)
    assert counts.tolist() == [2, 4, 1, 0]  # round(0.2·n) per class, ≥ 1 of a pair, never a whole class
    assert np.array_equal(held, stratified_holdout(labels, 0.2, seed=3))
    assert not np.array_equal(held, stratified_holdout(labels, 0.2, seed=4))

    d = prepare_data(DataConfig(name="synthetic-sbu", fold=2))
    full = prepare_data(DataConfig(name="synthetic-sbu", fold=2, val_fraction=0.0))
    assert len(d.y_val) + len(d.y_train) == len(full.y_train) and not full.has_val
    rows = {x.tobytes() for x in d.x_train}
    assert not rows & {x.tobytes() for x in d.x_val} and not rows & {x.tobytes() for x in d.x_test}
    assert np.array_equal(np.bincount(d.y_val), np.round(0.2 * np.bincount(full.y_train)).astype(int))
    other = prepare_data(DataConfig(name="synthetic-sbu", fold=2, val_seed=1))
    assert other.split_hash() != d.split_hash() and len(other.y_val) == len(d.y_val)


def test_curve_scores_validation_and_test_apart():
    data = toy_data()
    result = run(cfg_for("method.name=mp", "train.epochs=5", "eval.rates=[0.0, 0.5, 0.9]"), data)
    trainer = result.trainer
    logits = trainer.model(trainer.x_val)
    val0 = float((logits.argmax(-1) == trainer.y_val).float().mean())
    test0 = float((trainer.model(trainer.x_test).argmax(-1) == trainer.y_test).float().mean())
    assert result.curve[0].val_accuracy == pytest.approx(val0)
    assert result.curve[0].test_accuracy == pytest.approx(test0)
    no_val = run(cfg_for("train.epochs=2"), toy_data(n_val=0))
    assert no_val.curve[0].val_accuracy is None and no_val.summary["val_dense_accuracy"] is None


def test_fit_until_epoch_continues_exactly_where_it_stopped():
    data = toy_data()
    cfg = cfg_for("method.name=srmp", "train.epochs=12", *RECIPE)
    whole = Trainer(cfg, data)
    whole.fit()
    stepped = Trainer(cfg, data)
    for until in (5, 5, 9, 100):
        stepped.fit(until_epoch=until)
        assert stepped.epoch == min(until, 12)
        stepped.evaluate([0.9])  # evaluating between calls changes nothing
    assert stepped.done and [h["loss"] for h in stepped.history] == [h["loss"] for h in whole.history]
    for a, b in zip(stepped.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)
    again = Trainer(cfg, data)  # deterministic for a seed, with every element on
    again.fit()
    assert [h["loss"] for h in again.history] == [h["loss"] for h in whole.history]


def test_a_nonfinite_loss_stops_training_and_says_at_which_epoch(tmp_path):
    data = toy_data()
    bad = data.x_train.copy()
    bad[0, 0, 0] = np.nan
    import dataclasses

    result = run(cfg_for("train.epochs=10"), dataclasses.replace(data, x_train=bad), out_dir=tmp_path / "out")
    assert result.trainer.diverged.startswith("non-finite loss at epoch 1 (loss nan")
    assert result.trainer.epoch == 1 and result.trainer.done and not result.trainer.history
    assert not (tmp_path / "out").exists()  # nothing written for a diverged network


def test_lr_schedule_warms_up_decays_to_the_floor_and_restarts_each_phase():
    from mrmp.train.loop import lr_factor

    sets = ["train.lr=0.1", "train.lr_warmup_epochs=4", "train.lr_schedule=cosine", "train.lr_floor=0.1"]
    cfg = cfg_for(*sets, "train.epochs=20", "method.name=mp", "method.finetune_epochs=6")
    t = Trainer(cfg, toy_data())
    t.fit()
    lrs = [h["lr"] for h in t.history]
    cosine = [0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 16))) for k in range(16)]
    assert lrs[:20] == pytest.approx([0.025, 0.05, 0.075, 0.1, *cosine])
    # the fine-tuning phase (6 epochs) starts its own warm-up and decay
    assert lrs[20:24] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert lrs[24:] == pytest.approx(
        [0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 2))) for k in range(2)]
    )
    linear = cfg_for("train.lr_schedule=linear", "train.lr_floor=0.2", "train.lr_warmup_epochs=0").train
    assert [lr_factor(linear, e, 5) for e in range(5)] == pytest.approx([1.0, 0.84, 0.68, 0.52, 0.36])
    constant = cfg_for("train.lr_schedule=constant", "train.lr_warmup_epochs=0").train
    assert [lr_factor(constant, e, 5) for e in range(5)] == [1.0] * 5


def test_the_scheduled_rate_is_the_one_the_optimiser_steps_with():
    # Adam's first step moves every weight with a gradient by lr (m / sqrt(v) = ±1): 0.1 / 4 in warm-up
    cfg = cfg_for("train.lr=0.1", "train.lr_warmup_epochs=4", "train.epochs=10")
    t = Trainer(cfg, toy_data())
    before = [p.detach().clone() for p in t.model.parameters()]
    t.fit(until_epoch=1)
    steps = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(t.model.parameters(), before)])
    assert float(steps.max()) == pytest.approx(0.025, rel=1e-3)


def test_label_smoothing_is_in_the_training_loss():
    data = toy_data()
    t = Trainer(cfg_for("train.label_smoothing=0.2", "train.epochs=30"), data)
    t.fit(until_epoch=20)  # confident enough that smoothing changes the loss
    with torch.no_grad():
        logits = t.model(t.x_train)
    t.fit(until_epoch=21)  # full batch: epoch 21's loss is that of the weights after epoch 20
    smoothed = float(torch.nn.functional.cross_entropy(logits, t.y_train, label_smoothing=0.2))
    plain = float(torch.nn.functional.cross_entropy(logits, t.y_train))
    assert t.history[-1]["loss"] == pytest.approx(smoothed, rel=1e-5)
    assert smoothed > 1.2 * plain


def test_the_averaged_weights_are_evaluated_not_trained():
    data = toy_data()
    cfg = cfg_for("train.ema_decay=0.9", "train.epochs=12", "method.name=mp", "eval.rates=[0.0, 0.8]")
    t = Trainer(cfg, data)
    t.fit(until_epoch=6)
    weights = [p.detach().clone() for p in t.model.parameters()]
    averaged = [a.clone() for a in t.state()["ema"]]
    assert any(not torch.equal(w, a) for w, a in zip(weights, averaged))
    curve = t.evaluate()
    # evaluation leaves the training weights in place ...
    assert all(torch.equal(p, w) for p, w in zip(t.model.parameters(), weights))
    # ... and scores the averaged ones: the same curve as a model that holds them
    other = Trainer(cfg, data)
    with torch.no_grad():
        for p, a in zip(other.model.parameters(), averaged):
            p.copy_(a)
    assert [p.row() for p in curve] == [p.row() for p in other.evaluate()]
    # evaluating mid-training changes nothing in the training that follows
    t.fit()
    plain = Trainer(cfg, data)
    plain.fit()
    assert [h["loss"] for h in t.history] == [h["loss"] for h in plain.history]
    # at the end the model holds the averaged weights for good (evaluated, saved, loaded)
    for p, a in zip(t.model.parameters(), t.state()["ema"]):
        assert torch.equal(p, a)


def test_the_average_follows_the_update_rule_and_restarts_each_phase():
    cfg = cfg_for("train.ema_decay=0.5", "train.epochs=3", "method.name=mp", "method.finetune_epochs=2")
    t = Trainer(cfg, toy_data())
    weights = [[p.detach().clone() for p in t.model.parameters()]]
    for epoch in (1, 2):  # full batch: one step per epoch, decays min(0.5, (1 + t)/(10 + t)) = 0.1, 2/11
        t.fit(until_epoch=epoch)
        weights.append([p.detach().clone() for p in t.model.parameters()])
    for avg, w0, w1, w2 in zip(t.state()["ema"], *weights):
        torch.testing.assert_close(avg, torch.lerp(torch.lerp(w0, w1, 1 - 0.1), w2, 1 - 2 / 11))
    t.fit(until_epoch=4)  # into fine-tuning: the average restarts from the pruned network, zeros stay zero
    averaged = dict(zip([n for n, _ in t.model.named_parameters()], t.state()["ema"]))
    names = {id(p): n for n, p in t.model.named_parameters()}
    for w, mask in zip(t.model.prunable_weights(), t.method.state_dict()["frozen"]):
        assert (mask == 0).any() and torch.all(averaged[names[id(w)]][mask == 0] == 0)
