"""Everything mrmp reads from Ray beyond its public API, in one place (checked against Ray 2.60).

- `autoscaler_node_types()`: node types an autoscaler may add (the GCS cluster config that Ray Train reads too),
  so a request no live node fits is not refused on a cluster that can grow;
- `autoscaler_running()`: whether an autoscaler manages the cluster, when the config above says nothing;
- `preload(modules)`: `ray.init` arguments that make a local Ray's idle workers import `modules` as they start
  (its internal system config), so a trial's worker is ready when Tune asks for it;
- `trials_on_prestarted_workers()`: a context in which Ray Tune's trial actors carry no runtime_env of their own,
  so that on a local Ray they take the workers Ray prestarted (and preloaded) instead of starting new ones;
- `stop_ray()`: `ray.shutdown()`, with the local autoscaler monitor stopped first (~1 s sooner);
- `LOST_ERROR_NAMES` / `is_lost_process(error)`: the errors Ray raises when a trial's process or node died
  (public exception classes, listed here because which ones mean "lost" is Ray's behaviour, not its API).

Each function degrades to a safe answer on another Ray version instead of failing the sweep.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def preload(modules: list[str]) -> dict[str, Any]:
    """`ray.init(**preload([...]))` for a local Ray: its prestarted workers import `modules` while the driver
    gets on with the tracking store and the Tuner (torch and the trial code: seconds per worker)."""
    return {"_system_config": {"preload_python_modules": list(modules)}}


def _tune_actor_defaults() -> dict[str, str] | None:
    """Tune's table of the env vars every trial actor gets as its runtime_env (`class_cache.DEFAULT_ENV_VARS`:
    PL_DISABLE_FORK=1 in Ray 2.60, for PyTorch Lightning); None on a Ray version without it."""
    try:
        from ray.tune.execution import class_cache

        defaults = class_cache.DEFAULT_ENV_VARS
    except (ImportError, AttributeError):
        return None
    return defaults if isinstance(defaults, dict) else None


def tune_actor_env() -> dict[str, str]:
    """The env vars Tune would give each trial actor (a copy; {} when unknown): what a local Ray's processes
    inherit instead, see `trials_on_prestarted_workers`."""
    return dict(_tune_actor_defaults() or {})


@contextlib.contextmanager
def trials_on_prestarted_workers() -> Iterator[None]:
    """For a local Ray: while inside, Tune's trial actors take Ray's prestarted workers.

    Tune gives every trial actor a runtime_env (`tune_actor_env()`), and Ray hands an actor only a worker
    started with the same runtime_env: none of the workers it prestarted (with `preload` modules already
    imported) qualifies, so each trial actor waited for a new worker to start and import torch and Tune
    (2.5-4.5 s on 2 cores, measured). Inside this context Tune's table is empty; `cluster.init_ray` puts its
    variables in the environment the local Ray's workers inherit, and starts it without a runtime_env of its
    own. Restored on exit; on another Ray version without the table, nothing changes."""
    defaults = _tune_actor_defaults()
    if defaults is None:
        yield
        return
    saved = dict(defaults)
    defaults.clear()
    try:
        yield
    finally:
        defaults.update(saved)


def stop_ray() -> None:
    """`ray.shutdown()`; for a Ray this process started, its autoscaler monitor is killed first.

    Ray stops the GCS before the monitor, whose SIGTERM handler then tries to report its exit to the stopped GCS
    until Ray's 1 s grace period runs out and it is killed: `ray.shutdown()` took 1.36-1.42 s on 2 cores, 0.13-0.39 s
    with the monitor gone first (measured alone). The monitor of a fixed local Ray scales nothing and holds no
    state. A driver that joined a cluster owns no process: the shutdown only disconnects it."""
    import ray

    try:
        from ray._private import ray_constants
        from ray._private.worker import _global_node as node

        monitor = ray_constants.PROCESS_TYPE_MONITOR
        if node is not None and monitor in node.all_processes:
            node._kill_process_type(monitor, check_alive=False, allow_graceful=False, wait=True)
    except Exception:  # noqa: BLE001  (another Ray version: the plain shutdown below)
        pass
    ray.shutdown()


def autoscaler_node_types() -> list[dict[str, float]] | None:
    """Resources of each node type the autoscaler config lists with a non-zero max count; None if unknown."""
    try:
        from ray._private.state import state as ray_state

        config = ray_state.get_cluster_config()
    except Exception:  # noqa: BLE001  (another Ray version: unknown)
        return None
    if config is None:
        return []
    return [dict(g.resources) for g in config.node_group_configs if g.max_count]


def autoscaler_running() -> bool:
    """Whether an autoscaler manages the cluster: the cluster launcher's bootstrap file on this (head) node, as
    Tune checks, or node types in the autoscaler's status report (without one Ray names each node `node_<id>`).
    Unknown counts as yes, so the caller only warns."""
    if Path("~/ray_bootstrap_config.yaml").expanduser().exists():
        return True
    try:
        from ray._private import ray_constants
        from ray.experimental import internal_kv

        raw = internal_kv._internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
    except Exception:  # noqa: BLE001
        return True
    report = (json.loads(raw).get("autoscaler_report") or {}) if raw else {}
    mapping = report.get("node_type_mapping") or {}
    return any(v != f"node_{k}" for k, v in mapping.items())


LOST_ERROR_NAMES = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "NodeDiedError",
                    "WorkerCrashedError", "OutOfMemoryError", "LocalRayletDiedError", "ObjectLostError")  # fmt: skip
# Tune's error.txt holds str() of the error: for these, Ray's message without the type's name.
LOST_MESSAGES = (r"The actor died unexpectedly", r"The actor \S+ is unavailable", r"The worker died unexpectedly",
                 r"The task's local raylet died", r"The actor experienced an error before finishing")  # fmt: skip
_LOST_TEXT = re.compile(
    rf"^(?:(?:ray\.exceptions\.)?(?:{'|'.join(LOST_ERROR_NAMES)})\b|{'|'.join(LOST_MESSAGES)})", re.M
)


def _lost_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    return tuple(getattr(rex, n) for n in LOST_ERROR_NAMES if isinstance(getattr(rex, n, None), type))


def is_lost_process(error: BaseException | str | None) -> bool:
    """Whether a trial's error says its process or node died (not that its code raised): an exception (its cause
    chain included), or the error text Tune wrote for the trial (a traceback whose exception lines name Ray's
    error types; read as text, so nothing is unpickled)."""
    if error is None:
        return False
    if isinstance(error, str):  # the last failure's section decides (Tune appends one per failure)
        return bool(_LOST_TEXT.search(error.rsplit("Failure # ", 1)[-1]))
    lost = _lost_errors()
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, lost):
            return True
        error = error.__cause__ or error.__context__
    return False
