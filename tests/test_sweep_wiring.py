"""The sweep layer's cluster wiring (issue #5), without a cluster: the workers' environment inside a Ray Job,
where Tune's experiment goes (`sweep.storage.tune`), which requests no node can place, which trial errors mean a
lost process, and what `mrmp sweep` says about paths and addresses when it joins a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrmp.cli.main import build_parser, main
from mrmp.cli.sweep import relative_storage_warnings
from mrmp.sweep.cluster import JOB_CONFIG_ENV, WORKER_ENV, ray_init_kwargs, split_location
from mrmp.sweep.spec import load_sweep

ROOT = Path(__file__).parents[1]
QUICK = ROOT / "sweeps" / "quickstart.yaml"


def test_worker_env_merges_with_a_ray_job_runtime_env(monkeypatch):
    from ray.job_config import JobConfig
    from ray.runtime_env.runtime_env import _merge_runtime_env  # what ray.init does inside a job

    ours = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    monkeypatch.delenv(JOB_CONFIG_ENV, raising=False)
    assert ray_init_kwargs(ours) == {"runtime_env": {"env_vars": {**WORKER_ENV, **ours}}}

    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_abc.zip", "env_vars": {"DO_NOT_TRACK": "false"}}}
    monkeypatch.setenv(JOB_CONFIG_ENV, json.dumps(job))
    kwargs = ray_init_kwargs(ours)
    merged = _merge_runtime_env(JobConfig.from_json(job).runtime_env, kwargs["runtime_env"])
    assert merged is not None, "Ray refuses a runtime_env that sets a variable the job sets"
    assert merged["working_dir"] == "gcs://_ray_pkg_abc.zip"  # the job's code still ships to every node
    assert merged["env_vars"] == {**WORKER_ENV, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "false"}


def test_lost_processes_are_told_from_errors_the_trial_raised():
    """What decides between the outcomes `lost` (--resume retries it) and `failed`: Ray's errors for a dead
    process or node, however deep in the cause chain; never an exception of the trial's own code."""
    import ray.exceptions as rex

    from mrmp.sweep.compat import is_lost_process

    died = rex.ActorDiedError()
    assert is_lost_process(died) and is_lost_process(rex.ActorUnavailableError("node gone", None))
    wrapped = RuntimeError("the trial failed")
    wrapped.__cause__ = died
    assert is_lost_process(wrapped)
    assert not is_lost_process(RuntimeError("injected fault at epoch 4")) and not is_lost_process(None)
    text = "Traceback (most recent call last):\n  ...\nray.exceptions.ActorDiedError: The actor died unexpectedly"
    assert is_lost_process(text) and is_lost_process("ActorUnavailableError: node gone")
    assert not is_lost_process(
        "Traceback ...\nRuntimeError: the injected fault mentions ActorDiedError in passing"
    )


# What Tune writes to a trial's error.txt (str() of the error, one section per failure), as seen in the tests
DIED = """Failure # 1 (occurred at 2026-11-29_21-11-43)
The actor died unexpectedly before finishing this task.
\tclass_name: ImplicitFunc
\tpid: 20190
The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR
"""
NODE_GONE = """Failure # 1 (occurred at 2026-11-29_21-42-17)
The actor dd23d1d7e55fa3b45838b2f301000000 is unavailable: The actor is temporarily unavailable: RpcError: RPC \
error: Socket closed rpc_code: 14. The task may or may not have been executed on the actor.
"""
RAISED = """Failure # {n} (occurred at 2026-11-29_21-11-48)
\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=20189, ip=192.0.2.2, actor_id=2f7a5a7a3e, repr=probe)
  File "/work/wt/sweeptests/mrmp/sweep/trial.py", line 228, in run_trial
    trial.advance()
RuntimeError: injected fault at epoch 4
"""


def test_lost_processes_are_told_from_the_error_text_tune_writes():
    """Tune's error.txt holds Ray's message for a dead process or node, not the exception's name; only the last
    failure counts (a trial whose worker was killed once, then raised for good, failed)."""
    from mrmp.sweep.compat import is_lost_process

    assert is_lost_process(DIED) and is_lost_process(NODE_GONE)
    assert is_lost_process("Failure # 1 (occurred at x)\nray.exceptions.NodeDiedError: node 10.0.0.5 died\n")
    assert not is_lost_process(RAISED.format(n=1))
    assert not is_lost_process(DIED + RAISED.format(n=2))
    assert is_lost_process(RAISED.format(n=1) + DIED.replace("# 1", "# 2"))


def test_tune_storage_defaults_to_the_sweep_folder_and_takes_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = [f"sweep.storage.root={tmp_path}/store"]
    spec = load_sweep(QUICK, root)
    assert spec.tune_location == str(tmp_path / "store" / "quickstart" / "tune")
    assert split_location(spec.tune_location) == (str(tmp_path / "store" / "quickstart"), "tune")
    spec = load_sweep(QUICK, [*root, "sweep.storage.tune=s3://bucket/mrmp/qs/"])
    assert spec.tune_location == "s3://bucket/mrmp/qs" and split_location(spec.tune_location) == (
        "s3://bucket/mrmp",
        "qs",
    )
    assert spec.dir == tmp_path / "store" / "quickstart"  # sweep.json and the sqlite stores stay local
    spec = load_sweep(QUICK, [*root, "sweep.storage.tune=elsewhere/tune"])
    assert spec.tune_location == str(tmp_path / "elsewhere" / "tune")


@pytest.mark.parametrize(
    ("cpu", "gpu", "nodes", "refused"),
    [
        (1, 0, [{"CPU": 2.0}], None),
        (4, 0, [{"CPU": 2.0}, {"CPU": 2.0}], "sweep.resources.cpu"),  # CPUs of one node, not the sum
        (1, 1, [{"CPU": 8.0}], "sweep.resources.gpu"),
        (1, 0.25, [{"CPU": 0.0}, {"CPU": 4.0, "GPU": 1.0}], None),
        (1, 2, [{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}], "sweep.resources.gpu"),
        (8, 1, [{"CPU": 16.0}, {"CPU": 4.0, "GPU": 1.0}], "sweep.resources"),  # no node has both
    ],
)
def test_a_request_no_node_can_place_is_refused(cpu, gpu, nodes, refused):
    from mrmp.sweep.cluster import check_resources
    from mrmp.validation import ConfigError

    spec = load_sweep(QUICK, [f"sweep.resources.cpu={cpu}", f"sweep.resources.gpu={gpu}"])
    if refused is None:
        check_resources(spec, nodes, "the cluster")
        return
    with pytest.raises(ConfigError) as e:
        check_resources(spec, nodes, "the cluster")
    (issue,) = e.value.issues
    assert issue.key == refused and "no node of the cluster has that many" in issue.message


def test_address_help_names_host_port_and_ray_address(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "HOST:PORT" in text and "RAY_ADDRESS" in text and "ray://HOST:10001" in text


def test_joining_a_cluster_warns_about_relative_storage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = load_sweep(QUICK)  # the default root, runs/sweeps, is relative
    (warning,) = relative_storage_warnings(spec)
    assert "sweep.storage.root 'runs/sweeps' is relative" in warning and str(tmp_path) in warning
    assert not relative_storage_warnings(load_sweep(QUICK, [f"sweep.storage.root={tmp_path}"]))
    assert main(["sweep", str(QUICK), "--dry-run"]) == 0  # a local sweep: no warning
    assert "warning" not in capsys.readouterr().err
    assert main(["sweep", str(QUICK), "--dry-run", "--address", "auto", "--set", "sweep.storage.tune=t"]) == 0
    err = capsys.readouterr().err
    assert (
        "sweep.storage.root 'runs/sweeps' is relative" in err and "sweep.storage.tune 't' is relative" in err
    )


@pytest.mark.slow
def test_a_local_sweeps_workers_run_at_the_drivers_priority():
    """Ray's default worker niceness is 15; the local Ray a sweep starts runs its workers at the driver's."""
    import os
    import subprocess
    import sys

    code = (
        "import os, ray\n"
        "from mrmp.sweep.cluster import apply_env_defaults, init_ray\n"
        "apply_env_defaults(local=True)\n"
        "init_ray(None, {})\n"
        "print('nice', ray.get(ray.remote(lambda: os.nice(0)).remote()), os.nice(0))\n"
        "ray.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_worker_niceness"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("nice ")]
    worker, driver = map(int, line.split()[1:])
    assert worker == driver


@pytest.mark.slow
def test_a_local_sweeps_trials_take_the_workers_ray_prestarted_with_one_torch_thread(tmp_path):
    """A local sweep's Ray prestarts its workers (torch and the trial code preloaded) while the driver opens the
    stores; Tune's trial actors must land on them rather than wait seconds for new ones: the trial's process
    existed before the Tuner asked for it, still sees Tune's worker environment, and runs torch on one thread."""
    import os
    import subprocess
    import sys

    code = f"""
import json, os, time, ray
from ray import tune
from mrmp.sweep.cluster import apply_env_defaults, init_ray, limit_threads
from mrmp.sweep.compat import trials_on_prestarted_workers

def created():  # this process's start, unix time (Linux)
    boot = float([x.split()[1] for x in open("/proc/stat") if x.startswith("btime")][0])
    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")

def trainable(config):
    limit_threads(1)
    import torch
    tune.report({{"created": created(), "pl": os.environ.get("PL_DISABLE_FORK"), "threads": torch.get_num_threads()}})

apply_env_defaults(local=True)
init_ray(None, {{}})
asked = time.time()
time.sleep(3)  # a worker started for the trial would now start seconds after `asked`
with trials_on_prestarted_workers():
    grid = tune.Tuner(
        tune.with_resources(trainable, {{"cpu": 1}}),
        run_config=tune.RunConfig(storage_path={str(tmp_path)!r}, name="t", verbose=0),
    ).fit()
m = grid[0].metrics
print("result", json.dumps({{"created": m["created"], "asked": asked, "pl": m["pl"], "threads": m["threads"]}}))
ray.shutdown()
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("result ")]
    r = json.loads(line.split(" ", 1)[1])
    assert r["created"] < r["asked"], "the trial waited for a worker started for it"
    assert r["pl"] == "1" and r["threads"] == 1


@pytest.mark.slow
def test_the_local_ray_outlives_everything_the_driver_does_after_the_trials(tmp_path):
    """Ray quick-exits a process (status 1, no traceback) that touches its core worker after `ray.shutdown`: a
    shutdown running beside the driver's close (runs, report, best networks) had a resumed sweep exit 1 mid-close
    in one full-suite run. The driver closes everything first, then stops the Ray it started: Ray still answers
    at the end of the close."""
    import subprocess
    import sys

    from tests.faults import sweep_file

    f = sweep_file(
        tmp_path / "s.yaml",
        "outlive",
        tmp_path / "sweeps",
        {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2}},
        epochs=2,
        trials=1,
        concurrency=1,
    )
    code = f"""
import time, ray
from mrmp.cli.main import main
from mrmp.sweep.driver import Sweep

close = Sweep._close

def close_then_touch_ray(self, *args, **kwargs):
    out = close(self, *args, **kwargs)
    time.sleep(3)  # a shutdown started beside the close has ended by now
    if ray.is_initialized():  # (ray.put on a stopped Ray would start a new one)
        print("ray answers", ray.get(ray.put(41)) + 1, flush=True)
    return out

Sweep._close = close_then_touch_ray
raise SystemExit(main(["sweep", {str(f)!r}, "--quiet"]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ray answers 42" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]


@pytest.mark.slow
def test_stopping_the_local_ray_stops_its_autoscaler_monitor_before_the_gcs():
    """Ray's own shutdown stops the GCS first; the monitor's SIGTERM handler then reports to a GCS that is gone
    until Ray's 1 s grace period kills it (1.4 s of every local sweep's teardown). `stop_ray` kills the monitor
    first, and every process of the local Ray is gone afterwards."""
    import subprocess
    import sys

    code = """
import os, ray
from ray._private import node as ray_node
from mrmp.sweep.cluster import apply_env_defaults, init_ray
from mrmp.sweep.compat import stop_ray

order = []
kill = ray_node.Node._kill_process_type
def recorded(self, process_type, *args, **kwargs):
    order.append(process_type)
    return kill(self, process_type, *args, **kwargs)
ray_node.Node._kill_process_type = recorded

apply_env_defaults(local=True)
init_ray(None, {})
procs = ray._private.worker._global_node.all_processes
pids = [info.process.pid for infos in procs.values() for info in infos]
stop_ray()
alive = []
for pid in pids:
    try:
        os.kill(pid, 0)
        alive.append(pid)
    except ProcessLookupError:
        pass
print("order", ",".join(order))
print("alive", len(alive), "initialized", ray.is_initialized())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    order = next(x for x in out.stdout.splitlines() if x.startswith("order ")).split(" ", 1)[1].split(",")
    assert order.index("monitor") < order.index("gcs_server")
    assert "alive 0 initialized False" in out.stdout
