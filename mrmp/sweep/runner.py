"""The sweep driver: data once, the tracking store once, then Ray Tune + Optuna over `run_trial`.

Order matters and is deliberate:
1. validate (done by `load_sweep`) and prepare every dataset the sweep can use: a missing dataset fails here,
   before any tracking run or Ray process exists;
2. open the tracking store in this process (a fresh sqlite DB gets its schema once, here), start or reopen the
   parent run;
3. start (or join) Ray, put each dataset in the object store once, start the tracking actor (the one writer);
4. `Tuner(...).fit()` or, with `--resume`, `Tuner.restore(...).fit()` (finished trials are not re-run; the
   Optuna study is the same RDB study);
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
from mrmp.tracking import FAILED, FINISHED, KILLED, RUNNING, TAG_KIND, Tracker

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
    from ray.tune.search.optuna import OptunaSearch

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
    return OptunaSearch(
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

    kwargs = ray_init_kwargs()  # the workers' environment, on any cluster; ours goes along
    kwargs["runtime_env"]["env_vars"].update({k: os.environ[k] for k in ENV_DEFAULTS if k in os.environ})
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, **kwargs)
    return True


def _check_launch(spec: SweepSpec, state: SweepState | None, resume: bool, address: str | None) -> None:
    issues = []
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

    spec.dir.mkdir(parents=True, exist_ok=True)
    tracker = spec.tracking.create()  # opens (and, for a new sqlite store, creates) the store: here, once
    tags = provenance()
    if state is None:
        import yaml

        parent = tracker.start_parent(
            spec.name,
            tags={**tags, TAG_KIND: "sweep", "mrmp.sweep_file": str(Path(spec.path).resolve())},
            params=_sweep_params(spec),
        )
        text = yaml.safe_dump(spec.raw, sort_keys=False)
        tracker.log_artifact(parent, "sweep.yaml", text)
        (spec.dir / "sweep.yaml").write_text(text, encoding="utf-8")
        state = SweepState(
            spec.dir,
            {
                "name": spec.name,
                "sweep_file": str(Path(spec.path).resolve()),
                "fingerprint": spec.fingerprint(),
                "parent_run_id": parent,
                "tracking": asdict(spec.tracking),
                "objectives": [asdict(o) for o in spec.objectives],
                "optuna": {"url": spec.optuna_url, "study": spec.name},
                "tune_dir": str(spec.dir / "tune"),
                "created": _now(),
                "launches": [],
            },
        )
    else:
        parent = state.parent_run_id
        tracker.set_status(parent, RUNNING)
    state.data["status"] = "running"
    state.data["launches"].append({"at": _now(), "resume": resume, "address": address or "local"})
    state.save()

    try:
        interrupted = _fit(spec, state, parent, datasets, tags, resume, address, verbose)
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
    address: str | None,
    verbose: int,
) -> bool:
    """Run Tune to the end (or to Ctrl-C); True when interrupted."""
    import ray
    from ray import tune

    from mrmp.tracking.remote import start_tracker_actor

    from .callbacks import CloseStoppedTrials
    from .cluster import trial_resources
    from .trial import TrialContext, tune_trainable  # looked up now: tests may wrap tune_trainable

    started = _init_ray(address)
    remote = None
    try:
        refs = {key: ray.put(data) for key, data in datasets.items()}  # once per sweep; trials get the refs
        actor = f"mrmp-tracker-{spec.name}"
        remote = start_tracker_actor(
            spec.tracking, pin_to_this_node=spec.tracking.single_writer_file, name=actor
        )
        ctx = TrialContext(spec=spec, parent_run_id=parent, tracker=remote, data=refs, tags=tags)
        trainable = tune.with_resources(
            tune.with_parameters(tune_trainable, ctx=ctx), trial_resources(spec.cpu, spec.gpu)
        )
        tune_dir = Path(state.data["tune_dir"])
        if resume and tune.Tuner.can_restore(str(tune_dir)):
            tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_errored=True)
        else:
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
                    name=tune_dir.name,
                    storage_path=str(tune_dir.parent),
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
        if started:
            ray.shutdown()


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
