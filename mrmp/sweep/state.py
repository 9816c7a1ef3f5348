"""A launched sweep on disk: `sweep.json` (what export, report, ui and --resume read) and the driver's lock.

`sweep.json` says where the sweep's tracking store, study and Tune experiments are, which parts (Tune
experiments: the first launch, then one per growth) it has and how each ended. The lock (`.driver.lock`, an
`fcntl` lock the kernel drops when the driver exits, however it exits) lets one driver at a time run a sweep.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrmp.tracking import TrackerSpec
from mrmp.validation import ConfigError, Issue

from .objectives import Objective

STATE_FILE = "sweep.json"
LOCK_FILE = ".driver.lock"
DEFAULT_ROOT = "runs/sweeps"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class SweepState:
    """A launched sweep, as recorded in its `sweep.json`."""

    dir: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def parent_run_id(self) -> str:
        return self.data["parent_run_id"]

    @property
    def tracking(self) -> TrackerSpec:
        return TrackerSpec(**self.data["tracking"])

    @property
    def objectives(self) -> list[Objective]:
        return [Objective(**o) for o in self.data["objectives"]]

    @property
    def targets(self) -> list[float] | None:
        return self.data.get("target_rates")

    @property
    def rate_tolerance(self) -> float | None:
        """`sweep.rate_tolerance` at launch (None: a sweep launched before it was recorded)."""
        return self.data.get("rate_tolerance")

    @property
    def parts(self) -> list[dict[str, Any]]:
        """The sweep's Tune experiments in launch order: {name, trials, status}."""
        return self.data.setdefault("parts", [])

    @property
    def trials_launched(self) -> int:
        return sum(int(p["trials"]) for p in self.parts)

    def save(self) -> None:
        """Write atomically."""
        self.data["updated"] = now()
        path = self.dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def read_state(sweep_dir: Path) -> SweepState | None:
    path = sweep_dir / STATE_FILE
    if not path.is_file():
        return None
    return SweepState(sweep_dir, json.loads(path.read_text(encoding="utf-8")))


def open_sweep(ref: str) -> SweepState:
    """The sweep named by `ref`: a sweep file, a sweep folder, or a name under runs/sweeps."""
    p = Path(ref)
    if p.is_file():
        from .spec import load_sweep

        sweep_dir = load_sweep(p).dir
    elif p.is_dir():
        sweep_dir = p.resolve()
    else:
        sweep_dir = Path(DEFAULT_ROOT, ref).resolve()
    state = read_state(sweep_dir)
    if state is None:
        raise ConfigError(
            [
                Issue(
                    ref,
                    "",
                    f"no launched sweep at {sweep_dir} (no {STATE_FILE}); run `mrmp sweep <file>` first",
                )
            ]
        )
    return state


class DriverLock:
    """One driver per sweep: an exclusive `fcntl` lock on `<sweep>/.driver.lock`, released when the process ends
    (exit, crash, SIGKILL). The file records who holds it, for the message a second driver gets."""

    def __init__(self, sweep_dir: Path):
        self.path = sweep_dir / LOCK_FILE
        self._fd: int | None = None

    def holder(self) -> dict[str, Any] | None:
        """Who holds the lock now (None: nobody)."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(self.path.read_text(encoding="utf-8") or "{}")
            except ValueError:
                return {}
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> bool:
        """Take the lock; False when another driver holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": platform.node(), "since": now()}).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Drop the lock; a sweep folder that holds nothing else (a launch refused early) goes too."""
        if self._fd is not None:
            if not (self.path.parent / STATE_FILE).exists():
                self.path.unlink(missing_ok=True)
                if self.path.parent.is_dir() and not any(self.path.parent.iterdir()):
                    self.path.parent.rmdir()
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
