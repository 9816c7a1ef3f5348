"""MLflow backend: one `MlflowClient`, one experiment, explicit run ids (never MLflow's global active run).

Used by one writer per sweep (the driver: its record thread while trials run), so a sqlite store never sees
concurrent writers from many trial processes; the driver's views thread only reads runs and adds artifacts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .base import FAILED, FINISHED, KILLED, RUNNING, TAG_PARENT, RunRecord, Tracker, _strs, param_value

PARENT_TAG = "mlflow.parentRunId"  # what the MLflow UI nests child runs by
# The MLflow UI (3.x) opens an experiment in its GenAI view unless told it holds model training runs.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
_BATCH_METRICS = 1000  # MLflow's per-request limits
_BATCH_PARAMS = 100
_MAX_PARAM_LEN = 6000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MlflowTracker(Tracker):
    """Logs to `uri` (sqlite:////abs/mlflow.db, http://host:port, ...) in experiment `experiment`."""

    def __init__(self, uri: str, experiment: str, artifact_location: str | None = None):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # reads print bars otherwise
        import logging

        from mlflow import MlflowClient

        for name in ("mlflow.store.db.utils", "alembic"):  # a new store's migrations, line by line
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri = uri
        if uri.startswith("sqlite:///"):
            create_sqlite_store(Path(uri[len("sqlite:///") :]))
        self.client = MlflowClient(uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            try:
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=artifact_location, tags={EXPERIMENT_KIND: MODEL_TRAINING}
                )
            except Exception:  # another process created it in between
                exp = self.client.get_experiment_by_name(experiment)
                if exp is None:
                    raise
                self.experiment_id = exp.experiment_id
        else:
            if exp.lifecycle_stage == "deleted":
                raise RuntimeError(
                    f"MLflow experiment {experiment!r} at {uri} is deleted; restore it in the UI or "
                    "remove it with `mlflow gc`"
                )
            self.experiment_id = exp.experiment_id
            if exp.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
        self.experiment = experiment

    # --- writing --------------------------------------------------------------------------------------------
    def create_run(self, name, parent_id=None, tags=None) -> str:
        tags = dict(tags or {})
        if parent_id:
            tags[PARENT_TAG] = parent_id
            tags[TAG_PARENT] = parent_id
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        return run.info.run_id

    def set_status(self, run_id, status) -> None:
        if status == RUNNING:
            self.client.update_run(run_id, status=RUNNING)
        elif status in (FINISHED, FAILED, KILLED):
            self.client.set_terminated(run_id, status=status, end_time=_now_ms())
        else:
            raise ValueError(f"unknown run status {status!r}")

    def log_params(self, run_id, params) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), param_value(v)[:_MAX_PARAM_LEN]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self.client.log_batch(run_id, params=items[i : i + _BATCH_PARAMS], synchronous=True)

    def set_tags(self, run_id, tags) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in _strs(tags).items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self.client.log_batch(run_id, tags=items[i : i + _BATCH_PARAMS], synchronous=True)

    def delete_tag(self, run_id, key) -> None:
        if key in self.client.get_run(run_id).data.tags:
            self.client.delete_tag(run_id, key)

    def log_series(self, run_id, points: Iterable[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        ts = _now_ms()
        items = [Metric(k, float(v), ts, int(step)) for k, v, step in points]
        for i in range(0, len(items), _BATCH_METRICS):
            self.client.log_batch(run_id, metrics=items[i : i + _BATCH_METRICS], synchronous=True)

    def log_artifact(self, run_id, name, data) -> None:
        parent, _, base = name.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="mrmp-artifact-") as tmp:
            path = Path(tmp) / base
            if isinstance(data, str):
                path.write_text(data, encoding="utf-8")
            else:
                path.write_bytes(data)
            self.client.log_artifact(run_id, str(path), artifact_path=parent or None)

    # --- reading --------------------------------------------------------------------------------------------
    def find_runs(self, parent_id=None, tags=None) -> list[RunRecord]:
        clauses = []
        if parent_id:
            clauses.append(f"tags.`{PARENT_TAG}` = {_quote(parent_id)}")
        for k, v in (tags or {}).items():
            clauses.append(f"tags.`{k}` = {_quote(str(v))}")
        out: list[RunRecord] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=" and ".join(clauses),
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
            out.extend(_record(r) for r in page)
            token = page.token
            if not token:
                return out

    def get_run(self, run_id) -> RunRecord:
        return _record(self.client.get_run(run_id))

    def metric_history(self, run_id, key) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def read_artifact(self, run_id, name) -> bytes:
        with tempfile.TemporaryDirectory(prefix="mrmp-artifact-") as tmp:
            try:
                path = self.client.download_artifacts(run_id, name, dst_path=tmp)
            except Exception as e:  # MLflow raises its own types for a missing artifact
                raise FileNotFoundError(f"run {run_id} has no artifact {name!r}: {e}") from None
            return Path(path).read_bytes()


def _record(run: Any) -> RunRecord:
    tags = dict(run.data.tags)
    return RunRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or "",
        status=run.info.status,
        parent_id=tags.get(PARENT_TAG),
        tags=tags,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        start_time=run.info.start_time / 1000 if run.info.start_time else None,
        end_time=run.info.end_time / 1000 if run.info.end_time else None,
    )


def cache_dir() -> Path:
    """mrmp's per-user cache: $MRMP_CACHE_DIR, else $XDG_CACHE_HOME/mrmp, else ~/.cache/mrmp."""
    if os.environ.get("MRMP_CACHE_DIR"):
        return Path(os.environ["MRMP_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mrmp"


def _migrated(tmp: str) -> None:
    """Build MLflow's schema in a new sqlite file `tmp` (MLflow runs every migration from its first one)."""
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{tmp}").search_experiments(max_results=1)


def _create_atomically(path: Path, fill: Callable[[str], None]) -> None:
    """`fill` a temporary file beside `path`, which then takes the name unless another process got there first: a
    process killed meanwhile leaves no half-built file behind, and two processes never write the same file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".creating")
    os.close(fd)
    os.unlink(tmp)  # sqlite creates it
    try:
        fill(tmp)
        if not path.exists():
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def empty_store_template() -> Path | None:
    """An empty, fully migrated sqlite store for this MLflow version in the user's cache (built on first use),
    or None where the cache cannot be written. Copying it replaces seconds of migrations per new store."""
    import mlflow

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no home, or a read-only one: every store is built from scratch
        return None
    if not os.access(folder, os.W_OK):
        return None
    template = folder / f"mlflow-{mlflow.__version__}-empty.db"
    if not template.exists():
        _create_atomically(template, _migrated)
    return template


def create_sqlite_store(path: Path) -> None:
    """Create a sqlite MLflow store at `path` if there is none, atomically (`_create_atomically`): a copy of the
    cached empty store (`empty_store_template`), or built by MLflow's migrations."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    template = empty_store_template()
    _create_atomically(path, _migrated if template is None else lambda tmp: shutil.copyfile(template, tmp))


def local_store(directory: str | os.PathLike[str]) -> tuple[str, str]:
    """(tracking URI, artifact location) of a local MLflow store: sqlite DB and artifact folder, absolute."""
    d = Path(directory).resolve()
    return f"sqlite:///{d / 'mlflow.db'}", (d / "artifacts").as_uri()
