"""One writer for many trials: a Ray actor owns the real tracker; trials hold a `RemoteTracker` proxy.

Writes are fire-and-forget (Ray runs one caller's actor calls in submission order); `flush()` waits for them
and raises the first error. A trial flushes before each checkpoint, so whatever a checkpoint covers is stored.
Metric points are coalesced on the trial's side until the next other call or flush: one actor call and one
database transaction per batch instead of one per epoch.
"""

from __future__ import annotations

from typing import Any

import ray

from .base import Tracker

_MAX_PENDING = 256


class _TrackerServer:
    """The actor: every call lands on one tracker, one at a time."""

    def __init__(self, spec: Any):
        self.tracker = spec.create()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.tracker, method)(*args, **kwargs)


class RemoteTracker(Tracker):
    """A `Tracker` whose calls run in the tracking actor (see `start_tracker_actor`)."""

    def __init__(self, handle: Any):
        self._handle = handle
        self._pending: list[Any] = []
        self._points: dict[str, list[tuple[str, float, int]]] = {}  # run id -> metric points not sent yet

    def __getstate__(self) -> dict[str, Any]:
        return {"_handle": self._handle, "_pending": [], "_points": {}}

    def _send_points(self) -> None:
        points, self._points = self._points, {}
        for run_id, batch in points.items():
            self._pending.append(self._handle.call.remote("log_series", run_id, batch))

    def _send(self, method: str, *args: Any, **kwargs: Any) -> None:
        self._send_points()  # keeps the order of calls
        self._pending.append(self._handle.call.remote(method, *args, **kwargs))
        if len(self._pending) >= _MAX_PENDING:
            self.flush()

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return ray.get(self._handle.call.remote(method, *args, **kwargs))

    def flush(self) -> None:
        self._send_points()
        pending, self._pending = self._pending, []
        if pending:
            ray.get(pending)

    # writes that return nothing go fire-and-forget; those that return an id wait
    def create_run(self, name, parent_id=None, tags=None) -> str:
        return self._ask("create_run", name, parent_id, tags)

    def find_child(self, parent_id, key, adopt=None):
        return self._ask("find_child", parent_id, key, adopt)

    def start_child(self, parent_id, name, key, tags=None, params=None) -> str:
        return self._ask("start_child", parent_id, name, key, tags, params)

    def start_parent(self, name, tags=None, params=None) -> str:
        return self._ask("start_parent", name, tags, params)

    def set_status(self, run_id, status) -> None:
        self._send("set_status", run_id, status)

    def log_params(self, run_id, params) -> None:
        self._send("log_params", run_id, dict(params))

    def set_tags(self, run_id, tags) -> None:
        self._send("set_tags", run_id, dict(tags))

    def delete_tag(self, run_id, key) -> None:
        self._send("delete_tag", run_id, key)

    def log_series(self, run_id, points) -> None:
        self._points.setdefault(run_id, []).extend((k, float(v), int(s)) for k, v, s in points)

    def log_artifact(self, run_id, name, data) -> None:
        self._send("log_artifact", run_id, name, data)

    def log_curve(self, run_id, points, plot_title=None) -> None:
        self._send(
            "log_curve", run_id, list(points), plot_title
        )  # the CSV and the plot are built in the actor

    def end(self, run_id, status="FINISHED") -> None:
        self._send("end", run_id, status)

    def find_runs(self, parent_id=None, tags=None):
        return self._ask("find_runs", parent_id, tags)

    def get_run(self, run_id):
        return self._ask("get_run", run_id)

    def metric_history(self, run_id, key):
        return self._ask("metric_history", run_id, key)

    def read_artifact(self, run_id, name) -> bytes:
        return self._ask("read_artifact", run_id, name)

    def close(self) -> None:
        """Flush, then stop the actor."""
        try:
            self.flush()
        finally:
            ray.kill(self._handle)


def actor_options(spec: Any, node_id: str, name: str | None = None) -> dict[str, Any]:
    """Where the tracking actor runs: always on the driver's node (`node_id`), next to the driver that opened
    the store, so its records survive exactly what the driver survives. A store that is a file there (sqlite,
    local files) pins it hard (anywhere else it would write another file); a server only prefers it (soft:
    when that node cannot take it, any node can reach the server)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options: dict[str, Any] = {
        "num_cpus": 0,
        "max_restarts": 2,
        "scheduling_strategy": NodeAffinitySchedulingStrategy(
            node_id=node_id, soft=not spec.single_writer_file
        ),
    }
    if name:
        options["name"] = name
    return options


def start_tracker_actor(spec: Any, name: str | None = None) -> RemoteTracker:
    """Start the tracking actor for `spec` (a `TrackerSpec`) on this (the driver's) node and wait until its
    tracker is open."""
    options = actor_options(spec, ray.get_runtime_context().get_node_id(), name)
    handle = ray.remote(_TrackerServer).options(**options).remote(spec)
    ray.get(handle.call.remote("flush"))  # surfaces a failed open (bad URI, corrupt DB) now, not in a trial
    return RemoteTracker(handle)
