"""Shared machinery of the band-stop methods (SRMP, MRMP; TCMP reuses the band-stop and σ schedule).

- `Prior`: a symmetric zero-mean, unit-variance prior on RMS-standardised weights `z = w / rms(w)`, with its
  quantile mapping `a(r) = F⁻¹((1 + r)/2)` (the threshold on |z| that removes a fraction r of the weights when z
  follows the prior), its quantile function (for the prior-shaped initialisation) and its bin masses.
- `soft_histogram`: a differentiable density estimate by linear binning (a triangular-kernel soft histogram on a
  fixed grid of bin centres, O(n) with one `index_add`).
- `kl_to_prior`: `D_KL(P ‖ Q) = Σ_b P_b log(P_b / Q_b)` between that histogram and the prior's bin masses.
- `band_stop`: `ψ_{a,σ}(w) = sigmoid(σ·(|w|/a − 1))` while training, the hard step `1{|w| > a}` at evaluation.
- `sigma_at`: σ on a constant / linear / exponential schedule.

Paper: H. Sahbi, "One-Shot Multi-Rate Pruning of Graph Convolutional Networks" (band-stop ψ, KL prior, a(r)).
The exact forms above are our documented design (docs/methods.md), not the paper's equations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import stable_argsort

PRIORS = ("uniform", "gaussian", "laplace")
SIGMA_SCHEDULES = ("constant", "linear", "exp")

_SQRT3 = math.sqrt(3.0)
_LAPLACE_BETA = 1.0 / math.sqrt(2.0)  # laplace(0, β) has variance 2β² = 1


@dataclass(frozen=True)
class Prior:
    """A unit-variance symmetric prior by name: `uniform` U[−√3, √3], `gaussian` N(0, 1), `laplace` (0, 1/√2)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in PRIORS:
            raise ValueError(f"unknown prior {self.name!r}; choose one of: {', '.join(PRIORS)}")

    @property
    def scale(self) -> float:
        """b (uniform half-width), s (gaussian std) or β (laplace scale) of the unit-variance prior."""
        return {"uniform": _SQRT3, "gaussian": 1.0, "laplace": _LAPLACE_BETA}[self.name]

    def threshold(self, rate: float | Tensor) -> Tensor:
        """a(r) = F⁻¹((1 + r)/2): |z| < a(r) holds for a fraction r of prior samples. Monotone in r."""
        r = torch.as_tensor(rate, dtype=torch.float64)
        if self.name == "uniform":
            return r * _SQRT3
        if self.name == "gaussian":
            return math.sqrt(2.0) * torch.special.erfinv(r)
        return -_LAPLACE_BETA * torch.log1p(-r)

    def cdf(self, z: Tensor) -> Tensor:
        """F(z), in z's dtype (a new tensor)."""
        if self.name == "uniform":
            return ((z + _SQRT3) / (2 * _SQRT3)).clamp(0.0, 1.0)
        if self.name == "gaussian":
            return torch.special.ndtr(z)
        half = 0.5 * torch.exp(-z.abs() / _LAPLACE_BETA)
        return torch.where(z < 0, half, 1.0 - half)

    def ppf(self, p: Tensor) -> Tensor:
        """The quantile function F⁻¹(p) for p in (0, 1)."""
        p = p.double()
        if self.name == "uniform":
            return (2.0 * p - 1.0) * _SQRT3
        if self.name == "gaussian":
            return math.sqrt(2.0) * torch.special.erfinv(2.0 * p - 1.0)
        q = p - 0.5
        return -_LAPLACE_BETA * torch.sign(q) * torch.log1p(-2.0 * q.abs())

    def _second_antiderivative(self, x: Tensor) -> Tensor:
        """G(x) = ∫_{−∞}^{x} F(t) dt, in closed form: the bin masses of a triangular kernel need only G."""
        x = x.double()
        if self.name == "uniform":
            b = _SQRT3
            return torch.where(x < -b, torch.zeros_like(x), torch.where(x > b, x, (x + b) ** 2 / (4 * b)))
        if self.name == "gaussian":
            cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
            pdf = torch.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)
            return x * cdf + pdf
        beta = _LAPLACE_BETA
        return torch.where(x < 0, 0.5 * beta * torch.exp(x / beta), x + 0.5 * beta * torch.exp(-x / beta))

    def bin_masses(self, centers: Tensor) -> Tensor:
        """Q_b: the prior mass that linear binning on increasing `centers` gives bin b, exactly.

        Bin b weighs z by the hat function rising from c_{b−1} to c_b and falling to c_{b+1}, so with
        s_b = (G(c_{b+1}) − G(c_b)) / (c_{b+1} − c_b), the mean of F over [c_b, c_{b+1}]: Q_b = s_b − s_{b−1}; the
        two edge bins also take the tails (values beyond the grid are clamped onto it), which gives Q_0 = s_0
        and Q_last = 1 − s_{last−1}. Equally spaced centres: Q_b = (G(c+Δ) − 2G(c) + G(c−Δ)) / Δ.
        """
        c = centers.double()
        g = self._second_antiderivative(c)
        slopes = g.diff() / c.diff()  # s_b, b = 0 .. B−2
        q = torch.empty_like(c)
        q[0] = slopes[0]
        q[1:-1] = slopes[1:] - slopes[:-1]
        q[-1] = 1.0 - slopes[-1]
        return q.clamp_min(0.0)

    def quantile_centers(self, bins: int) -> Tensor:
        """`bins` centres at the prior's quantiles (b + ½)/bins: equiprobable bins, as fine in rate at every
        threshold a(r) as anywhere else."""
        return self.ppf((torch.arange(bins, dtype=torch.float64) + 0.5) / bins)


def bin_centers(bins: int, z_max: float) -> Tensor:
    """`bins` equally spaced centres from −z_max to z_max."""
    return torch.linspace(-z_max, z_max, bins, dtype=torch.float64)


def rms(w: Tensor) -> Tensor:
    """Root mean square of all entries (the per-layer scale the prior is applied at)."""
    return w.pow(2).mean().sqrt().clamp_min(1e-12)


def soft_histogram(z: Tensor, bins: int, z_max: float) -> Tensor:
    """Linear binning of the flattened `z` on `bins` centres over [−z_max, z_max]: probabilities summing to 1.

    Each value splits its unit mass between its two nearest centres in proportion to proximity (a triangular
    kernel), so the histogram is piecewise linear, hence differentiable almost everywhere, in every value.
    Values beyond the grid are clamped onto the edge centres (the edge bins hold the tails).
    """
    z = z.reshape(-1)
    delta = 2.0 * z_max / (bins - 1)
    u = ((z.clamp(-z_max, z_max) + z_max) / delta).clamp(0, bins - 1)
    lo = u.detach().floor().clamp(max=bins - 2)
    frac = u - lo
    idx = lo.long()
    hist = z.new_zeros(bins)
    hist = hist.index_add(0, idx, 1.0 - frac).index_add(0, idx + 1, frac)
    return hist / z.numel()


def interval_histogram(z: Tensor, edges: Tensor, sigma: float) -> Tensor:
    """Soft masses of |z| in the K+1 intervals cut by increasing `edges` a_1 < ... < a_K, each edge softened by
    the band-stop ψ_{a,σ}: [1 − m̄_1, m̄_1 − m̄_2, ..., m̄_K] with m̄_k = mean ψ_{a_k,σ}(z), the soft kept fraction."""
    return interval_histogram_slopes(z, edge_slopes(edges, sigma, z.dtype), sigma)


def edge_slopes(edges: Tensor, sigma: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """(K, 1) slopes σ / a_k of the soft edges (a constant of training: computed once by the methods)."""
    return sigma / edges.to(dtype).clamp_min(1e-12).reshape(-1, 1)


def interval_histogram_slopes(z: Tensor, slopes: Tensor, sigma: float) -> Tensor:
    """`interval_histogram` with the edges given as their slopes σ / a_k (see `edge_slopes`)."""
    # (K,) soft kept fractions ψ_{a_k,σ}, every edge in one pass
    kept = torch.sigmoid(z.reshape(1, -1).abs() * slopes - sigma).mean(1)
    one = kept.new_ones(1)
    return torch.cat([one - kept[:1], kept[:-1] - kept[1:], kept[-1:]])


def kl_to_prior(p: Tensor, q: Tensor, eps: float = 1e-4) -> Tensor:
    """D_KL(P ‖ Q) with both smoothed as (x + ε)/(1 + Bε), so empty bins and zero prior mass stay finite."""
    return kl_to_log_prior(p, smoothed_log(q.to(p.dtype), eps), eps)


def smoothed_log(q: Tensor, eps: float = 1e-4) -> Tensor:
    """log((q + ε)/(1 + Bε)): the prior side of `kl_to_prior` (a constant: computed once by the methods)."""
    return ((q + eps) / (1.0 + q.numel() * eps)).log()


def kl_to_log_prior(p: Tensor, log_q: Tensor, eps: float = 1e-4) -> Tensor:
    """`kl_to_prior` with the prior given as `smoothed_log(q)`."""
    b = p.numel()
    p = (p + eps) / (1.0 + b * eps)
    return (p * (p.log() - log_q)).sum()


class _PriorKL(torch.autograd.Function):
    """KL(P ‖ Q) + α KL(P_c ‖ Q_c) of z = w / rms(w), with its gradient in closed form.

    Forward: exactly `kl_to_prior(soft_histogram(z))` + α `kl_to_prior(interval_histogram(z))` (same operations,
    same values) for equally spaced centres; with `centers` at the prior's quantiles, the same linear binning on
    that uneven grid (each value's interval located through the prior's `cdf`). Backward, with g_b = ∂KL/∂P_b and
    h_j = ∂KL_c/∂P_c,j:
    ∂KL/∂z_i = (g[lo_i + 1] − g[lo_i]) / (n Δ_{lo_i}) inside the grid (linear binning moves mass between two bins),
    ∂KL_c/∂z_i = sign(z_i) Σ_k (h_{k+1} − h_k) σ'_ki slope_k / n, and through the RMS
    ∂L/∂w = (G − (G·z) z / n) / rms(w). A dozen tensor operations instead of ~40 autograd nodes per step.
    """

    @staticmethod
    def forward(ctx, w, bins, z_max, log_q, slopes, sigma, log_q_coarse, alpha, eps, centers, cdf):  # type: ignore[override]
        flat = w.reshape(-1)
        n = flat.numel()
        s = rms(flat)
        z = flat / s
        if centers is None:  # equally spaced centres over ±z_max: arithmetic binning
            delta = 2.0 * z_max / (bins - 1)
            v = z.clamp(-z_max, z_max).add_(z_max).div_(delta)
            u = v.clamp(0, bins - 1)
            lo = u.floor().clamp_(max=bins - 2)
            frac = u - lo
            idx = lo.long()
            inside = None
        else:  # centres at the prior's quantiles (b + ½)/B: z lies between c_b and c_{b+1} for b = ⌊B·F(z) − ½⌋
            idx = cdf(z).mul_(bins).sub_(0.5).floor_().clamp_(0, bins - 2).long()
            widths = centers.diff()
            frac = ((z - centers.index_select(0, idx)) / widths.index_select(0, idx)).clamp_(0.0, 1.0)
            inside = (z >= centers[0]) & (z <= centers[-1])
        hist = z.new_zeros(bins)
        hist.index_add_(0, idx, 1.0 - frac)
        hist[1:].index_add_(0, idx, frac)  # the upper neighbour's share, at idx + 1
        hist = hist / n
        p = (hist + eps) / (1.0 + bins * eps)
        dp = p.log() - log_q
        kl = (p * dp).sum()
        zabs = z.abs() if slopes is not None or ctx.needs_input_grad[0] else None
        sig = None
        if slopes is not None:
            # (K, n): ψ_{a_k,σ}(z_i) = sigmoid(slope_k |z_i| − σ). The argument is clamped at −40 (ψ ≥ 4·10⁻¹⁸):
            # far under an edge ψ would underflow to float32 denormals, whose arithmetic takes the CPU's slow path
            # (2× this term's time with 11 edges); terms that small leave every sum below unchanged to its last digit
            sig = torch.addr(zabs.new_tensor(-sigma), slopes.reshape(-1), zabs).clamp_(min=-40.0).sigmoid_()
            kept = sig.mean(1)
            hc = torch.cat([1.0 - kept[:1], kept[:-1] - kept[1:], kept[-1:]])
            k1 = hc.numel()
            pc = (hc + eps) / (1.0 + k1 * eps)
            dpc = pc.log() - log_q_coarse
            kl = kl + alpha * (pc * dpc).sum()
        if not ctx.needs_input_grad[0]:
            return kl
        g = (dp + 1.0) / (1.0 + bins * eps) / n  # ∂KL/∂(unnormalised bin mass)
        if centers is None:
            dg = (g[1:] - g[:-1]) / delta  # moving mass from bin lo to lo + 1, per unit of z
            # inside the grid (clamp's gradient is 1 from min to max, both included; v >= 0 always)
            grad_z = dg.index_select(0, idx).mul_((zabs <= z_max) & (v <= bins - 1))
        else:
            dg = (g[1:] - g[:-1]) / widths
            grad_z = dg.index_select(0, idx).mul_(inside)
        if sig is not None:
            h = (dpc + 1.0) / (1.0 + k1 * eps)
            coef = (h[1:] - h[:-1]) * slopes.reshape(-1) / n  # ∂KL_c/∂mean_k, times slope_k / n
            grad_abs = coef @ sig.addcmul_(sig, sig, value=-1.0)  # Σ_k coef_k σ'(t_ki); σ' = σ − σ², in place
            grad_z.add_(torch.sign(z).mul_(grad_abs), alpha=alpha)
        # through z = w / rms(w) (a clamped RMS is a constant: no second term)
        c = (grad_z @ z) * (s > 1e-12) / n
        grad_w = torch.addcmul(grad_z, z, c, value=-1.0).div_(s)
        ctx.save_for_backward(grad_w.view_as(w))
        return kl

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (grad_w,) = ctx.saved_tensors
        return (grad * grad_w, *([None] * 10))


def prior_kl(
    w: Tensor,
    bins: int,
    z_max: float,
    log_q: Tensor,
    slopes: Tensor | None = None,
    sigma: float = 0.0,
    log_q_coarse: Tensor | None = None,
    alpha: float = 0.0,
    eps: float = 1e-4,
    prior: Prior | None = None,
    centers: Tensor | None = None,
) -> Tensor:
    """KL(P ‖ Q) of z = w / rms(w) on the soft histogram (`soft_histogram`, prior `log_q` = `smoothed_log(Q)`),
    plus α times the KL of its threshold-anchored coarse histogram (`interval_histogram` with the edges given as
    `edge_slopes`, prior `log_q_coarse`) when `slopes` is given; differentiable in w (closed-form gradient,
    computed with the value: call it once per backward). `centers`: the bin centres when they are the `prior`'s
    quantiles (`Prior.quantile_centers`); None: `bins` centres equally spaced over ±z_max."""
    cdf = prior.cdf if centers is not None and prior is not None else None
    if centers is not None and cdf is None:
        raise ValueError("quantile centres need their prior (its CDF locates each weight's bin)")
    return _PriorKL.apply(w, bins, z_max, log_q, slopes, sigma, log_q_coarse, alpha, eps, centers, cdf)


def band_stop(w: Tensor, a: Tensor, sigma: float | None) -> Tensor:
    """ψ_{a,σ}(w): sigmoid(σ·(|w|/a − 1)) when σ is given (training), else the hard step 1{|w| > a}.

    `a` broadcasts against `w` (a scalar, or (R, 1, 1) for a batch of rates). a = 0 keeps every weight.
    """
    if sigma is None:
        return (w.abs() > a).to(w.dtype)
    a = torch.as_tensor(a, dtype=w.dtype, device=w.device)
    return torch.where(a > 0, soft_band_stop(w, a, sigma), torch.ones_like(w))


def soft_band_stop(w: Tensor, a: Tensor, sigma: float) -> Tensor:
    """sigmoid(σ·(|w|/a − 1)): `band_stop` in training for a threshold known to be positive (rate > 0).

    No gradient flows to `a` (a threshold is a target). One autograd node: the backward applies autograd's
    own chain (sigmoid', ×σ, ÷a, ×sign w) in the same order, so the gradient is the same."""
    return _SoftBandStop.apply(w, a.detach().clamp_min(1e-12), sigma)


class _SoftBandStop(torch.autograd.Function):
    """sigmoid(σ·(|w|/a − 1)) with `a` broadcast against `w`: a scalar, or (R, 1) against w (N,) for R masks (R, N),
    whose gradients to w add up."""

    @staticmethod
    def forward(ctx, w, a, sigma):  # type: ignore[override]
        m = (w.abs() / a).sub_(1.0).mul_(sigma).sigmoid_()
        ctx.save_for_backward(w, m, a)
        ctx.sigma = sigma
        return m

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        w, m, a = ctx.saved_tensors
        grad_w = torch.ops.aten.sigmoid_backward(grad, m).mul_(ctx.sigma).div_(a)
        if grad_w.dim() > w.dim():  # R masks of one weight vector
            grad_w = grad_w.sum(0)
        return grad_w.mul_(torch.sgn(w)), None, None


def soft_band_stop_rates(w: Tensor, a: Tensor, sigma: float) -> Tensor:
    """`soft_band_stop` of one weight vector w (N,) at R positive thresholds a (R,) at once: (R, N), one autograd
    node whose gradient to w sums the R masks' gradients (several rates trained in one step)."""
    return _SoftBandStop.apply(w, a.detach().clamp_min(1e-12).unsqueeze(1), sigma)


def sigma_at(start: float, end: float | None, schedule: str, progress: float) -> float:
    """σ after a fraction `progress` ∈ [0, 1] of the pruning epochs: constant, linear or geometric (exp)."""
    if schedule == "constant" or end is None:
        return start
    p = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return start + (end - start) * p
    if schedule == "exp":
        return start * (end / start) ** p
    raise ValueError(f"unknown sigma schedule {schedule!r}; choose one of: {', '.join(SIGMA_SCHEDULES)}")


def prior_shaped_(w: Tensor, prior: Prior) -> None:
    """Reshape `w` in place onto the prior: keep the order of its entries and its RMS, replace the values by the
    prior's quantiles at the mid-ranks. The KL then starts near 0 and a(r) meets the rate from the first step."""
    with torch.no_grad():
        flat = w.reshape(-1)
        n = flat.numel()
        order = stable_argsort(flat)
        p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        values = prior.ppf(p)
        values = values / values.pow(2).mean().sqrt()
        out = torch.empty_like(flat)
        out[order] = (values * float(rms(flat))).to(flat.dtype).to(flat.device)
        w.copy_(out.reshape(w.shape))


class WarmupSigmaSchedule:
    """Mixin shared by the band-stop methods (SRMP/MRMP, TCMP): a dense warm-up of `params.warmup_epochs`,
    then σ annealed from `params.sigma` to `params.sigma_end` (`params.sigma_schedule`) over the rest."""

    _epoch: int = 0

    @property
    def pruning(self) -> bool:
        """False during the dense warm-up."""
        return self._epoch >= self.params.warmup_epochs  # type: ignore[attr-defined]

    def sigma(self) -> float:
        """The current band-stop steepness."""
        p = self.params  # type: ignore[attr-defined]
        span = max(1, self.epochs - p.warmup_epochs)  # type: ignore[attr-defined]
        return sigma_at(p.sigma, p.sigma_end, p.sigma_schedule, (self._epoch - p.warmup_epochs) / span)

    def end_epoch(self, epoch: int, total: int) -> None:
        self._epoch = epoch
