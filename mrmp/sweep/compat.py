"""Everything mrmp reads from Ray beyond its public API, in one place (checked against Ray 2.60).

- `autoscaler_node_types()`: node types an autoscaler may add (the GCS cluster config that Ray Train reads too),
  so a request no live node fits is not refused on a cluster that can grow;
- `autoscaler_running()`: whether an autoscaler manages the cluster, when the config above says nothing;
- `LOST_ERROR_NAMES` / `is_lost_process(error)`: the errors Ray raises when a trial's process or node died
  (public exception classes, listed here because which ones mean "lost" is Ray's behaviour, not its API).

Each function degrades to a safe answer on another Ray version instead of failing the sweep.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


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
_LOST_TEXT = re.compile(rf"^(?:ray\.exceptions\.)?(?:{'|'.join(LOST_ERROR_NAMES)})\b", re.M)


def _lost_errors() -> tuple[type[BaseException], ...]:
    import ray.exceptions as rex

    return tuple(getattr(rex, n) for n in LOST_ERROR_NAMES if isinstance(getattr(rex, n, None), type))


def is_lost_process(error: BaseException | str | None) -> bool:
    """Whether a trial's error says its process or node died (not that its code raised): an exception (its cause
    chain included), or the error text Tune wrote for the trial (a traceback whose exception lines name Ray's
    error types; read as text, so nothing is unpickled)."""
    if error is None:
        return False
    if isinstance(error, str):
        return bool(_LOST_TEXT.search(error))
    lost = _lost_errors()
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, lost):
            return True
        error = error.__cause__ or error.__context__
    return False
