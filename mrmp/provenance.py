"""Where a result comes from: the code's git commit (and whether the tree was dirty), package versions, the
machine and the date. One helper for run tags, benchmark records and results/ READMEs.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path

PACKAGES = ("torch", "numpy", "ray", "optuna", "mlflow")


def git_commit(root: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout mrmp runs from; (None, None) outside a git checkout."""
    import mrmp

    root = root or Path(mrmp.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status)


def machine() -> dict[str, str]:
    """What ran it: host, processor, cores, memory, Python."""
    info = {
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cores": str(os.cpu_count() or "?"),
        "python": platform.python_version(),
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = f"{pages * size / 2**30:.0f}"
    except (ValueError, OSError, AttributeError):
        pass
    return info


def provenance() -> dict[str, str]:
    """Tags for every run: mrmp and package versions, the git commit and dirty flag (MLflow's own commit tag)."""
    import mrmp

    tags = {"mrmp.version": mrmp.__version__, "mrmp.python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            tags[f"mrmp.versions.{pkg}"] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    commit, dirty = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["mrmp.git_dirty"] = "true" if dirty else "false"
    return tags


def record() -> dict[str, object]:
    """A results/ or benchmark header: commit, dirty flag, machine, UTC date."""
    commit, dirty = git_commit()
    return {
        "commit": commit,
        "dirty": dirty,
        "machine": machine(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
