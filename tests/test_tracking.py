"""The tracker interface: one contract for every backend, and a real sweep of 16 trials at once whose records
all go through the driver, the store's one writer."""

from __future__ import annotations

import time

import pytest

from mrmp.cli.main import main
from mrmp.tracking import FAILED, FINISHED, KILLED, RUNNING, NullTracker, TrackerSpec
from mrmp.tracking.mlflow_backend import local_store

from .faults import attempts, max_overlap, probed, steps, sweep_file, trial_runs


def make_spec(kind: str, tmp_path) -> TrackerSpec:
    if kind == "mlflow":
        uri, artifacts = local_store(tmp_path)
        return TrackerSpec("mlflow", uri, "contract", artifacts)
    return TrackerSpec("local", str(tmp_path / "local"), "contract")


@pytest.mark.parametrize("kind", ["local", "mlflow"])
def test_tracker_contract(kind, tmp_path):
    t = make_spec(kind, tmp_path).create()
    parent = t.create_run("sweep", None, {"mrmp.kind": "sweep"})
    a = t.create_run("mp-000", parent, {"mrmp.kind": "trial", "mrmp.method": "mp"})
    b = t.create_run("mp-001", parent, {"mrmp.kind": "trial"})
    t.log_params(a, {"train.lr": 0.01, "eval.rates": [0, 0.5]})
    t.log_metrics(a, {"train/loss": 2.0, "undefined": None}, step=1)
    t.log_series(a, [("train/loss", 1.5, 2), ("train/loss", 1.0, 3), ("curve/val_acc", 0.4, 500)])
    t.log_artifact(a, "units/curve_0.csv", "rate,accuracy\n")
    t.log_artifact(a, "model.pt", b"\x80\x02binary")
    t.end(a, FINISHED)
    t.end(b, FAILED)
    with pytest.raises(ValueError):
        t.end(b, RUNNING)
    t.set_status(a, RUNNING)  # a run reopened (a retry, a resume)
    assert t.get_run(a).status == RUNNING
    t.end(a, KILLED)

    runs = {r.name: r for r in t.find_runs(parent)}
    assert set(runs) == {"mp-000", "mp-001"}
    ra = runs["mp-000"]
    assert ra.status == KILLED and runs["mp-001"].status == FAILED and ra.parent_id == parent
    assert ra.params["train.lr"] == "0.01" and ra.params["eval.rates"] == "[0,0.5]"
    assert ra.tags["mrmp.method"] == "mp" and "undefined" not in ra.metrics
    assert ra.metrics["train/loss"] == 1.0  # the latest step
    assert t.metric_history(a, "train/loss") == [(1, 2.0), (2, 1.5), (3, 1.0)]
    assert t.metric_history(a, "curve/val_acc") == [(500, pytest.approx(0.4))]
    assert t.read_artifact(a, "units/curve_0.csv") == b"rate,accuracy\n"
    assert t.read_artifact(a, "model.pt") == b"\x80\x02binary"
    with pytest.raises(FileNotFoundError):
        t.read_artifact(a, "missing.txt")
    assert [r.name for r in t.find_runs(parent, {"mrmp.method": "mp"})] == ["mp-000"]
    assert {r.name for r in t.find_runs(None, {"mrmp.kind": "trial"})} == {"mp-000", "mp-001"}
    assert t.get_run(parent).status == RUNNING and t.get_run(parent).end_time is None
    rb = runs["mp-001"]
    assert rb.start_time is not None and rb.end_time is not None and rb.start_time <= rb.end_time
    assert abs(rb.start_time - time.time()) < 600  # seconds since the epoch, in every backend

    t.set_tags(b, {"mrmp.error": "boom", "mrmp.outcome": "lost"})
    t.delete_tag(b, "mrmp.error")
    t.delete_tag(b, "never-set")  # no error
    assert "mrmp.error" not in t.get_run(b).tags and t.get_run(b).tags["mrmp.outcome"] == "lost"


def test_a_new_sqlite_store_is_a_copy_of_the_cached_migrated_one(tmp_path, monkeypatch):
    """The first store built on a machine is migrated by MLflow and kept in the user's cache; later ones are
    copies of it, with the very schema a migration builds, and work as MLflow stores."""
    import sqlite3

    from mlflow import MlflowClient

    from mrmp.tracking.mlflow_backend import create_sqlite_store, empty_store_template

    def schema(path):  # per table or index, its definition's lines (two migrations order constraints apart)
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        return sorted(
            (t, n, sorted(x.strip().rstrip(",") for x in (sql or "").splitlines())) for t, n, sql in rows
        )

    monkeypatch.setenv("MRMP_CACHE_DIR", str(tmp_path / "cache"))
    create_sqlite_store(tmp_path / "a" / "mlflow.db")
    (template,) = (tmp_path / "cache").iterdir()
    assert template == empty_store_template() and template.name.startswith("mlflow-")
    MlflowClient(f"sqlite:///{tmp_path / 'direct.db'}").search_experiments()  # MLflow's own migrations
    stamp = template.stat().st_mtime_ns
    create_sqlite_store(tmp_path / "b" / "mlflow.db")
    assert template.stat().st_mtime_ns == stamp  # copied, not rebuilt
    assert schema(tmp_path / "b" / "mlflow.db") == schema(tmp_path / "direct.db") == schema(template)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["mlflow.db"]  # no temporary file left
    tracker = TrackerSpec("mlflow", f"sqlite:///{tmp_path / 'b' / 'mlflow.db'}", "e").create()
    run = tracker.create_run("r", None, {})
    tracker.log_metrics(run, {"m": 1.0}, step=0)
    assert tracker.get_run(run).metrics["m"] == 1.0


def test_a_local_store_read_while_a_metric_line_is_being_appended(tmp_path):
    """The sweep's views thread reads runs while its record thread appends metrics: a reader meeting a line
    still being written reads the complete lines before it, not an error."""
    t = make_spec("local", tmp_path).create()
    run = t.create_run("mp-000")
    t.log_metrics(run, {"m": 1.0}, step=0)
    with open(tmp_path / "local" / run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"key": "m", "val')  # the writer, mid-line
    assert t.get_run(run).metrics == {"m": 1.0}
    assert [v for _, v in t.metric_history(run, "m")] == [1.0]


def test_the_null_tracker_records_nothing():
    t = NullTracker()
    run = t.create_run("x")
    assert run != t.create_run("x") and t.find_runs() == [] and t.metric_history(run, "k") == []
    with pytest.raises(FileNotFoundError):
        t.read_artifact(run, "a")


# --- 16 trials at once ----------------------------------------------------------------------------------------
N_TRIALS, EPOCHS = 16, 4
TRAIN_KEYS = ("train/loss", "train/regularizer", "train/train_accuracy", "train/lr", "train/epoch_time_s")


@pytest.mark.slow
def test_sixteen_concurrent_trials_lose_no_point(ray_local, tmp_path, capsys):
    """16 trials of 1/8 CPU each train at the same time on 2 CPUs, each reporting every epoch with a checkpoint;
    every record goes to the sweep's sqlite store through the driver. Every epoch point, objective, curve point
    and artifact of every trial is there, and nothing reported a lock error."""
    probes = tmp_path / "probes"
    probes.mkdir()
    name = "sixteen"
    f = sweep_file(
        tmp_path / "s.yaml",
        name,
        tmp_path / "store",
        {"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True}},
        searcher="random",
        trials=N_TRIALS,
        concurrency=N_TRIALS,
        resources={"cpu": 2 / N_TRIALS, "gpu": 0},
        report_every=1,
        epochs=EPOCHS,
    )
    t0 = time.perf_counter()
    with probed(probes, barrier=N_TRIALS, barrier_timeout_s=300):  # all started before any trains
        code = main(["sweep", str(f), "--quiet"])
    wall = time.perf_counter() - t0
    out = capsys.readouterr()
    assert code == 0, out.out[-3000:] + out.err[-3000:]
    assert "database is locked" not in out.out + out.err, out.err[-3000:]

    uri = f"sqlite:///{tmp_path / 'store' / name / 'mlflow.db'}"
    runs = trial_runs(uri, name)
    assert len(runs) == N_TRIALS
    assert {(r.info.status, r.data.tags["mrmp.outcome"]) for r in runs} == {("FINISHED", "completed")}
    points = 0
    for r in runs:
        rid = r.info.run_id
        for key in TRAIN_KEYS:
            assert steps(uri, rid, key) == list(range(1, EPOCHS + 1)), (r.info.run_name, key)
        assert steps(uri, rid, "val_auc") == list(
            range(1, EPOCHS + 1)
        )  # each report's objective, the last too
        for key in ("curve/val_acc", "curve/test_acc"):
            assert steps(uri, rid, key) == [500, 900]  # the curve, rate 0 left out
        points += len(TRAIN_KEYS) * EPOCHS + EPOCHS + 4
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    for r in runs:
        files = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"config.yaml", "curve.csv", "curve.png", "summary.json", "model.pt"} <= files, files
    spans = [(a["trained_from"], a["stop"]) for tries in attempts(probes).values() for a in tries]
    overlap = max_overlap(spans)
    with capsys.disabled():
        print(
            f"\n[tracking] {N_TRIALS} trials at once into one sqlite store through the driver: {points} points "
            f"checked (train, objectives, curves), {N_TRIALS * 5} artifacts, 0 lost, no lock error; "
            f"sweep {wall:.1f} s, at most {overlap} training at once"
        )
    assert overlap >= N_TRIALS // 2, f"the trials did not overlap: at most {overlap} at once"
