"""Ray's own floor under item 4: what any sweep on a local Ray pays before its first training and after its last.

Run as `python -m mrmp.bench.rayfloor` (a fresh process, as a user's `mrmp sweep` is): import Ray, start it as
the sweep does (`cluster.init_ray`: the same options, the same preloaded worker modules), run one task that
needs what a trial's worker needs (torch and the trial code imported), and stop Ray as the sweep does. Prints
one JSON object, times in seconds from just before `import ray` (torch and the sweep layer already imported, as
in a process that calls the sweep API):

    init_s      Ray started and this driver connected
    task_s      the task began on a worker with every module of `WORKER_MODULES` imported: no sweep on this
                Ray can start training earlier
    shutdown_s  `stop_ray()` alone
    preloaded   whether the worker had those modules already (Ray's prestarted, preloaded workers)

A sweep's time to training minus `task_s` is what the sweep layer itself adds to its start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any


def _first_task(modules: list[str]) -> tuple[float, bool]:
    import importlib

    preloaded = all(m in sys.modules for m in modules)
    for m in modules:
        importlib.import_module(m)
    return time.time(), preloaded


def measure() -> dict[str, Any]:
    """One floor measurement in this process (which must not have started Ray). The clock starts after the
    sweep layer's own modules (and torch, which they import) are loaded, as they are when a sweep's API call
    starts, and before Ray is imported, as it is not then."""
    from mrmp.sweep.cluster import WORKER_MODULES, init_ray
    from mrmp.sweep.compat import stop_ray

    t0 = time.time()
    import ray

    init_ray(None, {})
    t1 = time.time()
    started, preloaded = ray.get(ray.remote(num_cpus=1)(_first_task).remote(WORKER_MODULES))
    t2 = time.time()
    stop_ray()
    t3 = time.time()
    return {"init_s": t1 - t0, "task_s": started - t0, "shutdown_s": t3 - t2, "preloaded": preloaded}


def ray_floor() -> dict[str, Any]:
    """`measure()` in a fresh Python process (this one may have imported or started Ray already)."""
    done = subprocess.run(
        [sys.executable, "-m", "mrmp.bench.rayfloor"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the Ray floor measurement failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure()))
