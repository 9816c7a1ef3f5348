"""GPU scheduling of sweep trials, on a CPU-only machine: Ray is told the node has one *logical* GPU.

What is checked is Ray's side, through mrmp's real sweep entry point: the share each trial gets
(`sweep.resources.gpu`), which GPU id, what CUDA_VISIBLE_DEVICES says inside the trial (so `train.device: auto`
picks cuda:0 of that visible set on a real GPU node), and how many trials share the GPU at once. CUDA itself is
not exercised here.
"""

from __future__ import annotations

import json

import pytest

from mrmp.sweep.cluster import WORKER_ENV, check_gpu, isolate_devices, storage_uri, trial_resources

from .test_cluster_helpers import (
    loopback_cluster,
    max_overlap,
    ray_test_env,
    read_probes,
    run_sweep_cli,
    tiny_sweep,
    trial_runs,
)


@pytest.mark.parametrize("gpu", [0, 0.25, 0.5, 1, 2])
def test_trial_resources_accepts_gpu_shares(gpu):
    assert trial_resources(1, gpu) == {"cpu": 1.0, "gpu": float(gpu)}
    assert check_gpu(gpu) is None


@pytest.mark.parametrize("gpu", [-0.5, 1.5, float("nan")])
def test_trial_resources_rejects_unplaceable_gpu(gpu):
    assert check_gpu(gpu)
    with pytest.raises(ValueError, match="sweep.resources.gpu"):
        trial_resources(1, gpu)


def test_isolate_devices_hides_gpus_from_cpu_trials(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    isolate_devices(0.25)
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == "0,1"  # Ray's assignment is kept
    isolate_devices(0)
    assert __import__("os").environ["CUDA_VISIBLE_DEVICES"] == ""
    assert WORKER_ENV == {"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"}


def test_storage_uri_keeps_uris_and_absolutises_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_uri("s3://bucket/mrmp/") == "s3://bucket/mrmp"
    assert storage_uri("gs://b/x") == "gs://b/x"
    assert storage_uri("runs/sweeps") == str(tmp_path / "runs" / "sweeps")


@pytest.mark.slow
def test_fractional_gpu_trials_share_one_logical_gpu(tmp_path, monkeypatch):
    """5 trials with gpu: 0.25 on a node with 1 GPU: all on GPU 0 with CUDA_VISIBLE_DEVICES=0, 4 at once, never 5.
    (Trials with gpu: 0 on GPU nodes: see test_cluster_sweep.py, whose worker nodes have a logical GPU.)"""
    probes, root = tmp_path / "probes", tmp_path / "sweeps"
    probes.mkdir()
    f = tiny_sweep(
        tmp_path / "gpu.yaml", "gpu-share", root, trials=5, concurrency=5, epochs=1, max_failures=0
    )
    with ray_test_env(monkeypatch):
        # CPUs are not the limit (6 for 5 trials): the one GPU is.
        with loopback_cluster({"num_cpus": 6, "num_gpus": 1}, []) as (cluster, _):
            monkeypatch.setenv("MRMP_PROBE", json.dumps({"barrier": 4, "barrier_timeout_s": 60}))
            argv = [str(f), "--address", cluster.address, "--set", "sweep.resources.gpu=0.25", "--quiet"]
            out = run_sweep_cli(argv, probes)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]

    recs = read_probes(probes)
    assert len(recs) == 5, recs
    for r in recs:
        assert r["gpu_ids"] == ["0"], r
        assert r["cuda_visible_devices"] == "0", r  # train.device=auto -> cuda:0 = the GPU Ray assigned
    overlap = max_overlap([(r["start"], r["end"]) for r in recs])
    assert overlap == 4, f"4 trials share the GPU at 0.25 each, never 5: max overlap {overlap}"
    runs = trial_runs(f"sqlite:///{root / 'gpu-share' / 'mlflow.db'}", "gpu-share")
    assert len(runs) == 5 and {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:  # the run says where its trial ran and what it got
        tags = r.data.tags
        assert (tags["mrmp.gpu_ids"], tags["mrmp.cuda_visible_devices"]) == ("0", "0"), tags
        assert tags["mrmp.ray_node_id"] == recs[0]["node_id"]
