"""TCMP: the consistent-budget search, zero disconnected connections, the surrogate, training masks."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mrmp.methods.mp import MagnitudePruning, MPParams
from mrmp.methods.tcmp import TCMP, TCMPParams, consistent_topk
from mrmp.model import build_model, consistent_masks, hard_step, propagate
from mrmp.testing.contract import graph_search


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
    """Counted by the explicit graph search (mrmp.testing.contract.graph_search), not by the propagation code that
    built the masks."""
    model = _model()
    tcmp = TCMP(TCMPParams(rate=rate), model, epochs=1)
    masks = [m[0] for m in tcmp.eval_masks_batch([rate])]
    bad, accessible, _ = graph_search(masks, tcmp.in_repeats)
    assert not bad and any((len(masks), u) in accessible for u in range(masks[-1].shape[1]))
    n = sum(m.numel() for m in masks)
    kept = sum(int(m.sum()) for m in masks)
    assert kept <= n - round(rate * n) and 1 - kept / n <= rate + 0.01
    if rate == 0.99:  # plain magnitude pruning of the same weights keeps disconnected connections
        mp = MagnitudePruning(MPParams(), model, epochs=1)
        assert graph_search([m[0] for m in mp.eval_masks_batch([rate])], mp.in_repeats)[0]


def test_threshold_meets_the_budget_and_warm_start_agrees():
    tcmp = TCMP(TCMPParams(rate=0.95), _model(), epochs=1)
    t = tcmp.threshold(0.95)
    again = tcmp.threshold(0.95)  # now warm-started from the first search
    assert float(t) == float(again)
    hard = [(w.detach().abs() > t).float() for w in tcmp.model.prunable_weights()]
    kept = sum(int(c.sum()) for c in consistent_masks(hard, tcmp.in_repeats))
    n = sum(h.numel() for h in hard)
    assert kept <= n - round(0.95 * n)


@pytest.mark.parametrize("rate", [0.9, 0.98])
@pytest.mark.parametrize("surrogate", ["straight_through", "smooth"])
def test_train_masks_are_consistent_and_differentiable(surrogate, rate):
    """With the straight-through surrogate (the default), the connections a training forward keeps (mask > ½)
    are all accessible and co-accessible (graph search) and are exactly the consistent mask of the magnitude
    mask at the same threshold. (The smooth surrogate is soft inside the propagation: no such claim.) The loss
    reaches every layer with either."""
    tcmp = TCMP(TCMPParams(rate=rate, surrogate=surrogate), _model(), epochs=10)
    masks = tcmp.train_masks(rate)
    if surrogate == "straight_through":
        kept = [(m.detach() > 0.5).float() for m in masks]
        assert not graph_search(kept, tcmp.in_repeats)[0]
        t = tcmp.threshold(rate)
        raw = [(w.detach().abs() > t).float() for w in tcmp.model.prunable_weights()]
        for k, c in zip(kept, consistent_masks(raw, tcmp.in_repeats)):
            assert torch.equal(k, c)
        if rate == 0.98:  # where the magnitude mask alone keeps disconnected connections
            assert any(bool((r != c).any()) for r, c in zip(raw, consistent_masks(raw, tcmp.in_repeats)))
    x = torch.randn(4, 30, 12)
    F.cross_entropy(tcmp.model(x, masks), torch.tensor([0, 1, 2, 3])).backward()
    for w in tcmp.model.prunable_weights():
        assert torch.isfinite(w.grad).all() and float(w.grad.abs().sum()) > 0


def test_straight_through_train_masks_equal_eval_masks_when_sharp():
    tcmp = TCMP(TCMPParams(rate=0.95, sigma=1e6, sigma_end=None), _model(), epochs=10)
    train = [(m.detach() > 0.5).float() for m in tcmp.train_masks(0.95)]
    for a, b in zip(train, tcmp.eval_masks(0.95)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("surrogate", ["straight_through", "smooth"])
def test_surrogate_sends_gradient_to_edges_that_would_reconnect_a_unit(surrogate):
    """Unit 1 of the hidden layer has no kept input: with the hard step its input edges get no gradient from
    the propagation; with TCMP's surrogate h they do, so training can reconnect it. The masks are leaves (no
    band-stop in between), so the gradient can only come from the supervisory networks."""
    tcmp = TCMP(TCMPParams(surrogate=surrogate), _model(), epochs=10)
    in_repeats = [1, 1]

    def grad_into_dead_unit(h):
        m1 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], requires_grad=True)  # 3 inputs -> 2 hidden
        m2 = torch.tensor([[1.0], [1.0]], requires_grad=True)  # both hidden units -> the output
        alpha, beta = propagate([m1, m2], in_repeats, h)
        consistent = m2 * alpha[1].unsqueeze(-1) * beta[1].unsqueeze(-2)
        consistent.sum().backward()  # more consistent mass is better for this probe
        return torch.zeros(3) if m1.grad is None else m1.grad[:, 1]

    assert torch.equal(grad_into_dead_unit(hard_step), torch.zeros(3))
    assert bool((grad_into_dead_unit(tcmp._surrogate()) > 0).all())


def test_budget_penalty_and_warmup():
    """The penalty is λ_b ((Σ M̃ − (1 − r)N) / N)² of the training forward's soft consistent masks, and its
    gradient moves the kept mass towards the budget."""
    tcmp = TCMP(TCMPParams(rate=0.9, budget_weight=10.0, warmup_epochs=1), _model(), epochs=5)
    gen = torch.Generator()
    assert tcmp.step_rates(gen) == [None] and tcmp.train_masks(None) is None and tcmp.regularizer() is None
    tcmp.end_epoch(1, 5)
    assert tcmp.step_rates(gen) == [0.9]
    masks = tcmp.train_masks(0.9)
    n = sum(m.numel() for m in masks)
    kept = float(sum(m.detach().sum() for m in masks))
    reg = tcmp.regularizer()
    assert float(reg.detach()) == pytest.approx(10.0 * ((kept - 0.1 * n) / n) ** 2, rel=1e-5)
    reg.backward()
    # every kept mass grows with |w| (band-stop and surrogate are monotone), so the penalty's gradient along
    # |w| has the sign of the budget's excess: it shrinks weights when over budget, grows them when under
    excess = 1.0 if kept > 0.1 * n else -1.0
    along = torch.cat([(w.grad * w.detach().sign()).reshape(-1) for w in tcmp.model.prunable_weights()])
    assert bool((along * excess >= 0).all()) and float(along.abs().sum()) > 0


def test_without_consistency_it_is_global_magnitude_pruning_trained_end_to_end():
    """The ablation: the same band-stop training at the plain magnitude threshold; its eval masks are global MP
    masks of the latent weights (which keep disconnected connections at 0.99), and no propagation in training."""
    model = _model()
    tcmp = TCMP(TCMPParams(rate=0.99, consistency=False), model, epochs=10)
    mp = MagnitudePruning(MPParams(), model, epochs=1)
    rates = [0.5, 0.9, 0.99]
    for a, b in zip(tcmp.eval_masks_batch(rates), mp.eval_masks_batch(rates)):
        assert torch.equal(a, b)
    assert graph_search([m[-1] for m in tcmp.eval_masks_batch(rates)], tcmp.in_repeats)[0]
    t = tcmp.threshold(0.99)
    for mask, w in zip(tcmp.train_masks(0.99), model.prunable_weights()):
        torch.testing.assert_close(mask, torch.sigmoid(tcmp.sigma() * (w.abs() / t - 1)))
