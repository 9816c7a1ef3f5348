"""The band-stop machinery (mrmp.methods.priors): a(r) against scipy, bin masses, soft histogram, KL, σ."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from mrmp.methods.priors import (
    PRIORS,
    Prior,
    band_stop,
    bin_centers,
    interval_histogram,
    kl_to_log_prior,
    kl_to_prior,
    prior_kl,
    prior_shaped_,
    rms,
    sigma_at,
    smoothed_log,
    soft_histogram,
)

SCIPY = {
    "uniform": stats.uniform(loc=-math.sqrt(3), scale=2 * math.sqrt(3)),
    "gaussian": stats.norm(scale=1.0),
    "laplace": stats.laplace(scale=1 / math.sqrt(2)),
}
RATES = [0.0, 0.1, 0.5, 0.55, 0.7, 0.9, 0.95, 0.98, 0.99, 0.999]


@pytest.mark.parametrize("name", PRIORS)
def test_threshold_is_the_scipy_quantile(name):
    """a(r) = F⁻¹((1 + r)/2), and the closed forms r·b, s√2·erfinv(r), −β ln(1 − r)."""
    prior = Prior(name)
    a = prior.threshold(torch.tensor(RATES, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(a, SCIPY[name].ppf((1 + np.array(RATES)) / 2), rtol=1e-9, atol=1e-12)
    closed = {"uniform": lambda r: r * math.sqrt(3), "gaussian": lambda r: math.sqrt(2) * _erfinv(r)}
    closed["laplace"] = lambda r: -math.log1p(-r) / math.sqrt(2)
    np.testing.assert_allclose(a, [closed[name](r) for r in RATES], rtol=1e-7, atol=1e-12)
    assert SCIPY[name].var() == pytest.approx(1.0)  # unit-variance priors


def _erfinv(r: float) -> float:
    return float(stats.norm.ppf((1 + r) / 2) / math.sqrt(2))


@pytest.mark.parametrize("name", PRIORS)
def test_ppf_matches_scipy(name):
    p = torch.tensor([1e-4, 0.01, 0.2, 0.5, 0.77, 0.99, 1 - 1e-4], dtype=torch.float64)
    np.testing.assert_allclose(Prior(name).ppf(p).numpy(), SCIPY[name].ppf(p.numpy()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", PRIORS)
def test_bin_masses_are_the_prior_mass_under_the_triangular_kernel(name):
    centers = bin_centers(24, 4.0)
    q = Prior(name).bin_masses(centers).numpy()
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    c = centers.numpy()
    d = c[1] - c[0]
    dist = SCIPY[name]
    for b in (0, 5, 11, 12, 23):
        if b == 0:
            expected = (
                dist.cdf(c[0])
                + integrate.quad(lambda z: (1 - (z - c[0]) / d) * dist.pdf(z), c[0], c[0] + d)[0]
            )
        elif b == len(c) - 1:
            expected = (
                dist.sf(c[-1])
                + integrate.quad(lambda z: (1 - (c[-1] - z) / d) * dist.pdf(z), c[-1] - d, c[-1])[0]
            )
        else:
            expected = integrate.quad(
                lambda z, cb=c[b]: max(0.0, 1 - abs(z - cb) / d) * dist.pdf(z),
                c[b] - d,
                c[b] + d,
                points=[c[b]],
            )[0]
        assert q[b] == pytest.approx(expected, abs=1e-7), (name, b)


@pytest.mark.parametrize("name", PRIORS)
def test_quantile_bins_are_equiprobable_and_their_masses_exact(name):
    """Centres at the prior's quantiles; the masses of linear binning on that uneven grid (hat functions from
    neighbour to neighbour) match scipy's integrals, and interior bins hold about 1/B each."""
    prior = Prior(name)
    centers = prior.quantile_centers(16)
    c = centers.numpy()
    np.testing.assert_allclose(c, SCIPY[name].ppf((np.arange(16) + 0.5) / 16), rtol=1e-9, atol=1e-12)
    q = prior.bin_masses(centers).numpy()
    assert q.sum() == pytest.approx(1.0, abs=1e-12)
    dist = SCIPY[name]
    for b in (0, 3, 8, 15):
        if b == 0:
            expected = (
                dist.cdf(c[0])
                + integrate.quad(lambda z: (c[1] - z) / (c[1] - c[0]) * dist.pdf(z), c[0], c[1])[0]
            )
        elif b == 15:
            expected = (
                dist.sf(c[-1])
                + integrate.quad(lambda z: (z - c[-2]) / (c[-1] - c[-2]) * dist.pdf(z), c[-2], c[-1])[0]
            )
        else:
            lo, mid, hi = c[b - 1], c[b], c[b + 1]
            up = integrate.quad(lambda z, lo=lo, mid=mid: (z - lo) / (mid - lo) * dist.pdf(z), lo, mid)[0]
            down = integrate.quad(lambda z, mid=mid, hi=hi: (hi - z) / (hi - mid) * dist.pdf(z), mid, hi)[0]
            expected = up + down
        assert q[b] == pytest.approx(expected, abs=1e-7), (name, b)
    assert np.abs(q[2:-2] - 1 / 16).max() < 0.2 / 16


@pytest.mark.parametrize("name", PRIORS)
def test_prior_kl_on_quantile_bins_is_the_histogram_kl_with_its_gradient(name):
    """`prior_kl` with uneven centres (its closed-form backward) against plain autograd through a reference
    linear binning written here."""
    prior = Prior(name)
    bins = 64
    centers = prior.quantile_centers(bins).float()
    log_q = smoothed_log(prior.bin_masses(centers.double()).float())
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4000, generator=gen).pow(3).requires_grad_(True)  # heavy-tailed: off every prior

    def reference(w):
        z = w / w.pow(2).mean().sqrt()
        idx = torch.searchsorted(centers, z.detach(), right=True).sub(1).clamp(0, bins - 2)
        frac = ((z - centers[idx]) / (centers[idx + 1] - centers[idx])).clamp(0, 1)
        hist = torch.zeros(bins).index_add(0, idx, 1 - frac).index_add(0, idx + 1, frac) / z.numel()
        return kl_to_log_prior(hist, log_q)

    ours = prior_kl(w, bins, 4.0, log_q, prior=prior, centers=centers)
    (g_ours,) = torch.autograd.grad(ours, w)
    ref = reference(w)
    (g_ref,) = torch.autograd.grad(ref, w)
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-9)
    assert float(ref.detach()) > 0.01  # the weights are off the prior: a real test of the gradient


def test_soft_histogram_sums_to_one_and_splits_mass_linearly():
    z = torch.tensor([-10.0, -1.0, 0.0, 0.25, 10.0])
    h = soft_histogram(z, bins=5, z_max=1.0)  # centres -1, -0.5, 0, 0.5, 1
    np.testing.assert_allclose(h.numpy(), np.array([2.0, 0.0, 1.5, 0.5, 1.0]) / 5, atol=1e-7)


@pytest.mark.parametrize("name", PRIORS)
def test_prior_samples_give_a_small_kl_and_a_quantile_exact_init(name):
    prior = Prior(name)
    w = torch.empty(20000).uniform_(-0.3, 0.3)
    prior_shaped_(w, prior)
    z = w / rms(w)
    q = prior.bin_masses(bin_centers(128, 4.0))
    assert float(kl_to_prior(soft_histogram(z, 128, 4.0), q)) < 2e-3
    for r in (0.5, 0.9, 0.98):
        assert float((z.abs() < prior.threshold(r)).double().mean()) == pytest.approx(r, abs=2 / 20000)
    assert kl_to_prior(q, q).item() == pytest.approx(0.0, abs=1e-9)


def test_kl_gradient_flows_to_every_weight_inside_the_grid():
    torch.manual_seed(0)
    w = torch.randn(5000, requires_grad=True)
    prior = Prior("laplace")
    kl = kl_to_prior(soft_histogram(w / rms(w), 64, 4.0), prior.bin_masses(bin_centers(64, 4.0)))
    kl.backward()
    kl = kl.detach()
    assert torch.isfinite(w.grad).all()
    assert (w.grad[w.detach().abs() < 3.0] != 0).float().mean() > 0.99
    # a gradient step on the KL alone lowers it
    with torch.no_grad():
        w2 = w - 50.0 * w.grad
    kl2 = kl_to_prior(soft_histogram(w2 / rms(w2), 64, 4.0), prior.bin_masses(bin_centers(64, 4.0)))
    assert float(kl2) < float(kl)


def test_interval_histogram_measures_mass_between_thresholds():
    z = torch.linspace(-2, 2, 4001)
    edges = torch.tensor([0.5, 1.0, 1.5])
    h = interval_histogram(z, edges, sigma=1e4)
    np.testing.assert_allclose(h.numpy(), [0.25, 0.25, 0.25, 0.25], atol=1e-3)


def test_band_stop_soft_tends_to_the_hard_step():
    w = torch.tensor([-2.0, -0.9, -0.5, 0.0, 0.5, 1.1, 3.0])
    a = torch.tensor(1.0)
    hard = band_stop(w, a, None)
    assert hard.tolist() == [1, 0, 0, 0, 0, 1, 1]
    assert torch.allclose(band_stop(w, a, 1e4), hard)
    soft = band_stop(w, a, 10.0)
    assert bool(((soft >= 0) & (soft <= 1)).all()) and 0 < float(soft[1]) < 1
    assert soft[2] < soft[1] < soft[5]  # monotone in |w|
    assert band_stop(w, torch.tensor(0.0), 10.0).eq(1).all()  # a = 0 (rate 0) keeps everything


def test_sigma_schedules():
    assert sigma_at(10, 100, "constant", 0.7) == 10
    assert sigma_at(10, None, "exp", 0.7) == 10
    assert sigma_at(10, 100, "linear", 0.5) == pytest.approx(55)
    assert sigma_at(10, 100, "exp", 0.5) == pytest.approx(math.sqrt(1000))
    assert sigma_at(10, 100, "exp", 1.0) == pytest.approx(100)
    assert sigma_at(10, 100, "exp", 2.0) == pytest.approx(100)  # clamped
    with pytest.raises(ValueError):
        sigma_at(10, 100, "cosine", 0.5)
