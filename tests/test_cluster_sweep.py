"""A sweep on a real multi-node Ray cluster (loopback), through `mrmp sweep --address`, losing a node.

Three Ray nodes on 127.0.0.2 (a head and two workers, 1 CPU each; the workers also declare 1 logical GPU), each
its own raylet and object store. The sweep runs 3 trials that report and checkpoint every epoch. As soon as a
trial running on a worker node has checkpoints, that node is killed without warning
(`remove_node(allow_graceful=False)`, as a crashed machine).

- With retries (`max_failures: 2`), Tune retries the trial from its checkpoint on another node, and the tracking
  store ends with exactly one FINISHED run per trial, every epoch logged once: with the sweep's sqlite store and
  with an MLflow tracking server (`mlflow server` on 127.0.0.1, stopped by its PID).
- Without (`max_failures: 0`), the trial is lost for good: its run says so (outcome `lost`, Ray's error), the sweep
  exits 3 and prints the resume command, and `--resume` trains it to the end in the same run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from .faults import attempts, epochs_trained, run_driver, steps
from .test_cluster_helpers import free_port, loopback_cluster, ray_test_env, tiny_sweep, trial_runs

EPOCHS = 6
EPOCH_S = 0.5  # added to each epoch: a trial lasts seconds, so the node dies mid-trial
TRIALS = 3
WORKER = {"num_cpus": 1, "num_gpus": 1}  # a logical GPU: the trials ask for none and must see none


def _kill_a_worker_mid_trial(
    cluster, workers, probes: Path, tune_dir: Path, stop: threading.Event, log: dict
) -> None:
    """Kill the first worker node whose running trial has two checkpoints on disk and epochs left to train.

    Only workers are candidates: a driver joins the head node when several nodes share its IP (Ray's
    `get_node_to_connect_for_driver`), and the driver holds the sweep's lock and writes its tracking store."""
    candidates = {w.node_id: w for w in workers}
    while not stop.is_set():
        trained = epochs_trained(probes)
        for tid, tries in attempts(probes).items():
            rec = tries[-1]
            node = candidates.get(rec["node_id"])
            if node is None or "end" in rec:
                continue
            checkpoints = sorted((tune_dir / tid).glob("checkpoint_*"))
            # A checkpoint folder is on disk before Tune's controller has registered it with the trial; a
            # second one means the first was reported and registered, so a retry restores from it.
            done = max((e for t, e in trained if t == tid), default=0)
            if len(checkpoints) >= 2 and done <= EPOCHS - 2:
                log.update(victim_node=rec["node_id"], trial_id=tid, at_epoch=done, killed_at=time.time())
                cluster.remove_node(node, allow_graceful=False)
                return
        time.sleep(0.1)


def _sweep_losing_a_node(tmp_path: Path, cluster, workers, name: str, argv: list[str], **sweep) -> tuple:
    """Run the tiny sweep on the cluster while a worker node is killed mid-trial: (process, log, probes, file)."""
    probes, root = tmp_path / "probes", tmp_path / "sweeps"
    probes.mkdir(exist_ok=True)
    f = tiny_sweep(
        tmp_path / f"{name}.yaml", name, root, trials=TRIALS, concurrency=TRIALS, epochs=EPOCHS, **sweep
    )
    log: dict = {}
    stop = threading.Event()
    killer = threading.Thread(
        target=_kill_a_worker_mid_trial,
        args=(cluster, workers, probes, root / name / "tune" / name, stop, log),
        daemon=True,
    )
    killer.start()
    t0 = time.time()
    try:
        out = run_driver([str(f), "--address", cluster.address, "--quiet", *argv], probes, epoch_s=EPOCH_S)
    finally:
        stop.set()
        killer.join(timeout=10)
    log["sweep_s"] = time.time() - t0
    return out, log, probes, f


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 (a free port, no job runner), its artifacts served by it; stopped by PID."""
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe), "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    cmd += [
        "--artifacts-destination",
        (tmp / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with (tmp / "server.log").open("w") as out:
        server = subprocess.Popen([*cmd, "--workers", "1"], env=env, stdout=out, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while server.poll() is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, (tmp / "server.log").read_text()[-3000:]
        yield uri
    finally:
        server.send_signal(signal.SIGTERM)  # it stops its uvicorn child
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_sweep_survives_losing_a_worker_node(store, tmp_path, monkeypatch, request):
    name = f"node-loss-{store}"
    argv = []
    uri = f"sqlite:///{tmp_path / 'sweeps' / name / 'mlflow.db'}"
    if store == "server":
        uri = request.getfixturevalue("mlflow_server")
        argv = ["--set", f"sweep.tracking.uri={uri}"]
    with ray_test_env(monkeypatch):
        with loopback_cluster({"num_cpus": 1}, [WORKER, WORKER]) as (cluster, workers):
            out, log, probes, _ = _sweep_losing_a_node(tmp_path, cluster, workers, name, argv, max_failures=2)
    print(f"node loss ({store}):", {k: round(v, 1) if isinstance(v, float) else v for k, v in log.items()})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "victim_node" in log, f"no worker node was killed mid-trial: {log}"

    by_trial = attempts(probes)
    assert len(by_trial) == TRIALS, by_trial.keys()
    victim = by_trial[log["trial_id"]]
    assert victim[0]["node_id"] == log["victim_node"] and "end" not in victim[0], "died with its node"
    retry = victim[-1]
    assert len(victim) == 2 and retry["restored_epoch"] >= 1, "retried from its checkpoint"
    assert retry["node_id"] != log["victim_node"] and retry["end"] == "returned", "on another node"
    print("kill -> retried attempt started after", round(retry["start"] - log["killed_at"], 1), "s")

    runs = trial_runs(uri, name)
    assert sorted(r.data.tags["mrmp.tune_trial_id"] for r in runs) == sorted(by_trial), "one run per trial"
    for r in runs:
        tags = r.data.tags
        assert (r.info.status, tags["mrmp.outcome"], tags["mrmp.epochs"]) == (
            "FINISHED",
            "completed",
            str(EPOCHS),
        )
        assert steps(uri, r.info.run_id) == list(range(1, EPOCHS + 1))  # every epoch logged once
        # the workers have a (logical) GPU; these trials asked for none and saw none
        assert (tags["mrmp.gpu_ids"], tags["mrmp.cuda_visible_devices"]) == ("", ""), tags
    (victim_run,) = [r for r in runs if r.data.tags["mrmp.tune_trial_id"] == log["trial_id"]]
    assert victim_run.data.tags["mrmp.attempts"] == str(len(victim))  # retried in the same run
    assert victim_run.data.tags["mrmp.ray_node_id"] == retry["node_id"]  # where it ended


@pytest.mark.slow
def test_a_trial_lost_for_good_is_reported_then_resumed(tmp_path, monkeypatch):
    """max_failures 0: the trial whose node dies is lost; its run says why, the sweep exits 3 with the resume
    command, and `--resume` (on the nodes left) trains it to the end in the same run, from its checkpoint."""
    name = "lost"
    uri = f"sqlite:///{tmp_path / 'sweeps' / name / 'mlflow.db'}"
    with ray_test_env(monkeypatch):
        with loopback_cluster({"num_cpus": 1}, [WORKER, WORKER]) as (cluster, workers):
            out, log, probes, f = _sweep_losing_a_node(tmp_path, cluster, workers, name, [], max_failures=0)
            assert "victim_node" in log, f"no worker node was killed mid-trial: {log}"
            assert out.returncode == 3, out.stdout[-4000:] + out.stderr[-4000:]
            assert f"mrmp sweep {f} --resume" in out.stdout
            runs = {r.data.tags["mrmp.tune_trial_id"]: r for r in trial_runs(uri, name)}
            lost = runs[log["trial_id"]]
            assert (lost.info.status, lost.data.tags["mrmp.outcome"]) == ("FAILED", "lost")
            error = lost.data.tags["mrmp.error"]  # Ray's word for it, not "the trial failed"
            assert error.startswith("The actor ") and ("unavailable" in error or "died" in error), error
            assert error[:80] in out.stdout  # in the summary too
            others = [r for t, r in runs.items() if t != log["trial_id"]]
            assert {(r.info.status, r.data.tags["mrmp.outcome"]) for r in others} == {
                ("FINISHED", "completed")
            }

            again = run_driver([str(f), "--address", cluster.address, "--quiet", "--resume"], probes)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    after = {r.data.tags["mrmp.tune_trial_id"]: r for r in trial_runs(uri, name)}
    assert after.keys() == runs.keys()  # the same runs
    resumed = after[log["trial_id"]]
    assert (resumed.info.status, resumed.data.tags["mrmp.outcome"]) == ("FINISHED", "completed")
    assert resumed.data.tags["mrmp.attempts"] == "2" and resumed.data.tags["mrmp.previous_error"] == error
    assert steps(uri, resumed.info.run_id) == list(range(1, EPOCHS + 1))  # every epoch once
    tries = attempts(probes)[log["trial_id"]]
    assert len(tries) == 2 and tries[1]["restored_epoch"] >= 1, tries  # from its checkpoint
    for t, r in runs.items():
        if t != log["trial_id"]:  # not run again
            assert after[t].info.end_time == r.info.end_time
