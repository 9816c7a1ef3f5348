"""The tracker interface: one contract for every backend, and many concurrent trials through one writer."""

from __future__ import annotations

import time

import pytest

from mrmp.tracking import FAILED, FINISHED, KILLED, RUNNING, TAG_KEY, TrackerSpec
from mrmp.tracking.mlflow_backend import local_store
from mrmp.train import CurvePoint

CURVE = [
    CurvePoint(r, 1.0 - r / 2, 1.0 - r / 2, r, r, 0, int(r in (0.0, 0.5, 0.9)))
    for r in (0.0, 0.5, 0.6, 0.9, 0.95)
]


def make_spec(kind: str, tmp_path) -> TrackerSpec:
    if kind == "mlflow":
        uri, artifacts = local_store(tmp_path)
        return TrackerSpec("mlflow", uri, "contract", artifacts)
    return TrackerSpec("local", str(tmp_path / "local"), "contract")


@pytest.mark.parametrize("kind", ["local", "mlflow"])
def test_tracker_contract(kind, tmp_path):
    t = make_spec(kind, tmp_path).create()
    parent = t.start_parent("sweep", tags={"mrmp.kind": "sweep"}, params={"sweep.trials": 2})
    a = t.start_child(
        parent, "trial_a", "a", tags={"mrmp.method": "mp"}, params={"train.lr": 0.01, "eval.rates": [0, 0.5]}
    )
    b = t.start_child(parent, "trial_b", "b")
    t.log_metrics(a, {"loss": 2.0, "undefined": None}, step=1)
    t.log_series(a, [("loss", 1.5, 2), ("loss", 1.0, 3)])
    t.log_curve(a, CURVE)
    t.log_artifact(a, "sub/note.txt", "hello")
    t.end(a, FINISHED)
    t.end(b, FAILED)
    with pytest.raises(ValueError):
        t.end(b, RUNNING)

    again = t.start_child(parent, "trial_a", "a")  # a retried trial finds its run and reopens it
    assert again == a and t.get_run(a).status == RUNNING
    t.end(a, KILLED)

    runs = {r.name: r for r in t.find_runs(parent)}
    assert set(runs) == {"trial_a", "trial_b"}
    ra = runs["trial_a"]
    assert ra.status == KILLED and runs["trial_b"].status == FAILED and ra.parent_id == parent
    assert ra.params["train.lr"] == "0.01" and ra.params["eval.rates"] == "[0,0.5]"
    assert ra.tags["mrmp.method"] == "mp" and ra.tags[TAG_KEY] == "a" and "undefined" not in ra.metrics
    assert ra.metrics["loss"] == 1.0  # the latest step
    assert t.metric_history(a, "loss") == [(1, 2.0), (2, 1.5), (3, 1.0)]
    acc = t.metric_history(a, "acc")
    seen, unseen = t.metric_history(a, "acc_seen"), t.metric_history(a, "acc_unseen")
    assert [s for s, _ in acc] == [0, 500, 600, 900, 950]  # step = rate in per mille
    assert [s for s, _ in seen] == [0, 500, 900] and [s for s, _ in unseen] == [600, 950]
    assert t.read_artifact(a, "sub/note.txt") == b"hello"
    assert t.read_artifact(a, "curve.csv").decode().splitlines()[0].startswith("rate,accuracy")
    assert t.read_artifact(a, "curve.png")[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError):
        t.read_artifact(a, "missing.txt")
    assert [r.name for r in t.find_runs(parent, {"mrmp.method": "mp"})] == ["trial_a"]
    assert t.get_run(parent).status == RUNNING

    t.set_tags(b, {"mrmp.error": "boom", "mrmp.outcome": "lost"})
    t.delete_tag(b, "mrmp.error")
    t.delete_tag(b, "never-set")  # no error
    assert "mrmp.error" not in t.get_run(b).tags
    assert t.find_child(parent, "a").run_id == a and t.find_child(parent, "zzz") is None
    adopted = t.find_child(parent, "c", adopt={"mrmp.outcome": "lost"})  # b, re-keyed to c
    assert adopted.run_id == b and adopted.tags[TAG_KEY] == "c" and adopted.tags["mrmp.former_key"] == "b"
    assert t.find_child(parent, "d", adopt={"mrmp.outcome": "nothing-has-this"}) is None


N_TRIALS, BATCHES, METRICS = 16, 50, 8


def _trial(tracker, parent: str, i: int) -> tuple[float, float, float]:
    """What a trial does to its tracker, compressed: 400 epoch points, a 51-rate curve, artifacts, end.
    Returns (start, end, seconds)."""
    start = time.time()
    t0 = time.perf_counter()
    run_id = tracker.start_child(parent, f"trial_{i}", str(i), params={"i": i})
    for step in range(1, BATCHES + 1):
        tracker.log_series(run_id, [(f"m{k}", i + step / 100, step) for k in range(METRICS)])
        if step % 10 == 0:
            tracker.flush()  # as at a checkpoint
    curve = [
        CurvePoint(r / 100, 0.5, 0.5, r / 100, r / 100, 0, int(r % 10 == 0)) for r in [0, *range(50, 100)]
    ]
    tracker.log_curve(run_id, curve)
    tracker.log_artifact(run_id, "config.yaml", f"trial: {i}\n")
    tracker.end(run_id, FINISHED)
    tracker.flush()
    return start, time.time(), time.perf_counter() - t0


@pytest.mark.slow
def test_sixteen_concurrent_trials_through_one_writer_lose_nothing(ray_local, tmp_path, capsys):
    ray = ray_local
    from mrmp.tracking.remote import start_tracker_actor

    spec = make_spec("mlflow", tmp_path)
    driver = spec.create()  # the driver opens (creates) the sqlite store first, once
    parent = driver.start_parent("concurrency")
    remote = start_tracker_actor(spec)
    task = ray.remote(num_cpus=2 / N_TRIALS)(_trial)  # all at once on 2 CPUs
    t0 = time.perf_counter()
    spans = ray.get([task.remote(remote, parent, i) for i in range(N_TRIALS)])
    wall = time.perf_counter() - t0
    remote.close()
    seconds = [s for _, _, s in spans]
    # how many wrote at the same time: every one started before the first one finished
    overlap = max(sum(a <= t < b for a, b, _ in spans) for t, _, _ in spans)

    children = driver.find_runs(parent)
    assert len(children) == N_TRIALS and all(r.status == FINISHED for r in children)
    for r in children:
        for k in range(METRICS):
            history = driver.metric_history(r.run_id, f"m{k}")
            assert sorted(s for s, _ in history) == list(range(1, BATCHES + 1))
        assert len(driver.metric_history(r.run_id, "acc")) == 51
        assert (
            len(driver.metric_history(r.run_id, "acc_seen"))
            + len(driver.metric_history(r.run_id, "acc_unseen"))
            == 51
        )
        assert driver.read_artifact(r.run_id, "config.yaml").decode() == f"trial: {r.params['i']}\n"
    points = N_TRIALS * (BATCHES * METRICS + 2 * 51)
    with capsys.disabled():
        print(
            f"\n[tracking] {N_TRIALS} concurrent trials -> 1 writer (sqlite): {points} metric points, "
            f"{N_TRIALS * 3} artifacts, 0 lost, no error, {wall:.1f} s wall ({points / wall:.0f} points/s), "
            f"per trial {min(seconds):.1f}-{max(seconds):.1f} s, at most {overlap} writing at once"
        )
    assert overlap >= N_TRIALS // 2, f"the writers did not overlap: at most {overlap} at once"
