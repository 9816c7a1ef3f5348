"""SRMP: band-stop masks, the KL regulariser, the quantile mapping on real weights, schedules, config keys."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch.nn import functional as F

from mrmp.config import ConfigError, config_from_dict
from mrmp.methods import registry
from mrmp.methods.priors import PRIORS
from mrmp.methods.srmp import SRMP, SRMPParams
from mrmp.model import build_model


def _method(epochs: int = 10, **params) -> SRMP:
    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.ones(30, 30))
    return SRMP(SRMPParams(**params), model, epochs)


def _observed(method, rate: float) -> float:
    masks = method.eval_masks(rate)
    return 1.0 - float(sum(m.sum() for m in masks)) / sum(m.numel() for m in masks)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prior_shaped_init_meets_every_rate(prior, scope):
    """On prior-shaped weights, the quantile mapping a(r) removes exactly a fraction r (to a weight per layer)."""
    m = _method(prior=prior, scope=scope, prior_init=True)
    for r in (0.5, 0.7, 0.9, 0.95, 0.98, 0.99):
        assert _observed(m, r) == pytest.approx(r, abs=5e-4)
    if scope == "layer":
        for mask in m.eval_masks(0.9):
            assert 1 - float(mask.mean()) == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("prior", PRIORS)
def test_prior_init_by_default_for_gaussian_and_laplace_not_uniform(prior):
    """The default reshapes the initial weights onto the prior (same order) except for the uniform prior, whose
    model keeps its own initialisation; an explicit `prior_init` wins either way."""
    torch.manual_seed(0)
    fresh = [
        w.detach().clone() for w in build_model("small", 12, 30, 8, torch.ones(30, 30)).prunable_weights()
    ]
    for setting, reshaped in ((None, prior != "uniform"), (True, True), (False, False)):
        params = {} if setting is None else {"prior_init": setting}
        ws = _method(prior=prior, **params).model.prunable_weights()
        same = all(torch.equal(w, f) for w, f in zip(ws, fresh))
        assert same is not reshaped, (prior, setting)
        for w, f in zip(ws, fresh):  # reshaping keeps the order of the weights (ties by position)
            assert bool((w.detach().reshape(-1)[f.reshape(-1).sort(stable=True).indices].diff() >= 0).all())


def _scipy_threshold(prior: str, rate: float) -> float:
    """a(r) = F⁻¹((1 + r)/2) of the unit-variance prior, from scipy (independent of mrmp.methods.priors)."""
    dist = {
        "uniform": stats.uniform(loc=-math.sqrt(3), scale=2 * math.sqrt(3)),
        "gaussian": stats.norm(),
        "laplace": stats.laplace(scale=1 / math.sqrt(2)),
    }[prior]
    return float(dist.ppf((1 + rate) / 2))


def test_train_masks_are_a_band_stop_that_removes_small_magnitudes():
    """ψ > ½ exactly where |Ŵ| > rms(Ŵ)·a(r) (small magnitudes are removed, large ones kept: not the inverted
    band), ψ grows with |Ŵ|, the gradient moves ψ the same way, and a sharp σ gives the evaluation mask."""
    m = _method(rate=0.9)
    ws = m.model.prunable_weights()
    flat = torch.cat([w.detach().reshape(-1) for w in ws])
    t = float(flat.pow(2).mean().sqrt()) * _scipy_threshold("gaussian", 0.9)
    masks = m.train_masks(0.9)
    for mask, w in zip(masks, ws):
        big = w.detach().abs() > t
        assert torch.equal(mask.detach() > 0.5, big)
        assert bool(((mask > 0) & (mask < 1)).all())
        order = w.detach().abs().reshape(-1).argsort()
        assert bool((mask.detach().reshape(-1)[order].diff() >= 0).all())  # monotone in |w|
    sum(mask.sum() for mask in masks).backward()  # more kept mass: larger magnitudes
    for w in ws:
        assert bool((w.grad * w.detach().sign() >= 0).all()) and float(w.grad.abs().sum()) > 0
    sharp = _method(rate=0.9, sigma=1e7, sigma_end=None)
    for a, b in zip(sharp.train_masks(0.9), sharp.eval_masks(0.9)):
        assert torch.equal((a.detach() > 0.5).float(), b)


def test_loss_gradient_reaches_every_layer_through_the_band_stop():
    m = _method(rate=0.9)
    x = torch.randn(4, 30, 12)
    F.cross_entropy(m.model(x, m.train_masks(0.9)), torch.tensor([0, 1, 2, 3])).backward()
    for w in m.model.prunable_weights():
        assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_kl_gradient_reaches_every_prunable_layer():
    m = _method(kl_weight=1.0)
    with torch.no_grad():  # move away from the prior so the KL is not at its minimum
        for w in m.model.prunable_weights():
            w.copy_(torch.rand_like(w) - 0.5)
    reg = m.regularizer()
    assert reg is not None and float(reg.detach()) > 0.01
    reg.backward()
    for w in m.model.prunable_weights():
        assert torch.isfinite(w.grad).all() and float(w.grad.abs().sum()) > 0


def test_kl_weight_zero_disables_the_regularizer():
    assert _method(kl_weight=0.0).regularizer() is None


def test_warmup_trains_dense_then_the_rate_and_sigma_anneals():
    m = _method(epochs=10, warmup_epochs=2, sigma=10.0, sigma_end=100.0, sigma_schedule="exp")
    gen = torch.Generator().manual_seed(0)
    assert m.step_rates(gen) == [None] and m.train_masks(None) is None
    m.end_epoch(2, 10)
    assert m.step_rates(gen) == [0.9]
    assert m.sigma() == pytest.approx(10.0)
    m.end_epoch(10, 10)
    assert m.sigma() == pytest.approx(100.0)
    state = m.state_dict()
    fresh = _method(epochs=10, warmup_epochs=2)
    fresh.load_state_dict(state)
    assert fresh.sigma() == pytest.approx(100.0)


def test_global_scope_uses_one_threshold_layer_scope_one_per_layer():
    g = _method(scope="global").thresholds([0.9])
    assert len({round(float(t), 9) for t in g}) == 1
    per_layer = _method(scope="layer").thresholds([0.9])
    assert len({round(float(t), 9) for t in per_layer}) > 1


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_eval_masks_are_the_quantile_mapped_threshold(prior, scope):
    """At any rate, the evaluation mask is 1{|Ŵ| > s·F⁻¹((1 + r)/2)}, s the RMS of all prunable weights (global)
    or of the layer, F from scipy, on weights moved off the prior (so the rule, not the initial shape, is
    tested)."""
    m = _method(prior=prior, scope=scope)
    with torch.no_grad():
        for w in m.model.prunable_weights():
            w.mul_(1 + torch.rand_like(w))  # a different shape, a different scale per layer
    ws = [w.detach() for w in m.model.prunable_weights()]
    flat = torch.cat([w.reshape(-1) for w in ws])
    rates = [0.0, 0.5, 0.73, 0.9, 0.99]
    for r, masks in zip(rates, zip(*m.eval_masks_batch(rates))):
        for mask, w in zip(masks, ws):
            s = (flat if scope == "global" else w).double().pow(2).mean().sqrt()
            assert torch.equal(mask, (w.double().abs() > s * _scipy_threshold(prior, r)).float()), (r, scope)


def test_config_keys_and_errors():
    cfg = config_from_dict({"method": {"name": "srmp", "prior": "laplace", "rate": 0.95, "sigma_end": None}})
    assert isinstance(cfg.method.params, SRMPParams) and cfg.method.rate == 0.95
    assert registry.get("srmp") is SRMP
    with pytest.raises(ConfigError) as err:
        config_from_dict(
            {"method": {"name": "srmp", "prior": "cauchy", "rate": 1.0, "sigma_schedule": "cos"}}
        )
    text = str(err.value)
    assert "method.prior" in text and "uniform, gaussian, laplace" in text
    assert "method.rate" in text and "method.sigma_schedule" in text


def test_kl_every_applies_the_kl_on_every_nth_step_weighted_n_times():
    """kl_every = n: the regulariser is n·λ·KL on steps 1, n + 1, 2n + 1, ... and None on the others (the same
    mean pull toward the prior, one KL evaluation in n steps); its position is part of the state."""
    every, m = _method(), _method(kl_every=3)
    expected = float(every.regularizer().detach())
    got = [m.regularizer() for _ in range(7)]
    assert [g is not None for g in got] == [True, False, False, True, False, False, True]
    assert math.isclose(float(got[0].detach()), 3 * expected, rel_tol=1e-6)
    resumed = _method(kl_every=3)
    resumed.load_state_dict(m.state_dict())  # 7 calls made: the next two are skipped, then the KL
    assert [resumed.regularizer() is not None for _ in range(3)] == [False, False, True]
