"""A sweep on a real multi-node Ray cluster (loopback), through `mrmp sweep --address`, surviving a lost node.

Three Ray nodes on 127.0.0.2 (a head and two workers, 1 CPU each; the workers also declare 1 logical GPU), each
its own raylet and object store. The sweep runs 3 trials that report and checkpoint every epoch. As soon as a
trial running on a worker node has written a checkpoint, that node is killed without warning
(`remove_node(allow_graceful=False)`, as a crashed machine). Tune must retry the trial from its checkpoint on
another node, and the tracking store must end with exactly one FINISHED child run per trial, none RUNNING.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from .test_cluster_helpers import (
    loopback_cluster,
    ray_test_env,
    read_probes,
    run_sweep_cli,
    tiny_sweep,
    trial_runs,
)

EPOCHS = 6
TRIALS = 3


def _kill_first_checkpointed_worker(
    cluster, workers, probes: Path, tune_dir: Path, stop: threading.Event, log: dict
) -> None:
    """Kill the first worker node whose running trial has at least two checkpoints on disk.

    Only workers are candidates: a driver joins the head node when several nodes share its IP (Ray's
    `get_node_to_connect_for_driver`), and the tracking actor is pinned to the driver's node."""
    candidates = {w.node_id: w for w in workers}
    while not stop.is_set():
        for rec in read_probes(probes):
            node = candidates.get(rec["node_id"])
            if node is None or "end" in rec:
                continue
            checkpoints = sorted((tune_dir / rec["trial_id"]).glob("checkpoint_*"))
            # A checkpoint folder is on disk before Tune's controller has registered it with the trial; a
            # second one means the first was reported and registered, so the retry must restore from it.
            if len(checkpoints) >= 2:
                log.update(
                    victim_node=rec["node_id"],
                    trial_id=rec["trial_id"],
                    checkpoints_before_kill=len(checkpoints),
                    killed_at=time.time(),
                )
                cluster.remove_node(node, allow_graceful=False)
                log["kill_call_s"] = time.time() - log["killed_at"]
                return
        time.sleep(0.2)


@pytest.mark.slow
def test_sweep_survives_losing_a_worker_node(tmp_path, monkeypatch):
    probes, root = tmp_path / "probes", tmp_path / "sweeps"
    probes.mkdir()
    name = "node-loss"
    f = tiny_sweep(
        tmp_path / "sweep.yaml", name, root, trials=TRIALS, concurrency=TRIALS, epochs=EPOCHS, max_failures=2
    )
    tune_dir = root / name / "tune"
    log: dict = {}
    stop = threading.Event()
    t0 = time.time()
    with ray_test_env(monkeypatch):
        # a head and two workers, 1 CPU each; the workers also declare a logical GPU (the trials ask for none)
        worker = {"num_cpus": 1, "num_gpus": 1}
        with loopback_cluster({"num_cpus": 1}, [worker, worker]) as (cluster, workers):
            log["cluster_up_s"] = time.time() - t0
            killer = threading.Thread(
                target=_kill_first_checkpointed_worker,
                args=(cluster, workers, probes, tune_dir, stop, log),
                daemon=True,
            )
            killer.start()
            t1 = time.time()
            try:
                out = run_sweep_cli([str(f), "--address", cluster.address, "--quiet"], probes)
            finally:
                stop.set()
                killer.join(timeout=10)
            log["sweep_s"] = time.time() - t1
    print("node-loss timing:", {k: round(v, 1) if isinstance(v, float) else v for k, v in log.items()})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "victim_node" in log, f"no worker node was killed mid-trial: {log}"

    recs = read_probes(probes)
    by_trial: dict[str, list[dict]] = {}
    for r in recs:
        by_trial.setdefault(r["trial_id"], []).append(r)
    assert len(by_trial) == TRIALS, by_trial.keys()
    victim = sorted(by_trial[log["trial_id"]], key=lambda r: r["attempt"])
    assert victim[0]["node_id"] == log["victim_node"] and "end" not in victim[0], "died with its node"
    retry = victim[-1]
    assert len(victim) >= 2 and retry["restored"], "retried from its checkpoint"
    assert retry["node_id"] != log["victim_node"], "on another node"
    print("kill -> retried attempt started after", round(retry["start"] - log["killed_at"], 1), "s")
    for r in recs:  # the workers have a (logical) GPU; these trials asked for none and must see none
        assert r["gpu_ids"] == [] and r["cuda_visible_devices"] == "", r

    from mlflow import MlflowClient

    uri = f"sqlite:///{root / name / 'mlflow.db'}"
    runs = trial_runs(uri, name)
    keys = [r.data.tags.get("mrmp.key") for r in runs]
    assert sorted(keys) == sorted(by_trial), "exactly one child run per trial"
    assert [r.info.status for r in runs] == ["FINISHED"] * TRIALS, [
        (r.info.run_name, r.info.status) for r in runs
    ]
    for r in runs:
        assert r.data.tags.get("mrmp.outcome") == "completed", r.data.tags
        assert r.data.tags.get("mrmp.epochs") == str(EPOCHS)
    victim_run = next(r for r in runs if r.data.tags.get("mrmp.key") == log["trial_id"])
    steps = {m.step for m in MlflowClient(uri).get_metric_history(victim_run.info.run_id, "loss")}
    assert steps == set(range(1, EPOCHS + 1)), f"the retried trial's loss history covers every epoch: {steps}"
