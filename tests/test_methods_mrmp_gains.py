"""MRMP's per-rate channel gains (`rate_gains`): off by default, trained, used at the seen rates, interpolated at
the unseen ones, saved and resumed, and baked into an exported network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrmp.methods.mrmp import MRMP, MRMPParams
from mrmp.methods.priors import band_stop
from mrmp.model import build_model, integrity
from mrmp.testing.contract import toy_config, toy_data
from mrmp.train import Trainer, load_run, run
from mrmp.train.export import load_network, write_network

SEEN = [0.5, 0.7, 0.9]


def _gain(s: torch.Tensor) -> torch.Tensor:
    return 0.5 + 0.5 * s.exp()


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("gains")
    cfg = toy_config("mrmp", epochs=20, seen_rates=SEEN, rate_gains=True)
    return run(cfg, data, out_dir=out), out


def test_off_nothing_extra():
    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.ones(30, 30))
    m = MRMP(MRMPParams(calibrate_epochs=0), model, 10)
    assert m.parameters() == [] and "log_gains" not in m.state_dict()
    for mask in m.eval_masks_batch([0.5, 0.77]):
        assert bool(((mask == 0) | (mask == 1)).all())
    # by default the gains exist for the calibration (round(0.15 x 10) epochs), not trained before it
    default = MRMP(MRMPParams(), model, 10)
    assert [(p.name, p.epochs) for p in default.phases()] == [("train", 12), ("calibrate", 2)]
    assert default.parameters() == [] and "log_gains" in default.state_dict()


def test_gains_reach_the_optimiser_and_are_trained(trained):
    trainer = trained[0].trainer
    method = trainer.method
    assert len(method.parameters()) == len(SEEN) * len(
        trainer.model.prunable
    )  # one tensor per rate and layer
    gains = method.log_gains()
    shapes = [(len(SEEN), w.shape[1]) for w in trainer.model.prunable_weights()]
    assert [tuple(s.shape) for s in gains] == shapes
    in_adam = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert all(id(s) in in_adam for s in method.parameters())
    for s in gains:  # every seen rate's gains moved away from 1 (s = 0): trained, not left at their init
        assert bool((s.detach().abs().amax(-1) > 1e-3).all())


def test_train_mask_carries_its_rates_gains_with_gradient():
    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.ones(30, 30))
    m = MRMP(MRMPParams(seen_rates=SEEN, rate_gains=True, partial_deltas="none"), model, 10)
    with torch.no_grad():
        for s in m.parameters():
            s.normal_(0, 0.3)
    plain = MRMP.__mro__[1].train_masks(m, 0.7)  # BandStopMethod's soft masks, no gains
    masks = m.train_masks(0.7)
    for mk, p, s in zip(masks, plain, m.log_gains()):
        torch.testing.assert_close(mk, p * _gain(s[1]))
    sum(mk.sum() for mk in masks).backward()
    n = len(m.model.prunable)
    for i, s in enumerate(m.parameters()):  # rate-major: rate 0.7's tensors alone get a gradient
        assert (s.grad is not None and bool((s.grad != 0).any())) if i // n == 1 else s.grad is None
    assert m.train_masks(None) is None


def test_seen_rates_use_their_gains_and_unseen_rates_interpolate(trained):
    method = trained[0].trainer.method
    ws = [w.detach() for w in method.model.prunable_weights()]
    rates = [0.3, 0.5, 0.6, 0.65, 0.7, 0.9, 0.95]
    masks = method.eval_masks_batch(rates)
    hard = [band_stop(w, a.view(-1, 1, 1), None) for w, a in zip(ws, method.thresholds(rates))]
    for mk, h, sl in zip(masks, hard, method.log_gains()):
        sl = sl.detach()
        want = {
            0.3: sl[0],  # below the lowest seen rate: clamped
            0.5: sl[0],
            0.6: 0.5 * sl[0] + 0.5 * sl[1],  # halfway between 0.5 and 0.7
            0.65: 0.25 * sl[0] + 0.75 * sl[1],
            0.7: sl[1],
            0.9: sl[2],
            0.95: sl[2],  # above the highest: clamped
        }
        for i, r in enumerate(rates):
            torch.testing.assert_close(mk[i], h[i] * _gain(want[r]).unsqueeze(0))
        assert torch.equal(mk[1], h[1] * _gain(sl[0]).unsqueeze(0))  # exactly the seen rate's own gains
        assert torch.equal(mk == 0, h == 0)  # pruned entries exactly 0, kept ones > ½
        assert bool((mk[h == 1] > 0.5).all())
    # the unit graph and the observed rate read the same kept connections as without the gains
    with_gains, without = integrity(masks, method.in_repeats), integrity(hard, method.in_repeats)
    assert torch.equal(with_gains.observed_rate, without.observed_rate)
    assert torch.equal(with_gains.disconnected, without.disconnected)


def test_gains_change_the_seen_rates_logits(trained, data):
    trainer = trained[0].trainer
    method, model = trainer.method, trainer.model
    x = torch.as_tensor(data.x_test)
    with torch.no_grad():
        masks = method.eval_masks(0.7)
        binary = [(m != 0).to(m.dtype) for m in masks]
        assert not torch.allclose(model(x, masks), model(x, binary), atol=1e-4)


def test_resume_and_reload_keep_the_gains(trained, data):
    result, out = trained
    reloaded = load_run(out, data)
    assert len(reloaded.method.parameters()) == len(result.trainer.method.parameters())
    for a, b in zip(reloaded.method.parameters(), result.trainer.method.parameters()):
        assert torch.equal(a, b)
    assert [p.row() for p in reloaded.evaluate()] == [p.row() for p in result.curve]
    # stop at epoch 10, restore into a fresh trainer, finish: bitwise the straight run's weights and gains
    cfg = toy_config("mrmp", epochs=20, seen_rates=SEEN, rate_gains=True)
    first = Trainer(cfg, data)
    first.fit(until_epoch=10)
    state = first.state()
    second = Trainer(cfg, data)
    second.load_state(state)
    second.fit()
    straight = result.trainer
    for a, b in zip(second.parameters(), straight.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("rate", [0.5, 0.7, 0.8])  # seen, seen, unseen
def test_exported_network_bakes_the_gains(trained, data, tmp_path, rate):
    trainer = trained[0].trainer
    written = write_network(trainer, tmp_path / "net.pt", rate)
    net = load_network(written.path)
    x = torch.as_tensor(np.concatenate([data.x_val, data.x_test]))
    masks = trainer.method.eval_masks(rate)
    with torch.no_grad():
        got = net.module(x)
        want = trainer.model(x, masks)
        batched = trainer.model(x, trainer.method.eval_masks_batch([rate]))[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, batched, rtol=1e-4, atol=1e-5)
    names = dict(trainer.model.named_parameters())
    stored = dict(net.module.named_parameters())
    for layer, mask in zip(trainer.model.prunable, masks):
        key = next(k for k, p in names.items() if p is layer.weight)
        assert torch.equal(stored[key].detach(), layer.weight.detach() * mask)  # gains in, zeros where pruned
    assert written.info.kept == sum(int((m != 0).sum()) for m in masks)
    point = trainer.evaluate([rate])[0]
    assert written.info.test_accuracy == point.test_accuracy
    assert written.info.observed_rate == point.observed_rate


@pytest.fixture(scope="module")
def calibrated(data):
    cfg = toy_config("mrmp", epochs=20, seen_rates=SEEN, calibrate_epochs=6)
    trainer = Trainer(cfg, data)
    main = trainer.method.phases()[0].epochs
    trainer.fit(until_epoch=main)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    untouched = [s.detach().clone() for s in trainer.method.log_gains()]
    curve_before = trainer.evaluate()
    trainer.fit()
    return trainer, before, untouched, curve_before


def test_calibration_trains_only_the_gains_after_the_weights(calibrated):
    trainer, before, untouched, _ = calibrated
    assert [(p.name, p.epochs, p.frozen) for p in trainer.method.phases()] == [
        ("train", 24, False),  # round(20 x 1.2), MRMP's epochs_factor
        ("calibrate", 6, True),
    ]
    assert all(bool((s == 0).all()) for s in untouched)  # not trained before the calibration
    for n, p in trainer.model.named_parameters():
        assert torch.equal(p.detach(), before[n]), (
            n
        )  # frozen: every weight and bias as the main phase left it
        assert p.requires_grad  # and trainable again once training is over
    in_adam = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in in_adam} == {id(s) for s in trainer.method.parameters()}
    for s in trainer.method.log_gains():  # every seen rate's gains were calibrated
        assert bool((s.detach().abs().amax(-1) > 1e-3).all())
    assert trainer.history[-1]["regularizer"] == 0.0  # no KL on frozen weights


def test_calibrated_gains_change_only_the_logits_not_the_masks(calibrated, data):
    trainer, _, _, curve_before = calibrated
    after = trainer.evaluate()
    # the gains are > 1/2: the same connections are kept at every rate, seen or unseen
    for a, b in zip(curve_before, after):
        assert (a.rate, a.observed_rate, a.effective_rate, a.disconnected) == (
            b.rate,
            b.observed_rate,
            b.effective_rate,
            b.disconnected,
        )
    assert any(a.val_accuracy != b.val_accuracy for a, b in zip(curve_before, after))
    x = torch.as_tensor(data.x_test)
    masks = trainer.method.eval_masks(0.7)
    binary = [(m != 0).to(m.dtype) for m in masks]
    with torch.no_grad():
        assert not torch.allclose(trainer.model(x, masks), trainer.model(x, binary), atol=1e-4)


def test_calibration_resumes_exactly(calibrated, data):
    trainer = calibrated[0]
    cfg = toy_config("mrmp", epochs=20, seen_rates=SEEN, calibrate_epochs=6)
    first = Trainer(cfg, data)
    first.fit(until_epoch=27)  # three epochs into the calibration
    second = Trainer(cfg, data)
    second.load_state(first.state())
    second.fit()
    for a, b in zip([*second.model.parameters(), *second.method.log_gains()], [
        *trainer.model.parameters(), *trainer.method.log_gains()
    ]):  # fmt: skip
        assert torch.equal(a, b)


def test_calibration_masks_hold_part_of_a_delta_with_interpolated_gains():
    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.ones(30, 30))
    seen = [0.5, 0.7, 0.9]
    m = MRMP(MRMPParams(seen_rates=seen, calibrate_epochs=2), model, 10)
    m._calibrating = True
    with torch.no_grad():
        for k, per_layer in enumerate(m._log_gains):
            for s in per_layer:
                s.fill_(float(k))  # rate k's gains: g = ½(1 + e^k), apart for every rate
    masks = m.train_masks_batch(seen)
    own = m.eval_masks_batch(seen)  # the hard masks times the gains: `!= 0` reads them as 0/1
    hard = [(o != 0).to(o.dtype) for o in own]
    for i, layer in enumerate(masks):
        kept = (layer != 0).to(layer.dtype)
        for r in range(3):
            assert bool((kept[r] <= hard[i][r]).all())  # inside its own mask
            assert bool((kept[r] >= hard[i][min(r + 1, 2)]).all())  # and it keeps the next rate's
        assert torch.equal(kept[2], hard[i][2])  # the sparsest seen rate keeps its own mask
    flat = lambda t: torch.cat([x.reshape(3, -1) for x in t], 1)  # noqa: E731
    k, h, n = flat([(x != 0).float() for x in masks]), flat(hard), flat([torch.roll(x, -1, 0) for x in hard])
    for r in range(
        2
    ):  # the fraction of the delta dropped is u; the gains sit u of the way to the next rate's
        delta = (h[r] - n[r]).sum()
        u = float(((h[r] - k[r]).sum()) / delta)
        gain = masks[0][r][masks[0][r] != 0].unique()  # one gain per output channel, all equal here
        want = 0.5 + 0.5 * torch.exp(torch.tensor((1 - u) * r + u * (r + 1)))
        assert 0.0 < u < 1.0 and torch.allclose(gain, want.to(gain.dtype), atol=0.02)
    loss = sum(x.sum() for x in masks)
    loss.backward()
    assert all(s.grad is not None for per_layer in m._log_gains for s in per_layer)


def test_magnitude_calibration_masks_are_unseen_rates_networks():
    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.ones(30, 30))
    seen = [0.5, 0.7, 0.9]
    m = MRMP(MRMPParams(seen_rates=seen, calibrate_epochs=2, calibrate_order="magnitude"), model, 10)
    m._calibrating = True
    masks = m.train_masks_batch(seen)
    z = torch.cat([w.detach().abs().reshape(-1) for w in model.prunable_weights()])
    own = torch.cat([(x != 0).reshape(3, -1) for x in m.eval_masks_batch(seen)], 1)
    kept = torch.cat([(x != 0).reshape(3, -1) for x in masks], 1)
    for r in range(3):  # inside its own mask, what it drops is smaller than all it keeps: one threshold
        dropped = own[r] & ~kept[r]
        if bool(dropped.any()):
            assert float(z[dropped].max()) < float(z[kept[r]].min())
    assert bool(((own[0] & ~kept[0]).sum() > 0) | ((own[1] & ~kept[1]).sum() > 0))  # some delta dropped
