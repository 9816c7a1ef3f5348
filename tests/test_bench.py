"""`mrmp bench --quick`: every figure is present, finite and positive. Nothing here asserts a time."""

from __future__ import annotations

import json
import math

import pytest

from mrmp.bench import FIGURE_KEYS, GOALS
from mrmp.cli.main import main


@pytest.mark.slow
def test_quick_bench_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["command"].startswith("mrmp bench --quick")
    for key in FIGURE_KEYS:
        value = result["figures"][key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key
    assert set(result["goals"]) == set(GOALS) and set(result["met"]) == set(GOALS)
    assert result["details"]["protocol_small_cpu"]["extrapolated"] is True
    # Ray's floor under item 4: a fresh process started Ray as a sweep does, and its first task ran on a worker
    # that had the trial's modules imported before it began
    floor, sweep = result["details"]["sweep_floor"], result["details"]["sweep"]
    (sample,) = floor["samples"]
    assert (
        sample["preloaded"] is True and sample["task_s"] > sample["init_s"] > 0 and sample["shutdown_s"] > 0
    )
    ideal = sweep["sum_train_s"] / sweep["concurrency"]
    assert floor["ratio"] == pytest.approx((ideal + sample["task_s"] + sample["shutdown_s"]) / ideal)
    assert floor["to_training_above_floor_s"] == pytest.approx(sweep["train_start_s"] - sample["task_s"])
    assert "step_ratio.tcmp" in capsys.readouterr().out


@pytest.mark.slow
def test_sweep_item_reads_its_figures_from_the_tracker(ray_local, tmp_path, capsys):
    """Item 4 on a 2-trial MP grid: the sweep runs through the API, and each figure is what its tracker recorded
    (trial wall `time/trial_s`, training `time/train_s`, run start and end times)."""
    from mrmp.bench.sweep import sweep_overhead
    from mrmp.sweep.results import trials
    from mrmp.sweep.state import read_state

    r = sweep_overhead(["mp"], [0, 1], epochs=4, report_every=2, keep=tmp_path, rates=[0.0, 0.5, 0.9])
    assert r["trials"] == 2 and r["concurrency"] == 2 and len(r["per_trial"]) == 2
    for key in ("ratio", "wall_s", "sum_train_s", "median_trial_overhead_s", "first_epoch_s", "startup_s"):
        assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
    assert r["teardown_s"] >= 0
    state = read_state(tmp_path / "sweeps" / "bench")
    tracker = state.tracking.create()
    recorded = {t.name: t for t in trials(tracker, state)}
    for row in r["per_trial"]:
        run = recorded[row["trial"]]
        assert row["outcome"] == "completed" and row["trial_s"] == run.metric("time/trial_s")
        assert row["train_s"] == run.metric("time/train_s") > 0
        epochs = sum(v for _, v in tracker.metric_history(run.run_id, "train/epoch_time_s"))
        assert row["train_s"] == pytest.approx(epochs, abs=0.01)  # one unit: the epochs' times, rounded
        assert row["overhead_s"] == pytest.approx(row["trial_s"] - row["train_s"])
        assert run.run.start_time <= run.run.end_time
    assert r["ratio"] == pytest.approx(r["wall_s"] / (r["sum_train_s"] / 2))
    assert r["startup_s"] == pytest.approx(min(t.run.start_time for t in recorded.values()) - r["called_at"])
    started = [
        v for t in recorded.values() for _, v in tracker.metric_history(t.run_id, "time/train_started_unix")
    ]
    assert len(started) == 2 and r["first_epoch_s"] > min(started) - r["called_at"] > 0
    assert r["train_start_s"] == pytest.approx(min(started) - r["called_at"])
    with capsys.disabled():
        shown = ("ratio", "wall_s", "sum_train_s", "median_trial_overhead_s", "first_epoch_s", "teardown_s")
        print("\n[bench] sweep item, 2 MP trials x 4 epochs:", {k: round(r[k], 2) for k in shown})


def test_bench_rejects_bad_items(capsys):
    assert main(["bench", "--items", "7"]) == 2
    assert "--items" in capsys.readouterr().err


# --- the fast path computes the documented formula -----------------------------------------------------------


def reference_forward(model, x, masks=None):
    """The model's formula written plainly (the implementation before the fast path): per block
    ReLU(concat_h ½(Â + softmax(Q_h K_hᵀ/√d)) H W_h + b), flatten node-major, FC, classifier."""
    import torch
    from torch.nn import functional as F

    batched = masks is not None and masks[0].dim() == 3
    h = x.unsqueeze(0) if batched else x
    heads, f, d = model.heads, model.filters, model.key_dim
    for i in range(len(model.filter_w)):
        w = model.filter_w[i] if masks is None else model.filter_w[i] * masks[i]
        xw = torch.matmul(h, w.unsqueeze(1) if batched else w)
        q = torch.matmul(h, model.query[i]).unflatten(-1, (heads, d)).transpose(-2, -3)
        k = torch.matmul(h, model.key[i]).unflatten(-1, (heads, d)).transpose(-2, -3)
        att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d), dim=-1)
        xw = xw.unflatten(-1, (heads, f)).transpose(-2, -3)
        z = 0.5 * (torch.matmul(model.a_hat, xw) + torch.matmul(att, xw))
        h = F.relu(z.transpose(-2, -3).flatten(-2) + model.filter_b[i])
    w = model.fc_w if masks is None else model.fc_w * masks[-1]
    flat = h.reshape(*h.shape[:-2], -1)
    return model.classifier(F.relu(torch.matmul(flat, w) + model.fc_b))


@pytest.mark.parametrize(
    "sizes",
    [
        {"blocks": 3, "heads": 2, "filters": 8, "key_dim": 8, "fc": 64},
        {"blocks": 2, "heads": 4, "filters": 5, "key_dim": 3, "fc": 16},
        {"blocks": 1, "heads": 1, "filters": 4, "key_dim": 2, "fc": 8},
    ],
)
@pytest.mark.parametrize("mask_dims", [0, 2, 3])
def test_fast_forward_and_gradients_equal_the_formula(sizes, mask_dims):
    import torch

    from mrmp.model import build_model

    gen = torch.Generator().manual_seed(0)
    adj = (torch.rand(10, 10, generator=gen) > 0.7).float()
    torch.manual_seed(0)
    model = build_model("small", 12, 10, 4, (adj + adj.T > 0).float(), **sizes).double()
    x = torch.randn(7, 10, 12, generator=gen, dtype=torch.float64)
    shape = {0: None, 2: (), 3: (3,)}[mask_dims]
    masks = None
    if shape is not None:
        masks = [
            (torch.rand(*shape, *w.shape, generator=gen) > 0.3).double() for w in model.prunable_weights()
        ]
    results = []
    for forward in (model, lambda x, m: reference_forward(model, x, m)):
        model.zero_grad()
        y = forward(x, masks)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        results.append((y.detach(), [p.grad.clone() for p in model.parameters()]))
    (y_fast, g_fast), (y_ref, g_ref) = results
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("anchors", [0, 1, 11])
def test_closed_form_prior_kl_equals_autograd_of_the_histograms(anchors):
    import torch

    from mrmp.methods.priors import (
        Prior,
        bin_centers,
        edge_slopes,
        interval_histogram,
        kl_to_prior,
        prior_kl,
        rms,
        smoothed_log,
        soft_histogram,
    )

    gen = torch.Generator().manual_seed(anchors)
    prior = Prior("laplace")
    q = prior.bin_masses(bin_centers(64, 3.0))
    rates = torch.linspace(0.5, 0.98, max(anchors, 1), dtype=torch.float64)
    edges = prior.threshold(rates)
    q_c = torch.diff(rates, prepend=rates.new_zeros(1), append=rates.new_ones(1))
    w0 = torch.randn(5000, generator=gen, dtype=torch.float64) * 0.1
    w0[:50] *= 40  # some beyond the grid

    def reference(w):
        z = w / rms(w)
        kl = kl_to_prior(soft_histogram(z, 64, 3.0), q)
        return kl + 10.0 * kl_to_prior(interval_histogram(z, edges, 100.0), q_c) if anchors else kl

    def fast(w):
        if not anchors:
            return prior_kl(w, 64, 3.0, smoothed_log(q))
        slopes = edge_slopes(edges, 100.0, w.dtype)
        return prior_kl(w, 64, 3.0, smoothed_log(q), slopes, 100.0, smoothed_log(q_c), 10.0)

    grads = []
    for f in (reference, fast):
        w = w0.clone().requires_grad_(True)
        value = f(w)
        value.backward()
        grads.append((value.detach(), w.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-14, atol=0)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-10, atol=1e-14)


def test_soft_band_stop_gradient_equals_autograd():
    import torch

    from mrmp.methods.priors import soft_band_stop

    gen = torch.Generator().manual_seed(3)
    w0 = torch.randn(1000, generator=gen)
    a = torch.tensor(0.7)
    up = torch.randn(1000, generator=gen)
    results = []
    for fast in (True, False):
        w = w0.clone().requires_grad_(True)
        m = soft_band_stop(w, a, 30.0) if fast else torch.sigmoid(30.0 * (w.abs() / a.clamp_min(1e-12) - 1.0))
        (m * up).sum().backward()
        results.append((m.detach(), w.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_stable_argsort_is_torch_stable_argsort():
    import torch

    from mrmp.methods.base import stable_argsort

    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        cases = [
            torch.randn(20000, generator=gen, dtype=dtype),
            torch.randn(40000, generator=gen, dtype=dtype).abs(),
            torch.randint(-3, 3, (9000,), generator=gen).to(dtype),  # many ties
            torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), -float("inf")] * 1000, dtype=dtype),
            torch.randn(100, generator=gen, dtype=dtype),
        ]
        for x in cases:
            assert torch.equal(stable_argsort(x), torch.argsort(x, stable=True))


def test_consistent_count_is_the_size_of_the_consistent_masks():
    import torch

    from mrmp.model import consistent_count, consistent_masks

    gen = torch.Generator().manual_seed(0)
    shapes, repeats = [(12, 16), (16, 16), (16 * 5, 7)], [1, 1, 5]
    for keep in (0.05, 0.2, 0.5, 0.9):
        masks = [(torch.rand(4, *s, generator=gen) < keep).float() for s in shapes]
        expected = sum(c.sum((-1, -2)) for c in consistent_masks(masks, repeats))
        assert torch.equal(consistent_count(masks, repeats), expected)


def test_integrity_counts_equal_the_consistent_masks():
    import torch

    from mrmp.model import consistent_masks, integrity

    gen = torch.Generator().manual_seed(1)
    shapes, repeats = [(12, 16), (16, 16), (16 * 5, 7)], [1, 1, 5]
    for keep in (0.02, 0.1, 0.5):
        masks = [(torch.rand(6, *s, generator=gen) < keep).float() for s in shapes]
        cons = consistent_masks(masks, repeats)
        rep = integrity(masks, repeats)
        assert torch.equal(rep.consistent, sum(c.sum((-1, -2)) for c in cons).long())
        assert torch.equal(rep.path_exists, cons[-1].sum((-1, -2)) > 0)


def test_batched_evaluation_in_chunks_equals_one_rate_at_a_time():
    from mrmp.config import load_config
    from mrmp.train import Trainer, evaluate_curve
    from tests.toy import toy_data

    sets = ["method.name=mrmp", "method.seen_rates=[0.5, 0.7, 0.9]", "train.epochs=3"]
    cfg = load_config(None, [*sets, "eval.rates=[0, 0.5, 0.6, 0.7, 0.9, 0.99]"])
    trainer = Trainer(cfg, toy_data())
    trainer.fit()
    rates = cfg.eval.rates
    one_call = evaluate_curve(
        trainer.method, rates, (trainer.x_test, trainer.y_test), (trainer.x_val, trainer.y_val)
    )
    per_rate = [
        evaluate_curve(trainer.method, [r], (trainer.x_test, trainer.y_test), (trainer.x_val, trainer.y_val))[
            0
        ]
        for r in rates
    ]
    assert [p.row() for p in one_call] == [p.row() for p in per_rate]


def test_warm_started_search_finds_the_exact_k_from_any_hint():
    import torch

    from mrmp.methods.tcmp import _TopKSearch
    from mrmp.model import build_model

    torch.manual_seed(0)
    model = build_model("small", 12, 30, 8, torch.eye(30))
    scores = [w.detach().abs() for w in model.prunable_weights()]
    reps = [p.in_repeat for p in model.prunable]
    for rate in (0.5, 0.9, 0.99):
        batched = _TopKSearch(scores, reps, [rate, rate])
        exact = int(batched.run()[0])
        for hint in (0, 1, exact - 40, exact - 1, exact, exact + 1, exact + 300, batched.n):
            one = _TopKSearch(scores, reps, [rate]).run(torch.tensor([hint]))
            assert int(one[0]) == exact == int(batched.run(torch.tensor([hint, hint]))[0]), (rate, hint)
