"""Fault injection for the sweep tests (no tests here): tiny sweep files, a probe around every trial, the
processes a killed driver leaves, and reading a sweep's MLflow store back.

The probe replaces `mrmp.sweep.hooks.tune_trainable` (the function Ray Tune runs for each trial) with a closure
that cloudpickle ships by value to the workers. In the worker it wraps `mrmp.sweep.trial.Trial.advance` (what a
trial calls to train its units to the next report) to record every epoch trained and, where a rule says so, to
slow each epoch down, raise, or SIGKILL its own process. Each attempt of a trial writes
`attempt-<trial>-<n>.json` (pid, the epoch its checkpoint restored, how it ended); each epoch trained is a line
`<trial> <epoch>` in `epochs-<pid>.log`. Nothing in mrmp knows about it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[1]
RATES = [0.0, 0.5, 0.9]


def sweep_file(path: Path, name: str, root: Path, space: dict, epochs: int = 6, **sweep: Any) -> Path:
    """A tiny sweep: MP on synthetic SBU, 3 rates, a report and a checkpoint every 2 epochs."""
    section = {
        "name": name,
        "searcher": "tpe",
        "concurrency": 2,
        "objectives": [{"metric": "auc", "mode": "max"}],
        "resources": {"cpu": 1, "gpu": 0},
        "report_every": 2,
        "checkpoint_every": 0,
        "max_failures": 1,
        "storage": {"root": str(root)},
        **sweep,
    }
    doc = {
        "sweep": section,
        # one full-batch step per epoch: a divergence (lr 1e10) shows at a known epoch, the second
        "base": {
            "method": {"name": "mp"},
            "train": {"epochs": epochs, "batch_size": 0},
            "eval": {"rates": RATES},
        },
        "space": space,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# --- the probe -----------------------------------------------------------------------------------------------
def make_probe(
    original: Callable[..., Any],
    out_dir: Path,
    epoch_s: float = 0.0,
    rules: list[dict[str, Any]] | None = None,
    barrier: int = 0,
    barrier_timeout_s: float = 0.0,
) -> Callable[..., Any]:
    """The trainable `original`, wrapped (see the module docstring).

    `epoch_s`: seconds added to every epoch trained (so that a fault lands mid-trial). `rules`: faults, each
    `{"when": {config key: value}, "at_epoch": E, "do": "raise" | "kill", "attempts": [0, ...]}`: before the
    trial trains past epoch E (its units stand at E or later), in the attempts listed (all when absent), raise
    `RuntimeError("injected fault at epoch E")` or SIGKILL the worker process. `barrier`: each attempt first waits
    (at most `barrier_timeout_s`) until that many attempts have started, so trials that can run together do."""
    out = str(out_dir)
    rules = list(rules or [])

    def probe(config: dict[str, Any], ctx: Any) -> Any:
        import glob
        import json
        import os
        import signal
        import time

        import ray
        from ray import tune

        import mrmp.sweep.trial as trial_mod
        from mrmp.sweep.hooks import load_checkpoint

        trial_id = tune.get_context().get_trial_id()
        saved = load_checkpoint(tune.get_checkpoint())
        attempt = len(glob.glob(os.path.join(out, f"attempt-{trial_id}-*.json")))
        rec = {
            "trial_id": trial_id,
            "attempt": attempt,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "start": time.time(),
            "restored_epoch": saved["units"][0]["epoch"] if saved else 0,
            "config": config,
        }
        path = os.path.join(out, f"attempt-{trial_id}-{attempt}.json")

        def write() -> None:
            with open(path + ".tmp", "w") as f:
                json.dump(rec, f)
            os.replace(path + ".tmp", path)

        write()
        mine = [
            r
            for r in rules
            if all(config.get(k) == v for k, v in r["when"].items())
            and attempt in r.get("attempts", [attempt])
        ]
        real = getattr(trial_mod.Trial.advance, "__wrapped__", trial_mod.Trial.advance)

        def advance(self) -> None:
            for r in mine:
                if self.epoch >= r["at_epoch"]:
                    if r["do"] == "kill":
                        os.kill(os.getpid(), signal.SIGKILL)
                    raise RuntimeError(f"injected fault at epoch {self.epoch}")
            before = self.epoch
            real(self)
            time.sleep(epoch_s * (self.epoch - before))
            with open(os.path.join(out, f"epochs-{os.getpid()}.log"), "a") as f:
                f.writelines(f"{trial_id} {e}\n" for e in range(before + 1, self.epoch + 1))

        advance.__wrapped__ = real
        trial_mod.Trial.advance = advance  # this worker process only (reused workers: rewrapped per trial)
        if barrier:
            deadline = time.time() + barrier_timeout_s
            while len(glob.glob(os.path.join(out, "attempt-*.json"))) < barrier and time.time() < deadline:
                time.sleep(0.1)
        rec["trained_from"] = time.time()
        try:
            value = original(config, ctx)
            rec["end"] = "returned"
            return value
        except BaseException as e:
            rec["end"] = type(e).__name__
            raise
        finally:
            rec["stop"] = time.time()
            write()

    return probe


@contextmanager
def probed(probes: Path, **kwargs: Any) -> Iterator[None]:
    """Every trial of sweeps run in this process goes through the probe (see `make_probe`)."""
    import mrmp.sweep.hooks as hooks

    original = hooks.tune_trainable
    hooks.tune_trainable = make_probe(original, probes, **kwargs)
    try:
        yield
    finally:
        hooks.tune_trainable = original


def driver_main() -> int:
    """`python -c ... PROBES PROBE_JSON sweep ARGS`: `mrmp sweep ARGS` with the probe around every trial.
    `finish_delay_s` in PROBE_JSON makes the driver's tracking store slow to record each trial's end."""
    import mrmp.sweep.lifecycle as lifecycle
    from mrmp.cli.main import main

    probes, kwargs, argv = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:]
    delay = kwargs.pop("finish_delay_s", 0.0)
    if delay:
        real = lifecycle.TrialRuns.finish

        def finish(self, *args: Any, **kw: Any) -> Any:
            time.sleep(delay)
            return real(self, *args, **kw)

        lifecycle.TrialRuns.finish = finish
    with probed(probes, **kwargs):
        return main(argv)


def driver_command(probes: Path, argv: list[str], **probe: Any) -> list[str]:
    """The command line of a `mrmp sweep` driver process with the probe (run it with cwd=ROOT)."""
    code = "import sys; from tests.faults import driver_main; sys.exit(driver_main())"
    return [sys.executable, "-c", code, str(probes), json.dumps(probe), "sweep", *argv]


def run_driver(
    argv: list[str], probes: Path, timeout: float = 600, **probe: Any
) -> subprocess.CompletedProcess:
    """`mrmp sweep ARGV...` as its own process (a clean driver: no Ray state shared with pytest) with the probe;
    its output captured."""
    return subprocess.run(
        driver_command(probes, argv, **probe),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def attempts(probes: Path) -> dict[str, list[dict]]:
    """Tune trial id -> its attempts, in order."""
    out: dict[str, list[dict]] = {}
    for p in sorted(probes.glob("attempt-*.json")):
        rec = json.loads(p.read_text())
        out.setdefault(rec["trial_id"], []).append(rec)
    return {k: sorted(v, key=lambda r: r["attempt"]) for k, v in out.items()}


def epochs_trained(probes: Path) -> Counter:
    """(Tune trial id, epoch) -> how many times it was trained."""
    lines = [ln.split() for p in probes.glob("epochs-*.log") for ln in p.read_text().splitlines()]
    return Counter((t, int(e)) for t, e in lines)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one time."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


# --- reading the sweep back ----------------------------------------------------------------------------------
def trial_runs(uri: str, experiment: str) -> list[Any]:
    """Every trial (child) run of a sweep's MLflow experiment, as MLflow's client returns them."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {uri}"
    return client.search_runs([exp.experiment_id], "tags.`mrmp.kind` = 'trial'", max_results=1000)


def steps(uri: str, run_id: str, key: str = "train/loss") -> list[int]:
    """The steps of a metric's history, sorted (an epoch logged twice shows twice)."""
    from mlflow import MlflowClient

    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


def artifact_text(uri: str, run_id: str, name: str, tmp: Path) -> str:
    from mlflow import MlflowClient

    return Path(MlflowClient(uri).download_artifacts(run_id, name, str(tmp))).read_text()


def optuna_trials(url: str, name: str) -> tuple[int, list[Any]]:
    """(study id, trials) of the sweep's Optuna study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url)
    return study._study_id, study.get_trials(deepcopy=False)


# --- processes a killed driver leaves behind -----------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace").strip()


def processes_of(session: int, ray_tmp: Path) -> dict[int, str]:
    """Live processes of a killed driver that led its own session: members of that session or process group,
    or processes whose command line names its private RAY_TMPDIR. Nothing else on this machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            stat, cmd = _stat(pid), _cmdline(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # stat fields after the name: state, ppid, pgrp, session
        mine = int(stat[3]) == session or int(stat[2]) == session or str(ray_tmp) in cmd
        if mine and stat[0] != "Z":
            found[pid] = cmd[:120]
    return found


def settled(session: int, ray_tmp: Path, quiet_s: float = 3.0, limit_s: float = 30.0) -> dict[int, str]:
    """What the killed driver leaves once Ray's own clean-up is over (the set stops changing for `quiet_s`)."""
    seen, since, deadline = processes_of(session, ray_tmp), time.time(), time.time() + limit_s
    while time.time() - since < quiet_s and time.time() < deadline:
        time.sleep(0.3)
        now = processes_of(session, ray_tmp)
        if set(now) != set(seen):
            seen, since = now, time.time()
    return seen


def alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def stop_by_pid(pids: dict[int, str], grace: float = 5.0) -> dict[int, str]:
    """SIGTERM each, SIGKILL what is still there after `grace` s; returns those that would not go."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    left = dict(pids)
    while left and time.time() < deadline:
        left = {p: c for p, c in left.items() if alive(p)}
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    return {p: c for p, c in left.items() if alive(p)}


def wait_for(condition: Callable[[], Any], timeout: float, every: float = 0.3) -> Any:
    """Poll `condition` until it returns something true (returned) or `timeout` s pass (None)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    return None
