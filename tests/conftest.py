"""Shared fixtures: the CI environment for Ray / Tune / MLflow, and one local Ray for the whole session.

The environment is set at import, before any test imports Ray (stack notes §10): no usage stats, no auth token
in ~/.ray, Ray's temp dir short (unix socket paths are limited to ~107 bytes) and removed afterwards, no
telemetry, and MLflow's default URI pointed away from the working tree (our code always passes its own).
"""

from __future__ import annotations

import os
import shutil

import pytest

RAY_TMP = f"/tmp/mrmp-ray-{os.getpid()}"
CI_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_TMPDIR": RAY_TMP,
    "RAY_DEDUP_LOGS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_TRACKING_URI": f"sqlite:///{RAY_TMP}/stray-mlflow.db",
}
for _key, _value in CI_ENV.items():
    os.environ.setdefault(_key, _value)
os.environ.pop("RAY_ADDRESS", None)  # never join a cluster left running on this machine
os.makedirs(os.environ["RAY_TMPDIR"], exist_ok=True)


@pytest.fixture(scope="session")
def ray_local():
    """A local 2-CPU Ray with a small object store, shared by every test that needs Ray."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("RAY_TMPDIR") == RAY_TMP:
        shutil.rmtree(RAY_TMP, ignore_errors=True)
