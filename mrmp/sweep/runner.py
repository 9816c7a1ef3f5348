"""The sweep driver: data once, the tracking store once, then Ray Tune + Optuna over `run_trial`.

Order matters and is deliberate:
1. validate (done by `load_sweep`) and prepare every dataset the sweep can use: a missing dataset fails here,
   before any tracking run or Ray process exists; a local sweep also checks here that this machine can place
   one trial (its CPUs, the GPUs torch sees);
2. start (or join) Ray and check that some node (or a node type its autoscaler can add) can place one trial:
   a request nothing fits is refused before any tracking run, study or Tune experiment exists;
3. open the tracking store in this process (a fresh sqlite DB gets its schema once, here), start or reopen the
   parent run;
4. put each dataset in the object store once, start the tracking actor (the one writer), then
   `Tuner(...).fit()` or, with `--resume`, `Tuner.restore(...).fit()` after reconciling the tracking store and
   the Optuna study with Tune's saved state (`_reconcile`; finished trials are not re-run; the Optuna study is
   the same RDB study);
5. close any child run a killed process left RUNNING, end the parent, print the best trials and where to look.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mrmp.config import ConfigError, Issue
from mrmp.tracking import FAILED, FINISHED, KILLED, RUNNING, TAG_KEY, TAG_KIND, Tracker

from .results import SweepState, best_per_method, outcome_counts, read_state, trials
from .spec import SweepSpec

# Measured defaults for this stack (docs/sweeps.md, stack notes §10); a value already in the environment wins.
ENV_DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
LOCAL_ENV_DEFAULTS = {"RAY_AUTH_MODE": "disabled"}  # loopback-only local cluster: no ~/.ray/auth_token
OBJECT_STORE_BYTES = 256 * 1024**2  # the datasets are kB to MB; Ray's default would reserve 30 % of RAM


def apply_env_defaults(local: bool = True) -> None:
    for k, v in {**ENV_DEFAULTS, **(LOCAL_ENV_DEFAULTS if local else {})}.items():
        os.environ.setdefault(k, v)


@dataclass
class SweepOutcome:
    status: str  # finished | interrupted
    wall_s: float
    trials: dict[str, int] = field(default_factory=dict)  # outcome -> count
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> row
    parent_run_id: str = ""


def provenance() -> dict[str, str]:
    """Git commit and package versions: tags of every run."""
    import importlib.metadata as md

    import mrmp

    tags = {"mrmp.version": mrmp.__version__, "mrmp.python": platform.python_version()}
    for pkg in ("torch", "numpy", "ray", "optuna", "mlflow"):
        try:
            tags[f"mrmp.versions.{pkg}"] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        root = Path(mrmp.__file__).resolve().parents[1]
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        tags["mlflow.source.git.commit"] = commit
        tags["mrmp.git_dirty"] = "true" if dirty else "false"
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


def _trial_name(trial: Any) -> str:
    return "trial_" + trial.trial_id.rsplit("_", 1)[-1]


def _trial_dirname(trial: Any) -> str:
    return trial.trial_id  # short: Tune's default spells out the whole config


def _searcher(spec: SweepSpec) -> Any:
    import optuna

    from .search import SweepSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=spec.seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=spec.seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=spec.seed),
        "grid": lambda: optuna.samplers.RandomSampler(seed=spec.seed),  # the grid is enqueued, point by point
    }
    multi = len(spec.objectives) > 1
    points = None
    if spec.searcher == "grid":
        params = spec.params
        points = [{k: params[k].label(v) for k, v in a.items()} for a in spec.grid_points()]
    return SweepSearch(
        space=spec.define_by_run,
        metric=[o.key for o in spec.objectives] if multi else spec.objectives[0].key,
        mode=[o.mode for o in spec.objectives] if multi else spec.objectives[0].mode,
        sampler=samplers[spec.searcher](),
        study_name=spec.name,
        storage=optuna.storages.RDBStorage(spec.optuna_url),
        points_to_evaluate=points,
    )


def _scheduler(spec: SweepSpec) -> Any:
    if spec.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    first = spec.objectives[0]
    return ASHAScheduler(
        time_attr="epoch",  # grace_period and max_t are in epochs
        metric=first.key,
        mode=first.mode,
        grace_period=spec.scheduler["grace_period"],
        reduction_factor=spec.scheduler["reduction_factor"],
        max_t=spec.scheduler["max_t"] or 10**6,  # no cap by default: trials end when their training ends
    )


def _init_ray(address: str | None) -> bool:
    """Start a local Ray (capped object store) or join `address`; False when Ray was already running."""
    import ray

    if ray.is_initialized():
        return False
    from .cluster import ray_init_kwargs

    # the workers' environment, on any cluster (merged with a Ray Job's own runtime_env); ours goes along
    kwargs = ray_init_kwargs({k: os.environ[k] for k in ENV_DEFAULTS if k in os.environ})
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, **kwargs)
    return True


def local_nodes(gpus: bool = True) -> list[dict[str, float]]:
    """This machine as Ray would see it when started locally: its CPUs and (`gpus`) the GPUs torch finds."""
    count = 0
    if gpus:
        import torch

        count = torch.cuda.device_count()
    return [{"CPU": float(os.cpu_count() or 1), "GPU": float(count)}]


def cluster_nodes() -> tuple[list[dict[str, float]], bool]:
    """The resources of each node the running Ray cluster has or its autoscaler config says it can add (the GCS
    cluster config, what Ray Train reads too), and whether an autoscaler runs whose node types that config does
    not list (then a request no node fits now may still be met later)."""
    import ray

    nodes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    try:
        from ray._private.state import state as ray_state

        config = ray_state.get_cluster_config()
        groups = [dict(g.resources) for g in (config.node_group_configs if config else []) if g.max_count]
    except Exception:  # noqa: BLE001  (another Ray version: judge by the live nodes)
        groups = []
    return nodes + groups, not groups and _autoscaler_present()


def _autoscaler_present() -> bool:
    """Whether an autoscaler manages the cluster: the cluster launcher's bootstrap file on this (head) node, as
    Tune checks, or node types in the autoscaler's status report (without an autoscaler Ray's monitor names each
    node's type `node_<id>`)."""
    if Path("~/ray_bootstrap_config.yaml").expanduser().exists():
        return True
    try:
        import json

        from ray._private import ray_constants
        from ray.experimental import internal_kv

        raw = internal_kv._internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
        mapping = (
            (json.loads(raw).get("autoscaler_report") or {}).get("node_type_mapping") or {} if raw else {}
        )
    except Exception:  # noqa: BLE001  (unknown: assume one, so only warn)
        return True
    return any(v != f"node_{k}" for k, v in mapping.items())


def check_resources(spec: SweepSpec, nodes: list[dict[str, float]], where: str) -> None:
    """Refuse a per-trial request no node can meet (Tune would wait for it forever): ConfigError naming the key."""
    cpu, gpu = spec.cpu, spec.gpu
    if any(n.get("CPU", 0) >= cpu and n.get("GPU", 0) >= gpu for n in nodes):
        return
    shapes = "; ".join(sorted({f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes})) or "none"
    if gpu and not any(n.get("GPU", 0) >= gpu for n in nodes):
        key, want = "sweep.resources.gpu", f"{gpu:g} GPU per trial"
    else:
        key, want = (
            ("sweep.resources.cpu", f"{cpu:g} CPU per trial")
            if gpu == 0
            else ("sweep.resources", f"{cpu:g} CPU and {gpu:g} GPU per trial (on one node)")
        )
    raise ConfigError(
        [
            Issue(
                spec.path,
                key,
                f"{want}, but no node of {where} has that many (nodes: {shapes}); "
                "lower the request (--set ...) or add such a node",
            )
        ]
    )


def _last_launch(state: SweepState | None) -> dict[str, Any]:
    return ((state.data.get("launches") or [{}])[-1] or {}) if state is not None else {}


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone, or no /proc (then nothing can be told)
        return None


def running_launch(state: SweepState | None) -> int | None:
    """The pid of a launch of this sweep that still runs on this machine (None when none does or we cannot
    tell: another host, no /proc)."""
    if state is None or state.data.get("status") != "running":
        return None
    last = _last_launch(state)
    pid = last.get("pid")
    if not pid or last.get("host") != platform.node() or pid == os.getpid():
        return None
    cmd = _cmdline(pid)
    return pid if cmd and "sweep" in cmd else None  # else the pid now belongs to something else


def launch_leftovers(pid: int) -> dict[int, str]:
    """Processes a killed launch (driver `pid`) left behind on this machine: members of its process group or
    session that Ray started (`ray::...` agents, workers), as {pid: command}. Ray's fate-sharing stops its
    GCS, raylet and workers with the driver, but not its dashboard and runtime-env agents (stack notes §4)."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        other = int(entry.name)
        try:
            if other == os.getpid() or pid not in (os.getpgid(other), os.getsid(other)):
                continue
        except OSError:
            continue
        cmd = _cmdline(other) or ""
        if cmd.startswith("ray::") or "/ray/" in cmd:
            found[other] = cmd.strip()[:80]
    return found


def _check_launch(spec: SweepSpec, state: SweepState | None, resume: bool, address: str | None) -> None:
    issues = []
    if (pid := running_launch(state)) is not None:
        raise ConfigError(
            [
                Issue(
                    spec.path,
                    "",
                    f"sweep {spec.name!r} is running now (pid {pid}, launched {_last_launch(state).get('at')}): "
                    f"two drivers on one sweep would corrupt it; wait for it to end, or stop it (Ctrl-C in its "
                    f"terminal, or kill -INT {pid}) and then --resume",
                )
            ]
        )
    if state is not None and not resume:
        issues.append(
            Issue(
                spec.path,
                "sweep.name",
                f"sweep {spec.name!r} already ran in {spec.dir}: pass --resume to continue it, "
                "or choose another sweep.name (--set sweep.name=...) or remove that folder",
            )
        )
    if state is None and resume:
        issues.append(Issue(spec.path, "", f"nothing to resume: {spec.dir} holds no launched sweep"))
    if state is not None and resume and state.data.get("fingerprint") != spec.fingerprint():
        issues.append(
            Issue(
                spec.path,
                "",
                "the sweep changed since its first launch (searching, space or base): "
                f"--resume needs the same file and --set values; it was launched from {state.data.get('sweep_file')}",
            )
        )
    if address and address.startswith("ray://") and spec.tracking.single_writer_file:
        issues.append(
            Issue(
                spec.path,
                "sweep.tracking.uri",
                "a ray:// client cannot host the tracking actor next to a local store: "
                "set tracking.uri to an MLflow server (http://host:5000)",
            )
        )
    if issues:
        raise ConfigError(issues)


def run_sweep(
    spec: SweepSpec,
    *,
    resume: bool = False,
    address: str | None = None,
    prepare: Callable[[Any], Any] | None = None,
    verbose: int = 1,
    log: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run (or resume) the sweep; `prepare` maps a DataConfig to PreparedData (default: the core's)."""
    apply_env_defaults(local=address is None)
    state = read_state(spec.dir)
    _check_launch(spec, state, resume, address)

    t0 = time.perf_counter()
    if prepare is None:
        from mrmp.train import prepare_data as prepare
    datasets = {key: prepare(dcfg) for key, dcfg in spec.data_configs().items()}  # DataError: nothing started
    if address is None:
        check_resources(spec, local_nodes(gpus=spec.gpu > 0), "this machine")  # before Ray starts
    # Under `ray job submit --working-dir`, the current directory is the job's unpacked package, which Ray may
    # remove and unpack again while the job runs: resolve what is relative to it, then leave it, before Ray starts.
    sweep_file = str(Path(spec.path).resolve())
    from .cluster import leave_job_working_dir

    leave_job_working_dir(spec.dir)
    started = _init_ray(address)
    try:
        nodes, autoscaling_unknown = cluster_nodes()
        try:
            check_resources(spec, nodes, f"the Ray cluster at {address}" if address else "the local Ray")
        except ConfigError as e:
            if not autoscaling_unknown:
                raise  # before any tracking run, study or Tune experiment exists
            log(f"warning: {e.issues[0].message}; the cluster's autoscaler may add such a node")
        return _launch(spec, state, datasets, resume, address, sweep_file, verbose, log, t0)
    finally:
        if started:
            import ray

            ray.shutdown()


def _launch(
    spec: SweepSpec,
    state: SweepState | None,
    datasets: dict[str, Any],
    resume: bool,
    address: str | None,
    sweep_file: str,
    verbose: int,
    log: Callable[[str], None],
    t0: float,
) -> SweepOutcome:
    """Open the tracking store and the parent run, run Tune, close the runs, print the summary."""
    spec.dir.mkdir(parents=True, exist_ok=True)
    tracker = spec.tracking.create()  # opens (and, for a new sqlite store, creates) the store: here, once
    tags = provenance()
    if state is None:
        import yaml

        parent = tracker.start_parent(
            spec.name,
            tags={**tags, TAG_KIND: "sweep", "mrmp.sweep_file": sweep_file},
            params=_sweep_params(spec),
        )
        text = yaml.safe_dump(spec.raw, sort_keys=False)
        tracker.log_artifact(parent, "sweep.yaml", text)
        (spec.dir / "sweep.yaml").write_text(text, encoding="utf-8")
        state = SweepState(
            spec.dir,
            {
                "name": spec.name,
                "sweep_file": sweep_file,
                "fingerprint": spec.fingerprint(),
                "parent_run_id": parent,
                "tracking": asdict(spec.tracking),
                "objectives": [asdict(o) for o in spec.objectives],
                "optuna": {"url": spec.optuna_url, "study": spec.name},
                "tune_dir": spec.tune_location,
                "created": _now(),
                "launches": [],
            },
        )
    else:
        parent = state.parent_run_id
        tracker.set_status(parent, RUNNING)
        if state.data.get("status") == "running" and (old := _last_launch(state).get("pid")):
            if left := launch_leftovers(old):  # the last launch was killed outright
                log(
                    f"warning: the killed launch (pid {old}) left {len(left)} process(es): "
                    + ", ".join(f"{p} ({c.split()[0]})" for p, c in sorted(left.items()))
                    + f"; they hold nothing of this sweep: stop them with kill {' '.join(map(str, sorted(left)))}"
                )
    state.data["status"] = "running"
    state.data["launches"].append(
        {
            "at": _now(),
            "resume": resume,
            "address": address or "local",
            "pid": os.getpid(),
            "host": platform.node(),
        }
    )
    state.save()

    try:
        interrupted = _fit(spec, state, parent, datasets, tags, resume, verbose, log)
    except BaseException as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        _close(spec, tracker, state, status, time.perf_counter() - t0)
        raise
    outcome = _close(
        spec, tracker, state, "interrupted" if interrupted else "finished", time.perf_counter() - t0
    )
    _print_summary(spec, outcome, log)
    return outcome


def _fit(
    spec: SweepSpec,
    state: SweepState,
    parent: str,
    datasets: dict[str, Any],
    tags: dict[str, str],
    resume: bool,
    verbose: int,
    log: Callable[[str], None],
) -> bool:
    """Run Tune to the end (or to Ctrl-C); True when interrupted. Ray is up."""
    import ray
    from ray import tune

    from mrmp.tracking.remote import start_tracker_actor

    from .callbacks import CloseStoppedTrials
    from .cluster import split_location, trial_resources
    from .trial import TrialContext, tune_trainable  # looked up now: tests may wrap tune_trainable

    remote = None
    try:
        refs = {key: ray.put(data) for key, data in datasets.items()}  # once per sweep; trials get the refs
        actor = f"mrmp-tracker-{spec.name}"
        remote = start_tracker_actor(spec.tracking, name=actor)
        ctx = TrialContext(spec=spec, parent_run_id=parent, tracker=remote, data=refs, tags=tags)
        trainable = tune.with_resources(
            tune.with_parameters(tune_trainable, ctx=ctx), trial_resources(spec.cpu, spec.gpu)
        )
        location = state.data["tune_dir"]
        if resume and tune.Tuner.can_restore(location):
            tuner = tune.Tuner.restore(location, trainable=trainable, resume_errored=True)
            _reconcile(spec, remote, parent, tuner, log)
        else:
            storage_path, name = split_location(location)
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=_searcher(spec),
                    scheduler=_scheduler(spec),
                    num_samples=spec.trials,
                    max_concurrent_trials=spec.concurrency,
                    trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_dirname,
                ),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=storage_path,
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.keep_checkpoints),
                    verbose=verbose,
                    callbacks=[CloseStoppedTrials(spec, parent, actor)],
                ),
            )
        before = signal.getsignal(signal.SIGINT)
        results = tuner.fit()
        interrupted = (
            _tune_was_interrupted(before) or results.num_terminated + results.num_errors < spec.trials
        )
        _close_leftovers(spec, remote, parent, results, interrupted)
        return interrupted
    finally:
        if remote is not None:
            try:
                remote.close()
            except Exception:  # noqa: BLE001  (an actor already gone has nothing left to flush)
                pass


def _reconcile(
    spec: SweepSpec, tracker: Tracker, parent: str, tuner: Any, log: Callable[[str], None]
) -> None:
    """Before a resumed fit: square the tracking store and the Optuna study with Tune's last saved state.

    A driver killed outright (SIGKILL, a lost head node) leaves the runs of its running trials RUNNING, and Tune
    saved its state a few seconds before: trials it started after that are unknown to the restored experiment.
    Their Optuna trials go back to the queue (`requeue_lost`: re-asked with the same parameters by the next new
    trial) and their runs are marked lost (KILLED) until that trial adopts them (`run_trial`). Runs of trials Tune
    knows stay as they are: the restored trial reopens its own run, or skips it when it already finished."""
    from .search import requeue_lost

    # Tune's Trial objects; ResultGrid exposes them only privately (as in `_close_leftovers`)
    trials_ = getattr(getattr(tuner.get_results(), "_experiment_analysis", None), "trials", None)
    if not trials_:  # cannot tell which trials Tune saved: reconcile nothing rather than the wrong ones
        log("warning: resume: Tune's saved trials could not be read; runs left RUNNING are closed at the end")
        return
    known = {t.trial_id for t in trials_}
    lost_runs = [
        r for r in tracker.find_runs(parent) if r.status == RUNNING and r.tags.get(TAG_KEY) not in known
    ]
    for r in lost_runs:
        tracker.set_tags(
            r.run_id,
            {
                "mrmp.outcome": "lost",
                "mrmp.error": "the sweep's driver stopped before Tune saved this trial; --resume runs its "
                "Optuna trial again, which continues this run",
            },
        )
        tracker.end(r.run_id, KILLED)
    tracker.flush()
    requeued = requeue_lost(spec.optuna_url, spec.name, known)
    if lost_runs or requeued:
        log(
            f"resume: {len(lost_runs)} run(s) of trials Tune had not saved marked lost; Optuna trial(s) "
            f"{requeued} asked again with their parameters"
        )


def _tune_was_interrupted(before: Any) -> bool:
    """Whether Ctrl-C (or SIGUSR1) ended `fit()`: Tune then returns normally, its state saved.

    Tune's SIGINT handler puts the previous handler back when it fires, and only then; so after `fit()` the
    previous handler is in place exactly when the sweep was interrupted. Tune's handler is removed either way."""
    if (
        threading.current_thread() is not threading.main_thread()
        or os.getenv("TUNE_DISABLE_SIGINT_HANDLER") == "1"
    ):
        return False  # no handler installed: Ctrl-C raises KeyboardInterrupt instead
    interrupted = signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, before)
    return interrupted


def _close_leftovers(spec: SweepSpec, tracker: Tracker, parent: str, results: Any, interrupted: bool) -> None:
    """Runs still RUNNING after `fit()`: interrupted trials (KILLED; --resume reopens them), stopped trials the
    callback missed (closed from their checkpoint) and trials whose process died (FAILED)."""
    from .callbacks import close_open_run
    from .trial import load_checkpoint

    # Tune's Trial objects carry status, config and checkpoint; ResultGrid exposes them only privately.
    for t in getattr(getattr(results, "_experiment_analysis", None), "trials", None) or []:
        how = "interrupted" if interrupted else {"TERMINATED": "stopped"}.get(t.status, "error")
        close_open_run(
            tracker, spec, parent, t.trial_id, t.config, lambda t=t: load_checkpoint(t.checkpoint), how
        )


def _close(spec: SweepSpec, tracker: Tracker, state: SweepState, status: str, wall: float) -> SweepOutcome:
    """Close runs left RUNNING (a killed trial process), end the parent, record the outcome.

    `status`: finished | interrupted (resumable: open runs end KILLED) | failed (the driver raised)."""
    parent = state.parent_run_id
    interrupted = status == "interrupted"
    for r in trials(tracker, state):
        if r.status == RUNNING:
            why = "interrupted: resume the sweep to continue it" if interrupted else "the trial process died"
            tracker.set_tags(
                r.run_id, {"mrmp.outcome": "interrupted" if interrupted else "lost", "mrmp.error": why}
            )
            tracker.end(r.run_id, KILLED if interrupted else FAILED)
    runs = trials(tracker, state)
    counts = outcome_counts(runs)
    first = spec.objectives[0]
    best = {
        m: {
            "trial": r.name,
            "run_id": r.run_id,
            **{o.key: r.metrics.get(o.key) for o in spec.objectives},
            **{k: r.metrics.get(k) for k in ("auc", "mean_seen", "mean_unseen", "worst_unseen", "dense")},
        }
        for m, r in best_per_method(runs, first).items()
    }
    tracker.log_metrics(parent, {f"trials_{k}": v for k, v in counts.items()} | {"wall_time_s": wall}, step=0)
    overall = max(
        best.values(), key=lambda b: b[first.key] * (1 if first.mode == "max" else -1), default=None
    )
    if overall is not None:
        tracker.log_metrics(parent, {f"best_{first.key}": overall[first.key]}, step=0)
        tracker.set_tags(parent, {"mrmp.best_run_id": overall["run_id"]})
    tracker.end(parent, {"finished": FINISHED, "interrupted": KILLED}.get(status, FAILED))
    state.data.update(status=status, updated=_now(), trials=counts, wall_time_s=round(wall, 1))
    state.save()
    return SweepOutcome(status, wall, counts, best, parent)


def _sweep_params(spec: SweepSpec) -> dict[str, Any]:
    return {
        "sweep.searcher": spec.searcher,
        "sweep.trials": spec.trials,
        "sweep.concurrency": spec.concurrency,
        "sweep.objectives": [f"{o.metric}:{o.mode}" for o in spec.objectives],
        "sweep.scheduler": spec.scheduler or "none",
        "sweep.report_every": spec.report_every,
        "sweep.repeats": spec.repeats,
        "sweep.resources": {"cpu": spec.cpu, "gpu": spec.gpu},
        "sweep.space": [p.key for p in spec.space],
        "sweep.seed": spec.seed,
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))


def _print_summary(spec: SweepSpec, outcome: SweepOutcome, log: Callable[[str], None]) -> None:
    first = spec.objectives[0]
    log("")
    log(
        f"sweep {spec.name}: {outcome.status} in {outcome.wall_s:.0f} s; trials: "
        + ", ".join(f"{n} {k}" for k, n in sorted(outcome.trials.items()))
    )
    if outcome.best:
        cols = [first.key] + [
            k for k in ("auc", "mean_seen", "mean_unseen", "worst_unseen") if k != first.key
        ]
        log(f"best completed trial per method (by {first.metric}, {first.mode}):")
        log(f"  {'method':<10} {'trial':<12} " + " ".join(f"{c:>12}" for c in cols))
        for m, row in outcome.best.items():
            log(f"  {m:<10} {row['trial']:<12} " + " ".join(f"{_fmt(row.get(c)):>12}" for c in cols))
    ref = spec.ref
    log("where to look:")
    if spec.tracking.backend == "mlflow":
        log(f"  MLflow UI         mrmp ui {ref}      (store {spec.tracking.uri})")
    elif spec.tracking.backend == "local":
        log(f"  tracking files    {spec.tracking.uri}")
    log(f"  Optuna dashboard  optuna-dashboard {spec.optuna_url} --host 127.0.0.1 --server wsgiref")
    log(f"  best configs      mrmp export {ref} --out best/")
    log(f"  report            mrmp report {ref} --out report/")
    log(f"  files             {spec.dir}")
    if outcome.status == "interrupted":
        sets = "".join(f" --set {o}" for o in spec.overrides)
        log(f"  resume            mrmp sweep {spec.path} --resume{sets}")
    sys.stdout.flush()
