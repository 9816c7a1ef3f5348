"""Local-files backend (`tracking.backend: local`): no MLflow, plain JSON you can read with any tool.

    <root>/<run_id>/run.json        name, status, parent, tags, params, times
    <root>/<run_id>/metrics.jsonl   one {"key", "value", "step"} per line
    <root>/<run_id>/artifacts/...

Single writer (the sweep's record thread); readers (its views thread, `mrmp` commands) may read while it
writes: run.json is replaced atomically and metrics.jsonl is read up to its last complete line.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from .base import RUNNING, RunRecord, Tracker, _strs, param_value


class LocalTracker(Tracker):
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, run_id: str) -> Path:
        d = self.root / run_id
        if not (d / "run.json").exists():
            raise KeyError(f"no run {run_id} under {self.root}")
        return d

    def _read(self, run_id: str) -> dict[str, Any]:
        return json.loads((self._dir(run_id) / "run.json").read_text(encoding="utf-8"))

    def _write(self, run_id: str, meta: dict[str, Any]) -> None:
        path = self.root / run_id / "run.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        tmp.replace(path)

    def create_run(self, name, parent_id=None, tags=None) -> str:
        run_id = uuid.uuid4().hex
        (self.root / run_id / "artifacts").mkdir(parents=True)
        meta = {
            "run_id": run_id,
            "name": name,
            "status": RUNNING,
            "parent_id": parent_id,
            "tags": _strs(tags),
            "params": {},
            "start_time": time.time(),
            "end_time": None,
        }
        self._write(run_id, meta)
        return run_id

    def set_status(self, run_id, status) -> None:
        meta = self._read(run_id)
        meta["status"] = status
        meta["end_time"] = None if status == RUNNING else time.time()
        self._write(run_id, meta)

    def log_params(self, run_id, params) -> None:
        meta = self._read(run_id)
        meta["params"].update({str(k): param_value(v) for k, v in params.items()})
        self._write(run_id, meta)

    def set_tags(self, run_id, tags) -> None:
        meta = self._read(run_id)
        meta["tags"].update(_strs(tags))
        self._write(run_id, meta)

    def delete_tag(self, run_id, key) -> None:
        meta = self._read(run_id)
        if meta["tags"].pop(key, None) is not None:
            self._write(run_id, meta)

    def log_series(self, run_id, points) -> None:
        lines = [json.dumps({"key": k, "value": float(v), "step": int(s)}) + "\n" for k, v, s in points]
        with open(self._dir(run_id) / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.writelines(lines)

    def log_artifact(self, run_id, name, data) -> None:
        path = self._dir(run_id) / "artifacts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    def _metrics(self, run_id: str) -> list[dict[str, Any]]:
        path = self._dir(run_id) / "metrics.jsonl"
        if not path.exists():
            return []
        # Only complete lines: a reader (the sweep's views) may meet a line the writer is still appending.
        *complete, _partial = path.read_text(encoding="utf-8").split("\n")
        return [json.loads(line) for line in complete if line]

    def get_run(self, run_id) -> RunRecord:
        meta = self._read(run_id)
        latest: dict[str, tuple[int, float]] = {}
        for m in self._metrics(run_id):
            if m["key"] not in latest or m["step"] >= latest[m["key"]][0]:
                latest[m["key"]] = (m["step"], m["value"])
        return RunRecord(
            run_id=run_id,
            name=meta["name"],
            status=meta["status"],
            parent_id=meta["parent_id"],
            tags=meta["tags"],
            params=meta["params"],
            metrics={k: v for k, (_, v) in latest.items()},
            start_time=meta["start_time"],
            end_time=meta["end_time"],
        )

    def find_runs(self, parent_id=None, tags=None) -> list[RunRecord]:
        metas = []
        for path in self.root.glob("*/run.json"):
            meta = json.loads(path.read_text(encoding="utf-8"))
            if parent_id and meta["parent_id"] != parent_id:
                continue
            if any(meta["tags"].get(k) != str(v) for k, v in (tags or {}).items()):
                continue
            metas.append(meta)
        metas.sort(key=lambda m: m["start_time"])
        return [self.get_run(m["run_id"]) for m in metas]

    def metric_history(self, run_id, key) -> list[tuple[int, float]]:
        return [(m["step"], m["value"]) for m in self._metrics(run_id) if m["key"] == key]

    def read_artifact(self, run_id, name) -> bytes:
        path = self._dir(run_id) / "artifacts" / name
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id} has no artifact {name!r}")
        return path.read_bytes()
