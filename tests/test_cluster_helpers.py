"""Helpers for the cluster tests (no tests here): Ray environment, the sweep CLI in-process, a probe around trials.

The probe replaces `mrmp.sweep.hooks.tune_trainable` (the function Tune runs for every trial) with a wrapper that
records where and with which accelerators each trial attempt ran, then calls the real trainable. The wrapper is a
closure, so cloudpickle ships it by value to every Ray worker on every node.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .faults import max_overlap, trial_runs  # noqa: F401 (shared with the cluster tests)

ROOT = Path(__file__).parents[1]

TEST_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # loopback only; no ~/.ray/auth_token written
    "RAY_DEDUP_LOGS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1",  # as every cluster/ recipe sets it on its nodes
}


@contextmanager
def ray_test_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Test environment for a Ray cluster started by this process; a short private RAY_TMPDIR, removed after."""
    tmp = Path(tempfile.mkdtemp(prefix="mrmp-rt-", dir="/tmp"))  # short: Ray's unix sockets live below it
    for k, v in TEST_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def loopback_cluster(head: dict[str, Any], workers: list[dict[str, Any]]) -> Iterator[tuple[Any, list[Any]]]:
    """A multi-node Ray cluster on this machine: the head and each worker are separate Ray nodes (own raylet,
    object store, resources) on 127.0.0.2. This process starts the nodes but never joins as a driver.

    127.0.0.2, not 127.0.0.1: Ray rewrites 127.0.0.1/localhost to the primary IP and its clients then hang."""
    from ray.cluster_utils import Cluster

    base = {"node_ip_address": "127.0.0.2", "object_store_memory": 100 * 1024**2}
    head_args = {**base, "include_dashboard": False, "dashboard_port": free_port(), **head}
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    try:
        nodes = [cluster.add_node(**{**base, **w}) for w in workers]
        cluster.wait_for_nodes()
        yield cluster, nodes
    finally:
        cluster.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def run_sweep_cli(argv: list[str], probes: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`mrmp sweep ARGV...` as its own process (a clean driver: no Ray state shared with pytest), with the probe
    installed around every trial (see `probe_main`). Output is captured; the caller prints it on failure."""
    code = "import sys; from tests.test_cluster_helpers import probe_main; sys.exit(probe_main())"
    return subprocess.run(
        [sys.executable, "-c", code, str(probes), "sweep", *argv],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def probe_main() -> int:
    """Entry of the driver process: `python -c ... PROBES_DIR sweep ...` = `mrmp sweep ...` with the probe."""
    import mrmp.sweep.hooks as hooks
    from mrmp.cli.main import main

    probes, argv = Path(sys.argv[1]), sys.argv[2:]
    hooks.tune_trainable = make_probe(
        hooks.tune_trainable, probes, **json.loads(os.environ.get("MRMP_PROBE", "{}"))
    )
    return main(argv)


def make_probe(
    original: Callable[..., Any], out_dir: Path, barrier: int = 0, barrier_timeout_s: float = 0.0
) -> Callable[..., Any]:
    """A trainable that writes `out_dir/<trial>-<attempt>.json` (start, end, node, GPU ids, CUDA_VISIBLE_DEVICES,
    restored-from-checkpoint) around `original`. With `barrier` > 0 each attempt first waits (at most
    `barrier_timeout_s`) until `barrier` attempts have started, so trials that can run together do overlap."""
    out = str(out_dir)

    def probe(config: dict[str, Any], ctx: Any) -> Any:
        import glob
        import json
        import os
        import time

        import ray
        from ray import tune

        trial_id = tune.get_context().get_trial_id()
        attempt = len(glob.glob(os.path.join(out, f"{trial_id}-*.json")))
        rec = {
            "trial_id": trial_id,
            "attempt": attempt,
            "start": time.time(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "gpu_ids": [str(i) for i in ray.get_gpu_ids()],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "restored": tune.get_checkpoint() is not None,
        }
        path = os.path.join(out, f"{trial_id}-{attempt}.json")

        def write() -> None:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(rec, f)
            os.replace(tmp, path)

        write()
        if barrier:
            deadline = time.time() + barrier_timeout_s
            while len(glob.glob(os.path.join(out, "*.json"))) < barrier and time.time() < deadline:
                time.sleep(0.1)
        try:
            return original(config, ctx)
        finally:
            rec["end"] = time.time()
            write()

    return probe


def read_probes(out_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]


MLFLOW_SERVER = ROOT / "cluster" / "mlflow" / "server.sh"


def start_mlflow_server(d: Path, env: dict[str, str]) -> str:
    """`cluster/mlflow/server.sh start` on the loopback "head" address 127.0.0.2 (state in d/mlflow); its URI."""
    port = free_port()
    srv = subprocess.run(
        [str(MLFLOW_SERVER), "start", "--host", "127.0.0.2", "--port", str(port), "--dir", str(d / "mlflow")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert srv.returncode == 0, srv.stdout + srv.stderr
    return f"http://127.0.0.2:{port}"


def tiny_sweep(path: Path, name: str, root: Path, **sweep: Any) -> Path:
    """A sweep file for tests: tiny model, 3 rates, a few epochs, a report (and checkpoint) every epoch."""
    import yaml

    section = {
        "name": name,
        "trials": 3,
        "concurrency": 3,
        "searcher": "random",
        "objectives": [{"metric": "auc", "mode": "max"}],
        "resources": {"cpu": 1, "gpu": 0},
        "report_every": 1,
        "checkpoint_every": 0,
        "max_failures": 2,
        "keep_checkpoints": 2,
        "storage": {"root": str(root)},
    }
    epochs = sweep.pop("epochs", 4)
    section.update(sweep)
    doc = {
        "sweep": section,
        "base": {
            "data": {"name": "synthetic-sbu"},
            "model": {"preset": "small"},
            "method": {"name": "mp"},
            "train": {"epochs": epochs},
            "eval": {"rates": [0.0, 0.5, 0.9]},
        },
        "space": {"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True}},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def source_env(path: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment after `source PATH` in a bash started with `env`, as a user's shell would have it (the
    env files of cluster/local/start.sh extend PATH, so they are sourced rather than parsed)."""
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(path)],
        env=env,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def without_dir_on_path(env: dict[str, str], directory: Path) -> dict[str, str]:
    """`env` with `directory` taken off PATH (so a command found there must be found some other way)."""
    keep = [
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != directory.resolve()
    ]
    return {**env, "PATH": os.pathsep.join(keep)}
