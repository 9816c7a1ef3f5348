"""cluster/local/start.sh, stop.sh and cluster/mlflow/server.sh for real: a token-authenticated 3-node loopback
cluster, the MLflow tracking server on the head address, a sweep through `mrmp sweep --address auto` with the state
file's environment logging to that server, then stopping one node and the rest by PID.

start.sh uses `ray start --head --block` / `ray start --address --block` with RAY_AUTH_MODE=token on every node:
the same pattern as the Slurm recipe, on one machine.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from .test_cluster_helpers import (
    MLFLOW_SERVER,
    ROOT,
    read_probes,
    run_sweep_cli,
    source_env,
    start_mlflow_server,
    tiny_sweep,
    trial_runs,
)

LOCAL = ROOT / "cluster" / "local"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pgid: int, timeout: float = 30) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_local_scripts_run_a_token_cluster_and_stop_exactly_their_nodes(tmp_path):
    d = Path(tempfile.mkdtemp(prefix="mrmp-lc-", dir="/tmp"))  # short: Ray's sockets live below it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH", "RAY_TMPDIR"))}
    pids: dict[str, int] = {}
    try:
        t0 = time.time()
        out = subprocess.run(
            [str(LOCAL / "start.sh"), "--workers", "2", "--gpus", "1", "--dir", str(d)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        start_s = time.time() - t0
        for line in (d / "nodes").read_text().splitlines():
            name, pid = line.split()
            pids[name] = int(pid)
        assert sorted(pids) == ["head", "worker-1", "worker-2"]
        for pid in pids.values():
            assert os.getpgid(pid) == pid, "each node leads its own process group"
        cenv = source_env(d / "env", env)
        assert cenv["RAY_ADDRESS"].startswith("127.0.0.2:") and cenv["RAY_AUTH_MODE"] == "token"
        token = Path(cenv["RAY_AUTH_TOKEN_PATH"])
        assert stat.S_IMODE(token.stat().st_mode) == 0o600 and len(token.read_text().strip()) == 64
        assert cenv["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"] == "1"

        # the tracking server of the recipes, on the "head" address
        t1 = time.time()
        uri = start_mlflow_server(d, env)
        server_s = time.time() - t1

        # `source DIR/env && mrmp sweep ... --address auto`: GPU trials land on the GPU workers (the head has
        # none) and log over HTTP to the server
        probes, root = tmp_path / "probes", tmp_path / "sweeps"
        probes.mkdir()
        f = tiny_sweep(tmp_path / "s.yaml", "local-cluster", root, trials=2, concurrency=2, epochs=1)
        argv = [str(f), "--address", "auto", "--set", "sweep.resources.gpu=0.5"]
        argv += ["--set", f"sweep.tracking.uri={uri}", "--quiet"]
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update({**env, **cenv})
            t2 = time.time()
            run = run_sweep_cli(argv, probes)
            sweep_s = time.time() - t2
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        recs = read_probes(probes)
        assert len(recs) == 2 and all(
            r["gpu_ids"] == ["0"] and r["cuda_visible_devices"] == "0" for r in recs
        )
        runs = trial_runs(uri, "local-cluster")
        assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
        for r in runs:  # artifacts went through the server's proxy into its artifact root
            assert r.info.artifact_uri.startswith("mlflow-artifacts:"), r.info.artifact_uri
        stored = {p.name for p in (d / "mlflow" / "mlartifacts").rglob("*") if p.is_file()}
        assert {"curve.csv", "summary.json"} <= stored, stored

        # lose one node: only its process group goes
        t3 = time.time()
        kill = subprocess.run(
            [str(LOCAL / "stop.sh"), "--dir", str(d), "--node", "worker-2", "--signal", "KILL"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert kill.returncode == 0, kill.stdout + kill.stderr
        assert _wait_gone(pids["worker-2"]), "worker-2's processes are gone"
        assert _group_alive(pids["head"]) and _group_alive(pids["worker-1"]), "the others are untouched"
        kill_s = time.time() - t3
    finally:
        subprocess.run(
            [str(MLFLOW_SERVER), "stop", "--dir", str(d / "mlflow")], capture_output=True, timeout=60
        )
        t4 = time.time()
        stop = subprocess.run(
            [str(LOCAL / "stop.sh"), "--dir", str(d)], capture_output=True, text=True, timeout=120
        )
        stop_s = time.time() - t4
        leftovers = [n for n, p in pids.items() if not _wait_gone(p, timeout=10)]
        shutil.rmtree(d, ignore_errors=True)
    print(
        "local cluster timing:",
        json.dumps(
            {
                k: round(v, 1)
                for k, v in dict(start_s=start_s, server_s=server_s, sweep_s=sweep_s, kill_s=kill_s).items()
            }
        ),
        f"stop_s {stop_s:.1f}",
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert not leftovers, f"processes left behind: {leftovers}"
    assert not (d / "nodes").exists()
