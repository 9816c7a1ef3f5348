"""Cluster hooks for the sweep layer: what makes one sweep file behave the same on a laptop and on a Ray cluster.

- `WORKER_ENV` / `ray_init_kwargs(env)`: environment every trial process needs. Joining a cluster, it goes to
  `ray.init` as runtime_env env_vars, so it reaches the workers of every node; inside a Ray Job (`ray job
  submit`) Ray merges it with the job's runtime_env (its working_dir stays) and a variable the job already sets
  is left to the job. A local Ray inherits it from the driver's environment instead: Ray hands a trial only a
  worker started with the trial's runtime_env, so any runtime_env would keep the trials off the workers it
  prestarted (and preloaded), and each trial would wait for a new worker (`compat.trials_on_prestarted_workers`).
- `leave_job_working_dir(to)`: inside a Ray Job, the driver leaves the job's working directory (Ray may replace
  it while the job runs) before Ray starts.
- `trial_resources(cpu, gpu)`: the per-trial request for `tune.with_resources`, checked the way Ray schedules
  it (a fractional GPU share is at most 1; 0.25 puts four trials on one GPU).
- `isolate_devices(gpu)`: first thing in a trial: a trial that asked for no GPU sees none, so
  `train.device: auto` picks the CPU instead of silently sharing GPU 0 with GPU trials.
- `limit_threads(cpu)`: first thing in a trial: torch runs as many threads as the trial has CPUs.
- `device_tags()`: what the trial got (Ray's GPU ids, CUDA_VISIBLE_DEVICES, node): tags for its tracking run.
- `apply_env_defaults(local)`: the measured environment defaults for this stack (a value already set wins).
- `storage_uri(root)`: a sweep storage root that may be a URI (s3://, gs://) or a path (made absolute).

Importing this module never imports Ray (only the functions that need it do, lazily).
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Ray >= 2.49 no longer sets CUDA_VISIBLE_DEVICES for a task or actor that asked for zero GPUs (ray issue
# 54868): it inherits the node's value, i.e. every GPU. With this variable Ray sets it to "" again.
WORKER_ENV = {"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"}

_URI_SCHEMES = ("s3://", "gs://", "gcs://", "hdfs://", "abfs://", "az://", "file://")
# Set by `ray job submit` in the driver's environment: the job's config, runtime_env included.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def job_runtime_env() -> dict[str, Any]:
    """The runtime_env of the Ray Job this driver runs in ({} outside a job)."""
    try:
        job = json.loads(os.environ.get(JOB_CONFIG_ENV) or "{}")
    except ValueError:
        return {}
    return dict((job or {}).get("runtime_env") or {})


def leave_job_working_dir(to: Path) -> bool:
    """Inside a Ray Job shipped with a working_dir, make `to` (created if missing) the current directory; True
    when it did. Call it once every path given relative to the start directory is resolved, before Ray starts.

    The job's driver starts in the job's unpacked working_dir, a directory Ray owns: a node's runtime-env agent
    that unpacks the same package there again (nodes sharing one temp dir, or after its cache evicted it) removes
    it first. The driver is then left in a directory that no longer exists, and Ray Tune and MLflow still
    resolve paths against it (`os.path.relpath`, `Path.cwd`): FileNotFoundError."""
    if not job_runtime_env().get("working_dir"):
        return False
    to.mkdir(parents=True, exist_ok=True)
    os.chdir(to)
    return True


def ray_init_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Extra `ray.init` arguments for a sweep driver (local Ray or `--address` of a cluster): WORKER_ENV plus
    `env` as runtime_env env_vars.

    Inside a Ray Job, `ray.init` merges these with the job's runtime_env (its working_dir, pip, ... stay as
    they are) and refuses to start when both set the same variable; such a variable is left to the job."""
    env_vars = {**WORKER_ENV, **(env or {})}
    taken = job_runtime_env().get("env_vars") or {}
    return {"runtime_env": {"env_vars": {k: v for k, v in env_vars.items() if k not in taken}}}


def check_gpu(gpu: float) -> str | None:
    """Why `gpu` is not a valid per-trial GPU request, or None. Ray packs fractional shares (<= 1) onto one GPU
    and gives whole numbers of GPUs; a share such as 1.5 cannot be placed on GPU ids."""
    if not math.isfinite(gpu) or gpu < 0:
        return f"{gpu}: must be >= 0"
    if gpu > 1 and gpu != int(gpu):
        return f"{gpu}: a fraction of one GPU (0 < gpu <= 1, e.g. 0.25 = four trials per GPU) or whole GPUs"
    return None


def trial_resources(cpu: float, gpu: float) -> dict[str, float]:
    """The resource request of one trial, as `tune.with_resources` takes it."""
    problem = check_gpu(gpu)
    if problem:
        raise ValueError(f"sweep.resources.gpu: {problem}")
    if not cpu > 0:
        raise ValueError(f"sweep.resources.cpu: {cpu}: must be > 0")
    return {"cpu": float(cpu), "gpu": float(gpu)}


def isolate_devices(gpu: float) -> None:
    """Call at the start of a trial, before anything touches CUDA: with no GPU requested, hide every GPU.

    Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned when a trial asks for some (a fractional share gets
    the id of the GPU it shares), so `train.device: auto` -> `cuda` is cuda:0 of that visible set. When the trial
    asked for none, Ray (>= 2.49, unless WORKER_ENV is set) leaves the variable alone and CUDA would see
    every GPU of the node."""
    if gpu <= 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def limit_threads(cpu: float) -> None:
    """Call at the start of a trial: one torch thread per CPU it asked for (`train.threads` may still set another
    count). A worker Ray prestarted imported torch before Ray set OMP_NUM_THREADS for the trial, so torch would
    otherwise run as many threads as the node has cores, and concurrent trials would fight over them."""
    import torch

    torch.set_num_threads(max(1, int(cpu)))


def device_tags() -> dict[str, str]:
    """Where a trial runs and which accelerators Ray gave it (call inside a Ray worker)."""
    import ray

    ctx = ray.get_runtime_context()
    return {
        "mrmp.ray_node_id": ctx.get_node_id(),
        "mrmp.gpu_ids": ",".join(str(i) for i in ray.get_gpu_ids()),
        "mrmp.cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
    }


def storage_uri(root: str) -> str:
    """A storage root as Ray Tune's `storage_path` takes it: a URI unchanged, a path absolute.

    On a multi-node cluster it must be storage every node reaches (NFS/EFS/Lustre path, or s3:// / gs://):
    a trial retried on another node restores from the checkpoints there."""
    if root.startswith(_URI_SCHEMES):
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def is_uri(root: str) -> bool:
    return root.startswith(_URI_SCHEMES) and not root.startswith("file://")


def split_location(location: str) -> tuple[str, str]:
    """A Tune experiment folder (path or URI) as Tune's (storage_path, name): `s3://b/x/tune` -> (`s3://b/x`,
    `tune`); the storage path is empty for a bare bucket (`s3://b`), which Tune cannot use."""
    if location.startswith(_URI_SCHEMES):
        scheme, _, rest = location.partition("://")
        parent, name = posixpath.split(rest.rstrip("/"))
        return (f"{scheme}://{parent}" if parent else ""), name
    path = Path(location)
    return str(path.parent), path.name


# Measured defaults for this stack (docs/sweeps.md, stack notes §10); a value already in the environment wins.
ENV_DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the tracking store is the record: no result.json/CSV/TensorBoard
    "RAY_AIR_NEW_OUTPUT": "0",  # Tune's classic output, which verbose=0 silences: mrmp prints its own
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
LOCAL_ENV_DEFAULTS = {
    "RAY_AUTH_MODE": "disabled",  # loopback-only local cluster: no ~/.ray/auth_token
    # Ray starts its workers at nice 15: on a laptop or a shared machine the trials then get a few % of a core
    # next to any other busy process; a local sweep's trials run at the priority `mrmp train` would.
    "RAY_worker_niceness": "0",
}


def apply_env_defaults(local: bool = True) -> None:
    for k, v in {**ENV_DEFAULTS, **(LOCAL_ENV_DEFAULTS if local else {})}.items():
        os.environ.setdefault(k, v)


OBJECT_STORE_BYTES = 256 * 1024**2  # the datasets are kB to MB; Ray's default would reserve 30 % of RAM
WORKER_MODULES = [
    "torch",
    "mrmp.sweep.hooks",
]  # what a trial's worker imports first (seconds): preloaded locally


def init_ray(address: str | None, env: Mapping[str, str]) -> bool:
    """Start a local Ray (capped object store, preloaded workers) or join `address`; False when Ray was already
    running. `env` reaches the workers: through the environment locally, as runtime_env env_vars on a cluster
    (merged with a Ray Job's own)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, **ray_init_kwargs(env))
    else:
        from .compat import preload, tune_actor_env

        # inherited by the local Ray's processes
        for k, v in {**WORKER_ENV, **tune_actor_env(), **env}.items():
            os.environ.setdefault(k, v)
        ray.init(
            address="local",
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            **preload(WORKER_MODULES),
        )
    return True


def local_nodes(gpus: bool = True) -> list[dict[str, float]]:
    """This machine as Ray would see it when started locally: its CPUs and (`gpus`) the GPUs torch finds."""
    count = 0
    if gpus:
        import torch

        count = torch.cuda.device_count()
    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(count)}]


def check_resources(spec: Any, nodes: list[dict[str, float]], where: str) -> None:
    """Refuse a per-trial request no node can meet (Tune would wait for it forever): ConfigError naming the key."""
    from mrmp.validation import ConfigError, Issue

    cpu, gpu = spec.cpu, spec.gpu
    if any(n.get("CPU", 0) >= cpu and n.get("GPU", 0) >= gpu for n in nodes):
        return
    shapes = "; ".join(sorted({f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes})) or "none"
    if gpu and not any(n.get("GPU", 0) >= gpu for n in nodes):
        key, want = "sweep.resources.gpu", f"{gpu:g} GPU per trial"
    elif gpu == 0:
        key, want = "sweep.resources.cpu", f"{cpu:g} CPU per trial"
    else:
        key, want = "sweep.resources", f"{cpu:g} CPU and {gpu:g} GPU per trial (on one node)"
    raise ConfigError(
        [
            Issue(
                spec.path,
                key,
                f"{want}, but no node of {where} has that many (nodes: {shapes}); "
                "lower the request (--set ...) or add such a node",
            )
        ]
    )


def check_cluster(spec: Any, address: str | None, log: Any = print) -> None:
    """The running Ray's live nodes, and the node types its autoscaler can add, against one trial's request."""
    import ray

    from mrmp.validation import ConfigError

    from .compat import autoscaler_node_types, autoscaler_running

    types = autoscaler_node_types()
    nodes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")] + (types or [])
    where = f"the Ray cluster at {address}" if address else "the local Ray"
    try:
        check_resources(spec, nodes, where)
    except ConfigError as e:
        if types or not address or not autoscaler_running():
            raise
        log(f"warning: {e.issues[0].message}; the cluster's autoscaler may add such a node")
