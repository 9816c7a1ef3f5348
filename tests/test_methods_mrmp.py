"""MRMP: shared weights for many rates, the sampling schemes, nested masks, seen/unseen tags, config checks."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from mrmp.config import ConfigError, config_from_dict
from mrmp.methods.mrmp import MRMP, MRMPParams, default_seen_rates
from mrmp.methods.srmp import SRMP, BandStopMethod
from mrmp.model import build_model
from mrmp.testing.contract import toy_config, toy_data
from mrmp.train import run


def _method(epochs: int = 10, **params) -> MRMP:
    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.ones(30, 30))
    return MRMP(MRMPParams(**params), model, epochs)


def test_default_seen_rates_are_the_papers():
    assert default_seen_rates() == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98]
    assert issubclass(MRMP, BandStopMethod) and issubclass(SRMP, BandStopMethod)  # shared, not copied


def test_uniform_sampling_is_seeded_distinct_and_covers_the_seen_rates():
    m = _method(sampling="uniform", rates_per_step=3)
    gen = torch.Generator().manual_seed(1)
    draws = [m.step_rates(gen) for _ in range(400)]
    assert all(len(d) == 3 and len(set(d)) == 3 and set(d) <= set(m.seen_rates()) for d in draws)
    counts = Counter(r for d in draws for r in d)
    assert set(counts) == set(m.seen_rates())
    assert max(counts.values()) < 1.5 * min(counts.values())  # about uniform
    again = _method(sampling="uniform", rates_per_step=3)
    gen2 = torch.Generator().manual_seed(1)
    assert [again.step_rates(gen2) for _ in range(400)] == draws


def test_cycle_and_all_sampling():
    seen = [0.5, 0.7, 0.9]
    m = _method(seen_rates=seen, sampling="cycle", rates_per_step=2)
    gen = torch.Generator()
    assert [m.step_rates(gen) for _ in range(3)] == [[0.5, 0.7], [0.9, 0.5], [0.7, 0.9]]
    assert _method(seen_rates=seen, sampling="all").step_rates(gen) == seen
    m = _method(seen_rates=seen, sampling="cycle", warmup_epochs=1)
    assert m.step_rates(gen) == [None]


def test_every_rate_seen_or_not_reads_the_same_trained_weights():
    """After training, the mask at any rate, seen or unseen, is 1{|Ŵ| > rms(Ŵ)·a(r)} on the one set of trained
    weights (a(r) from scipy), and the curve is scored at every grid rate with the seen ones tagged."""
    from scipy import stats

    result = run(toy_config("mrmp", epochs=8), toy_data())
    method = result.trainer.method
    ws = [w.detach() for w in method.model.prunable_weights()]
    s = torch.cat([w.reshape(-1) for w in ws]).double().pow(2).mean().sqrt()
    rates = [0.0] + [round(0.5 + i / 100, 2) for i in range(50)]
    for r, masks in zip(rates, zip(*method.eval_masks_batch(rates))):
        a = float(stats.norm.ppf((1 + r) / 2))  # the default prior: gaussian
        for mask, w in zip(masks, ws):
            # kept entries carry the calibrated per-rate gains (> ½), pruned ones are exactly 0
            assert torch.equal((mask != 0).float(), (w.double().abs() > s * a).float()), r
            assert bool((mask[mask != 0] > 0.5).all()), r
    assert [p.rate for p in result.curve] == rates
    seen = {p.rate for p in result.curve if p.seen}
    assert seen == set(default_seen_rates())
    assert (
        result.summary["val_mean_seen_accuracy"] is not None
        and result.summary["val_mean_unseen_accuracy"] is not None
    )


def test_one_training_serves_every_rate_and_tags_them():
    result = run(toy_config("mrmp", epochs=4, seen_rates=[0.5, 0.9], sampling="all"), toy_data())
    tags = {round(p.rate, 2): p.seen for p in result.curve}
    assert tags[0.5] == 1 and tags[0.9] == 1 and tags[0.7] == 0 and tags[0.99] == 0


@pytest.mark.parametrize(
    "seen, message",
    [
        ([], "at least one"),
        ([0.9, 0.5], "strictly increasing"),
        ([0.5, 0.5], "strictly increasing"),
        ([0.5, 0.555], "not in eval.rates"),
        ([0.5, 1.0], "must be < 1"),
    ],
)
def test_seen_rates_are_checked(seen, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"method": {"name": "mrmp", "seen_rates": seen}})
    assert "method.seen_rates" in str(err.value) and message in str(err.value)


def test_seen_rates_on_a_custom_grid_and_sampling_choices():
    cfg = config_from_dict(
        {"method": {"name": "mrmp", "seen_rates": [0.3, 0.6]}, "eval": {"rates": [0, 0.3, 0.6]}}
    )
    assert cfg.method.params.seen_rates == [0.3, 0.6]
    with pytest.raises(ConfigError, match="uniform, cycle, all"):
        config_from_dict({"method": {"name": "mrmp", "sampling": "random"}})
    with pytest.raises(ConfigError, match="rates_per_step"):
        config_from_dict({"method": {"name": "mrmp", "rates_per_step": 0}})


def test_sandwich_sampling_trains_the_extremes_every_step():
    m = _method(sampling="sandwich", rates_per_step=4)
    seen = m.seen_rates()
    gen = torch.Generator().manual_seed(3)
    draws = [m.step_rates(gen) for _ in range(300)]
    for d in draws:
        assert d[0] == seen[0] and d[-1] == seen[-1] and len(set(d)) == 4 and d == sorted(d)
    middle = Counter(r for d in draws for r in d[1:-1])
    assert set(middle) == set(seen[1:-1])  # every middle rate is drawn
    gen2 = torch.Generator().manual_seed(3)
    assert [_method(sampling="sandwich", rates_per_step=4).step_rates(gen2) for _ in range(300)] == draws
    assert _method(seen_rates=[0.5, 0.9], sampling="sandwich").step_rates(gen) == [0.5, 0.9]


def test_in_place_distillation_loss():
    """The densest rate of the step learns from the labels, the others from its detached softened predictions."""
    from torch.nn import functional as F

    m = _method(distill=True, distill_temperature=2.0)
    y = torch.tensor([0, 1, 2])
    logits = [torch.randn(3, 5, requires_grad=True) for _ in range(3)]
    rates = [0.9, 0.5, 0.98]  # the teacher is the second one (rate 0.5)

    def ce(z):
        return F.cross_entropy(z, y)

    loss = m.task_loss(rates, logits, ce)
    target = F.softmax(logits[1].detach() / 2.0, -1)
    soft = [-(target * F.log_softmax(logits[i] / 2.0, -1)).sum(-1).mean() * 4.0 for i in (0, 2)]
    expected = (ce(logits[1]) + soft[0] + soft[1]) / 3
    torch.testing.assert_close(loss, expected)
    (g_teacher,) = torch.autograd.grad(loss, logits[1], retain_graph=True)
    (g_ce,) = torch.autograd.grad(ce(logits[1]) / 3, logits[1])
    torch.testing.assert_close(g_teacher, g_ce)  # the students' terms send nothing to the teacher
    off = _method(distill=False)
    torch.testing.assert_close(off.task_loss(rates, logits, ce), sum(ce(z) for z in logits) / 3)


def test_epochs_factor_sets_mrmps_training_length_and_its_sigma_schedule():
    """MRMP trains round(epochs_factor × train.epochs) epochs, and its σ reaches sigma_end at its own end; then
    it calibrates its per-rate gains for round(0.15 × train.epochs) epochs (calibrate_epochs' default)."""
    from mrmp.train import Trainer

    cfg = toy_config("mrmp", epochs=10, epochs_factor=1.3)
    trainer = Trainer(cfg, toy_data())
    assert trainer.total_epochs == 13 + 2 and trainer.method.epochs == 13
    trainer.fit(until_epoch=13)
    assert trainer.method.sigma() == pytest.approx(100.0)
    trainer.fit()
    assert trainer.epoch == 15
    assert Trainer(toy_config("mrmp", epochs=10, epochs_factor=1.0), toy_data()).total_epochs == 10 + 2
    off = toy_config("mrmp", epochs=10, epochs_factor=1.0, calibrate_epochs=0)
    assert Trainer(off, toy_data()).total_epochs == 10


def test_rate_power_draws_sparse_networks_more_often():
    m = _method(rate_power=1.0, rates_per_step=1)
    gen = torch.Generator().manual_seed(0)
    counts = Counter(r for _ in range(4000) for r in m.step_rates(gen))
    expected = {r: 1 / (1 - r) for r in m.seen_rates()}
    total = sum(expected.values())
    for r, w in expected.items():  # within 4 standard deviations of the binomial count
        p = w / total
        assert abs(counts[r] - 4000 * p) < 4 * (4000 * p * (1 - p)) ** 0.5, (r, counts[r], 4000 * p)
    gen = torch.Generator().manual_seed(0)
    flat = [_method(rates_per_step=1).step_rates(gen) for _ in range(5)]
    gen = torch.Generator().manual_seed(0)
    assert flat == [[default_seen_rates()[int(torch.randperm(11, generator=gen)[0])]] for _ in range(5)]


def test_negative_rate_power_draws_dense_networks_more_often():
    m = _method(rate_power=-1.0, rates_per_step=1)
    gen = torch.Generator().manual_seed(0)
    counts = Counter(r for _ in range(4000) for r in m.step_rates(gen))
    total = sum(1 - r for r in m.seen_rates())
    for r in m.seen_rates():  # p ∝ (1 − r)^1, within 4 standard deviations
        p = (1 - r) / total
        assert abs(counts[r] - 4000 * p) < 4 * (4000 * p * (1 - p)) ** 0.5, (r, counts[r], 4000 * p)
    assert counts[0.5] > 10 * counts[0.98]


def test_lowest_sampling_trains_the_densest_rate_every_step():
    m = _method(sampling="lowest", rates_per_step=2)
    seen = m.seen_rates()
    gen = torch.Generator().manual_seed(5)
    draws = [m.step_rates(gen) for _ in range(300)]
    assert all(len(d) == 2 and d[0] == seen[0] and d[1] in seen[1:] for d in draws)
    assert {d[1] for d in draws} == set(seen[1:])
    # k = 1: the lowest rate alone
    assert _method(sampling="lowest", rates_per_step=1).step_rates(gen) == [seen[0]]


def test_progressive_shrinking_widens_the_sampled_rates():
    """shrink_epochs: the lowest seen rate alone at the first pruning epoch, then one more rate every
    shrink_epochs / (|seen| − 1) epochs, every seen rate from shrink_epochs on (after any dense warm-up)."""
    m = _method(epochs=30, seen_rates=[0.5, 0.7, 0.9], shrink_epochs=10, warmup_epochs=2)
    gen = torch.Generator().manual_seed(0)
    widths = {}
    for epoch in range(0, 16):
        m.end_epoch(epoch, 30)
        drawn = {r for _ in range(60) for r in m.step_rates(gen)}
        widths[epoch] = drawn
    assert widths[0] == widths[1] == {None}  # the dense warm-up
    assert widths[2] == widths[6] == {0.5}
    assert widths[7] == widths[11] == {0.5, 0.7}
    assert widths[12] == widths[15] == {0.5, 0.7, 0.9}
    assert _method(shrink_epochs=0).available_rates() == default_seen_rates()


def test_a_stack_of_rates_on_their_own_samples_is_each_rate_on_its_share():
    """x (R, n, V, F) with (R, in, out) masks: rate r's network on x[r] only, as R separate forwards give it."""
    m = _method()
    rates = [0.5, 0.7, 0.9]
    x = torch.randn(3, 4, 30, 12)
    masks = [torch.stack(layer) for layer in zip(*(m.eval_masks(r) for r in rates))]
    together = m.model(x, masks)
    assert together.shape == (3, 4, 8)
    for i, r in enumerate(rates):
        torch.testing.assert_close(together[i], m.model(x[i], m.eval_masks(r)))


def test_split_batch_trains_each_sampled_rate_on_its_share_in_one_forward():
    """With split_batch a step's k rates take k equal shares of the batch (the remainder sits out) in one forward
    of the stacked training masks, and the loss is the cross-entropy over all shares."""
    from torch.nn import functional as F

    from mrmp.train import Trainer

    cfg = toy_config("mrmp", epochs=4, split_batch=True, rates_per_step=4, partial_deltas="none")
    trainer = Trainer(cfg, toy_data())
    method, model = trainer.method, trainer.model
    method.begin_phase(method.phases()[0])
    method._epoch = method.params.warmup_epochs  # pruning: the step trains seen rates
    xb, yb = trainer.x_train[:10], trainer.y_train[:10]
    rates = [0.5, 0.7, 0.9, 0.98]
    (logits,), labels = trainer._split_forward(rates, xb, yb)
    assert logits.shape[0] == 8 and torch.equal(labels, yb[:8])  # 4 shares of 2; 2 samples sit out
    for i, r in enumerate(rates):
        torch.testing.assert_close(
            logits[2 * i : 2 * i + 2], model(xb[2 * i : 2 * i + 2], method.train_masks(r))
        )
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in model.prunable_weights())

    calls = []
    model.register_forward_hook(lambda mod, args, out: calls.append(args[0].dim()))
    trainer.enter_phase(0)
    trainer.train_epoch()
    assert calls and all(d == 4 for d in calls[: len(trainer._batches())])  # one stacked forward per step


def test_split_batch_is_refused_with_distillation_or_one_rate_per_step():
    with pytest.raises(ConfigError, match="split_batch.*distill"):
        config_from_dict(
            {"method": {"name": "mrmp", "split_batch": True, "rates_per_step": 4, "distill": True}}
        )
    with pytest.raises(ConfigError, match="split_batch.*distill.*split_batch: false"):
        config_from_dict({"method": {"name": "mrmp", "distill": True}})  # split_batch is the default
    with pytest.raises(ConfigError, match="split_batch.*rates_per_step"):
        config_from_dict({"method": {"name": "mrmp", "rates_per_step": 1}})
    with pytest.raises(ConfigError, match="partial_deltas.*scope: global.*partial_deltas: none"):
        config_from_dict({"method": {"name": "mrmp", "scope": "layer"}})
    config_from_dict({"method": {"name": "mrmp", "split_batch": False, "rates_per_step": 1, "distill": True}})
    config_from_dict({"method": {"name": "mrmp", "scope": "layer", "partial_deltas": "none"}})
    with pytest.raises(ConfigError, match="partial_deltas: expected str, got False.*quote the word"):
        config_from_dict({"method": {"name": "mrmp", "partial_deltas": False}})  # YAML's bare `off`
    config_from_dict({"method": {"name": "mrmp", "split_batch": True, "sampling": "all"}})  # every rate: fine


@pytest.mark.parametrize("gains", [False, True])
def test_batched_training_masks_equal_each_rates_masks_with_their_gradients(gains):
    """train_masks_batch (one band-stop pass for every rate) gives each rate's train_masks and the sum of their
    gradients to the latent weights (and to each rate's own gains)."""
    m = _method(rate_gains=gains, partial_deltas="none")
    m._epoch = m.params.warmup_epochs + 3
    if gains:
        with torch.no_grad():
            for per_rate in m._log_gains:
                for s in per_rate:
                    s.normal_(0, 0.3)
    rates = [0.5, 0.75, 0.98]
    probe = [torch.randn(3, *w.shape) for w in m.model.prunable_weights()]
    params = m.model.prunable_weights() + m.parameters()

    def grads(masks):
        loss = sum((mask * p).sum() for mask, p in zip(masks, probe))
        return torch.autograd.grad(loss, params, allow_unused=True)  # unsampled rates' gains: None

    batched = m.train_masks_batch(rates)
    one_by_one = [torch.stack(layer) for layer in zip(*(m.train_masks(r) for r in rates))]
    for a, b in zip(batched, one_by_one):
        torch.testing.assert_close(a, b)
    for a, b in zip(grads(batched), grads(one_by_one)):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mode", ["next", "previous", "either"])
def test_partial_deltas_flip_a_random_part_of_a_delta_and_nothing_else(mode):
    """partial_deltas: each trained rate's mask is its band-stop except on its delta to the chosen neighbour (the
    weights between the two thresholds), where a fraction u ~ U(0, 1), drawn per step, is set to 0 (next: the
    weights r keeps over the sparser neighbour) or to 1 (previous: those the denser neighbour keeps over r); the
    end of the seen rates without that neighbour keeps its own mask."""
    plain, m = _method(partial_deltas="none"), _method(partial_deltas=mode)
    for x in (plain, m):
        x._epoch = x.params.warmup_epochs + 3
    seen = m.params.seen_rates
    z = torch.cat([w.detach().abs().reshape(-1) for w in m.model.prunable_weights()])
    rates = [0.5, 0.75, 0.98]
    flipped: dict[tuple[int, int], list[float]] = {}  # (row, side) -> fraction of the delta flipped, per step
    for _ in range(60):
        ref = torch.cat([r.flatten(1) for r in plain.train_masks_batch(rates)], 1)
        got = torch.cat([r.flatten(1) for r in m.train_masks_batch(rates)], 1)
        for i, r in enumerate(rates):
            changed = got[i] != ref[i]
            if not changed.any():
                continue
            j = seen.index(r)
            side = 1 if bool((got[i][changed] == 0).all()) else -1  # dropped: toward next; added: previous
            assert bool((got[i][changed] == (0.0 if side == 1 else 1.0)).all())
            assert mode == "either" or side == {"next": 1, "previous": -1}[mode]
            lo, hi = sorted([r, seen[j + side]])
            t_lo, t_hi = (float(t[0]) for t in (m.thresholds([lo]), m.thresholds([hi])))
            delta = (z > t_lo) & (z <= t_hi)
            assert bool(delta[changed].all())  # only delta weights change
            flipped.setdefault((i, side), []).append(float(changed[delta].float().mean()))
    sides = {"next": {1}, "previous": {-1}, "either": {1, -1}}[mode]
    ends = {(0, -1), (2, 1)}  # 0.50 has no denser neighbour, 0.98 no sparser one
    assert {key for key in flipped} == {(i, s) for i in range(3) for s in sides} - ends
    for fractions in flipped.values():  # u varies from step to step over (0, 1)
        assert min(fractions) < 0.3 and max(fractions) > 0.7


def test_partial_deltas_need_the_global_scope():
    with pytest.raises(ConfigError, match="partial_deltas.*scope"):
        config_from_dict({"method": {"name": "mrmp", "partial_deltas": "next", "scope": "layer"}})


def test_partial_deltas_training_resumes_exactly():
    """The draws of the partial deltas are part of the method's state (as kl_every's position is): a training
    resumed from a mid-training state continues exactly as the uninterrupted one."""
    from mrmp.train import Trainer

    cfg = toy_config(
        "mrmp", epochs=6, split_batch=True, rates_per_step=4, partial_deltas="either", kl_every=3
    )
    full = Trainer(cfg, toy_data())
    states = {}
    full.fit(lambda ev: states.__setitem__(ev.epoch, ev.state()) if ev.epoch == 4 else None)
    resumed = Trainer(cfg, toy_data())
    resumed.load_state(states[4])
    resumed.fit()
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    for a, b in zip(resumed.model.parameters(), full.model.parameters()):
        assert torch.equal(a, b)
