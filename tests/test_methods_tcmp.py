"""TCMP: the consistent-budget search, zero disconnected connections, the surrogate, training masks."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mrmp.methods.mp import MagnitudePruning, MPParams
from mrmp.methods.tcmp import TCMP, TCMPParams, consistent_topk
from mrmp.model import build_model, consistent_masks, integrity


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("small", 12, 30, 8, torch.ones(30, 30))


def _brute_force_k(scores, in_repeats, rate):
    """The largest k whose top-k raw mask has a consistent mask within budget, by trying every k."""
    flat = torch.cat([s.reshape(-1) for s in scores])
    n = flat.numel()
    order = torch.argsort(flat, descending=True, stable=True)
    budget = n - round(rate * n)
    best = 0
    for k in range(n + 1):
        keep = torch.zeros(n)
        keep[order[:k]] = 1
        masks, start = [], 0
        for s in scores:
            masks.append(keep[start : start + s.numel()].view_as(s))
            start += s.numel()
        if sum(int(c.sum()) for c in consistent_masks(masks, in_repeats)) <= budget:
            best = k
    return best


@pytest.mark.parametrize("seed", range(3))
def test_search_matches_brute_force_on_a_tiny_unit_graph(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = [
        torch.rand(3, 4, generator=gen),
        torch.rand(4, 4, generator=gen),
        torch.rand(8, 3, generator=gen),
    ]
    in_repeats = [1, 1, 2]  # the last layer's input tiles the previous 4 units twice (like the FC over nodes)
    rates = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95]
    masks, k = consistent_topk(scores, in_repeats, rates)
    assert k.tolist() == [_brute_force_k(scores, in_repeats, r) for r in rates]
    for hint in (k + 3, k - 2, torch.zeros_like(k), torch.full_like(k, 100)):
        assert torch.equal(consistent_topk(scores, in_repeats, rates, hint.clamp(min=0))[1], k)
    for m in masks:
        assert bool((m[1:] <= m[:-1]).all())  # nested across rates


@pytest.mark.parametrize("rate", [0.9, 0.95, 0.98, 0.99])
def test_zero_disconnected_and_budget_met_where_mp_disconnects(rate):
    model = _model()
    tcmp = TCMP(TCMPParams(rate=rate), model, epochs=1)
    rep = integrity(tcmp.eval_masks_batch([rate]), tcmp.in_repeats)
    assert int(rep.disconnected[0]) == 0 and bool(rep.path_exists[0])
    assert rate <= float(rep.effective_rate[0]) <= rate + 0.01
    assert float(rep.observed_rate[0]) == float(rep.effective_rate[0])
    if rate == 0.99:  # plain magnitude pruning of the same weights keeps disconnected connections
        mp = MagnitudePruning(MPParams(), model, epochs=1)
        assert int(integrity(mp.eval_masks_batch([rate]), mp.in_repeats).disconnected[0]) > 0


def test_threshold_meets_the_budget_and_warm_start_agrees():
    tcmp = TCMP(TCMPParams(rate=0.95), _model(), epochs=1)
    t = tcmp.threshold(0.95)
    again = tcmp.threshold(0.95)  # now warm-started from the first search
    assert float(t) == float(again)
    hard = [(w.detach().abs() > t).float() for w in tcmp.model.prunable_weights()]
    kept = sum(int(c.sum()) for c in consistent_masks(hard, tcmp.in_repeats))
    n = sum(h.numel() for h in hard)
    assert kept <= n - round(0.95 * n)


@pytest.mark.parametrize("surrogate", ["straight_through", "smooth"])
def test_train_masks_are_consistent_and_differentiable(surrogate):
    tcmp = TCMP(TCMPParams(rate=0.98, surrogate=surrogate), _model(), epochs=10)
    masks = tcmp.train_masks(0.98)
    x = torch.randn(4, 30, 12)
    F.cross_entropy(tcmp.model(x, masks), torch.tensor([0, 1, 2, 3])).backward()
    for w in tcmp.model.prunable_weights():
        assert torch.isfinite(w.grad).all() and float(w.grad.abs().sum()) > 0


def test_straight_through_train_masks_equal_eval_masks_when_sharp():
    tcmp = TCMP(TCMPParams(rate=0.95, sigma=1e6, sigma_end=None), _model(), epochs=10)
    train = [(m.detach() > 0.5).float() for m in tcmp.train_masks(0.95)]
    for a, b in zip(train, tcmp.eval_masks(0.95)):
        assert torch.equal(a, b)


def test_surrogate_sends_gradient_to_edges_that_would_reconnect_a_unit():
    """With h's surrogate, a unit whose inputs were all pruned still gets gradient through its input edges."""
    tcmp = TCMP(TCMPParams(rate=0.99), _model(), epochs=10)
    masks = tcmp.train_masks(0.99)
    loss = sum(m.sum() for m in masks)  # more consistent mass is better for this probe
    loss.backward()
    w = tcmp.model.prunable_weights()[0]
    assert float(w.grad.abs().sum()) > 0


def test_budget_penalty_and_warmup():
    tcmp = TCMP(TCMPParams(rate=0.9, budget_weight=10.0, warmup_epochs=1), _model(), epochs=5)
    gen = torch.Generator()
    assert tcmp.step_rates(gen) == [None] and tcmp.train_masks(None) is None and tcmp.regularizer() is None
    tcmp.end_epoch(1, 5)
    assert tcmp.step_rates(gen) == [0.9]
    tcmp.train_masks(0.9)
    reg = tcmp.regularizer()
    assert reg is not None and 0.0 <= float(reg.detach()) < 10.0
