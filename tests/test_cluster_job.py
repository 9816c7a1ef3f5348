"""`ray job submit --working-dir . -- mrmp sweep FILE` as docs/cluster.md documents it, for real.

A two-node loopback cluster from cluster/local/start.sh (token auth, the full dashboard that serves the Jobs API,
the head with CPU 0 so trials run on the worker, each node its own Ray temp dir), the MLflow server of
cluster/mlflow/server.sh on the head address, a small sweep submitted as a Ray job with a bare `mrmp` entrypoint
(the venv is not on the test's PATH: start.sh puts it on the nodes'), and its MLflow runs read back.

The second test keeps the driver honest about the job's working directory: Ray may replace that directory
(remove it, unpack the package again) after the driver started Ray, so the driver must not be in it by then;
the last test checks the driver's part of that alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .test_cluster_helpers import (
    MLFLOW_SERVER,
    ROOT,
    source_env,
    start_mlflow_server,
    tiny_sweep,
    trial_runs,
    without_dir_on_path,
)

LOCAL = ROOT / "cluster" / "local"
# The venv whose `ray` start.sh runs, and so the venv whose `mrmp` the job's entrypoint must find through the
# nodes' PATH: the repository's .venv when there is one (as for a user, and in CI), else PATH's.
REPO_VENV = (ROOT / ".venv" / "bin" / "ray").exists()
VENV_BIN = ROOT / ".venv" / "bin" if REPO_VENV else Path(sys.executable).parent


@dataclass
class JobCluster:
    dir: Path
    env: dict[str, str]  # a shell's environment after `source DIR/env`
    tracking_uri: str
    timings: dict[str, float] = field(default_factory=dict)


def _require_dashboard() -> None:
    try:
        import ray.dashboard.optional_deps  # noqa: F401  (Ray's own test for the full dashboard)
    except ImportError as e:
        message = f'the Jobs API needs the cluster extra (pip install -c constraints.txt -e ".[test]"): {e}'
        # CI installs `.[test]`, which brings it: there a missing package is a broken install
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def _taken(address: tuple[str, int]) -> Iterator[None]:
    """Hold `address` (as another Ray cluster on this machine would hold it) while the block runs; when it is
    already taken, someone else holds it."""
    with socket.socket() as s:
        with contextlib.suppress(OSError):
            s.bind(address)
            s.listen()
        yield


@pytest.fixture(scope="module")
def job_cluster() -> Iterator[JobCluster]:
    _require_dashboard()
    # Ray's default dashboard-agent port is held, as another loopback cluster's head agent would hold it: a head
    # whose agent cannot bind it (and has no other) takes no job ("No available agent to submit job").
    with _taken(("127.0.0.2", 52365)):
        yield from _start_job_cluster()


def _start_job_cluster() -> Iterator[JobCluster]:
    d = Path(tempfile.mkdtemp(prefix="mrmp-jc-", dir="/tmp"))  # short: Ray's sockets live below it
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH", "RAY_TMPDIR"))
    }
    if REPO_VENV:  # start.sh finds .venv itself; the caller's PATH must not be what makes `mrmp` reachable
        base = without_dir_on_path(base, VENV_BIN)
    else:  # start.sh takes PATH's `ray`: this interpreter's
        base["PATH"] = os.pathsep.join([str(VENV_BIN), base.get("PATH", "")])
    timings: dict[str, float] = {}
    try:
        t0 = time.time()
        args = ["--workers", "1", "--head-cpus", "0", "--cpus", "2", "--dashboard", "--dir", str(d)]
        out = subprocess.run(
            [str(LOCAL / "start.sh"), *args], env=base, capture_output=True, text=True, timeout=240
        )
        assert out.returncode == 0, out.stdout + out.stderr
        timings["start_s"] = time.time() - t0
        env = source_env(d / "env", base)

        t1 = time.time()
        uri = start_mlflow_server(d, base)
        timings["mlflow_s"] = time.time() - t1
        yield JobCluster(d, env, uri, timings)
    finally:
        subprocess.run(
            [str(MLFLOW_SERVER), "stop", "--dir", str(d / "mlflow")], capture_output=True, timeout=60
        )
        stop = subprocess.run(
            [str(LOCAL / "stop.sh"), "--dir", str(d)], capture_output=True, text=True, timeout=120
        )
        print("job cluster timing:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
        shutil.rmtree(d, ignore_errors=True)
        assert stop.returncode == 0, stop.stdout + stop.stderr


def _submit(
    c: JobCluster, working_dir: str, entrypoint: list[str], cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`ray job submit --working-dir WORKING_DIR -- ENTRYPOINT...` to the cluster, waiting for the job's end."""
    submit = [str(VENV_BIN / "ray"), "job", "submit", "--address", c.env["RAY_API_SERVER_ADDRESS"]]
    return subprocess.run(
        [*submit, "--working-dir", working_dir, "--", *entrypoint],
        cwd=cwd,
        env=c.env,
        capture_output=True,
        text=True,
        timeout=420,
    )


def _job_log(job: subprocess.CompletedProcess, cluster: JobCluster) -> str:
    """What to read when a submission failed: its output, and the end of the head's dashboard agent log."""
    agent = sorted((cluster.dir / "tmp").glob("ray/session_*/logs/dashboard_agent.log"))
    tail = agent[-1].read_text(errors="replace")[-3000:] if agent else "(no dashboard_agent.log)"
    return f"{job.stdout[-6000:]}\n{job.stderr[-3000:]}\n--- head dashboard_agent.log ---\n{tail}"


def _unpacked_working_dirs(temp_dir: Path) -> list[Path]:
    return [p for p in temp_dir.glob("**/runtime_resources/working_dir_files/_ray_pkg_*") if p.is_dir()]


@pytest.mark.slow
def test_ray_job_submit_runs_a_sweep_recorded_in_mlflow(job_cluster: JobCluster, tmp_path: Path):
    c = job_cluster
    shared = tmp_path / "shared"  # absolute: the job's working directory is a copy Ray deletes afterwards
    sweep = ["mrmp", "sweep", "sweeps/quickstart.yaml", "--address", "auto", "--quiet"]
    for override in (
        f"sweep.storage.root={shared}",
        f"sweep.tracking.uri={c.tracking_uri}",
        "sweep.name=job",
        "sweep.trials=2",
        "train.epochs=1",
        "sweep.report_every=1",
    ):
        sweep += ["--set", override]
    t0 = time.time()
    job = _submit(c, ".", sweep, cwd=ROOT)
    c.timings["job_s"] = time.time() - t0
    log = _job_log(job, c)
    assert job.returncode == 0 and "succeeded" in job.stdout, log

    runs = trial_runs(c.tracking_uri, "job")
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"], log
    for r in runs:  # artifacts went through the server's proxy into its artifact root
        assert r.info.artifact_uri.startswith("mlflow-artifacts:"), r.info.artifact_uri
        assert "val_acc_at_targets" in r.data.metrics and "test_acc_at_targets" in r.data.metrics
    stored = {p.name for p in (c.dir / "mlflow" / "mlartifacts").rglob("*") if p.is_file()}
    assert {"curve.csv", "summary.json"} <= stored, stored
    state = json.loads((shared / "job" / "sweep.json").read_text())
    assert Path(state["sweep_file"]).is_absolute() and state["sweep_file"].endswith("sweeps/quickstart.yaml")
    assert state["status"] == "finished"

    # Each node unpacked the job's working directory into its own temp dir: the head for the driver, the
    # worker for the trials (sharing one directory, a node would delete the one the driver runs in).
    assert _unpacked_working_dirs(c.dir / "tmp"), "the head unpacked the job's working directory"
    assert _unpacked_working_dirs(c.dir / "worker-1"), "the worker unpacked its own copy"


# A job entrypoint: `mrmp ARGV...` with `ray.init` wrapped so that, once Ray is up, the job's working directory is
# replaced the way a node's runtime-env agent replaces a package it unpacks again (removed, then unpacked anew):
# what happens when two nodes share a temp dir, or after a node's cache evicted the package.
_REPLACE_CWD_AFTER_RAY_INIT = """
import os, shutil, sys

import ray
from mrmp.cli.main import main

init = ray.init
start = os.getcwd()  # the job's working directory (the driver may leave it before Ray starts)


def init_then_replace_cwd(*args, **kwargs):
    context = init(*args, **kwargs)
    files = {name: open(os.path.join(start, name), "rb").read() for name in os.listdir(start)}
    shutil.rmtree(start)
    os.mkdir(start)
    for name, data in files.items():
        with open(os.path.join(start, name), "wb") as f:
            f.write(data)
    print("replaced the job's working directory", start, flush=True)
    return context


ray.init = init_then_replace_cwd
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sweep_job_survives_its_working_directory_being_replaced(job_cluster: JobCluster, tmp_path: Path):
    c = job_cluster
    work = tmp_path / "work"
    work.mkdir()
    (work / "replace_cwd.py").write_text(_REPLACE_CWD_AFTER_RAY_INIT)
    tiny_sweep(work / "s.yaml", "moved-cwd", tmp_path / "shared", trials=1, concurrency=1, epochs=1)
    entrypoint = ["python", "replace_cwd.py", "sweep", "s.yaml", "--address", "auto", "--quiet"]
    entrypoint += ["--set", f"sweep.tracking.uri={c.tracking_uri}"]
    job = _submit(c, str(work), entrypoint)
    log = _job_log(job, c)
    assert job.returncode == 0 and "succeeded" in job.stdout, log
    assert "replaced the job's working directory" in job.stdout, log
    (r,) = trial_runs(c.tracking_uri, "moved-cwd")
    assert r.info.status == "FINISHED"
    state = json.loads((tmp_path / "shared" / "moved-cwd" / "sweep.json").read_text())
    assert state["status"] == "finished" and state["sweep_file"].endswith("/s.yaml"), state


def test_the_driver_leaves_the_working_directory_of_a_job_only(monkeypatch, tmp_path):
    """`leave_job_working_dir`: inside a Ray job shipped with a working_dir (as Ray tells its driver through
    RAY_JOB_CONFIG_JSON_ENV_VAR), the driver moves to the sweep folder, created if missing; anywhere else it
    stays where it was started."""
    from mrmp.sweep.cluster import JOB_CONFIG_ENV, leave_job_working_dir

    start, sweep_dir = tmp_path / "start", tmp_path / "sweeps" / "s"
    start.mkdir()
    monkeypatch.chdir(start)
    monkeypatch.delenv(JOB_CONFIG_ENV, raising=False)
    assert not leave_job_working_dir(sweep_dir) and Path.cwd() == start
    monkeypatch.setenv(JOB_CONFIG_ENV, json.dumps({"runtime_env": {"env_vars": {"A": "1"}}}))
    assert not leave_job_working_dir(sweep_dir) and Path.cwd() == start, "a job without a working_dir"
    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_0123456789abcdef.zip"}}
    monkeypatch.setenv(JOB_CONFIG_ENV, json.dumps(job))
    assert leave_job_working_dir(sweep_dir) and Path.cwd() == sweep_dir
