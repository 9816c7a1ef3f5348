"""The sweep driver: `Sweep(spec).run()` prepares the data, starts Ray and the stores, runs the trials on Ray
Tune with Optuna proposing them and the trial lifecycle recording them, and ends with a summary.

Order matters:
1. validate (done by `load_sweep`), take the sweep's lock, and decide what to do (a new sweep; a resume of an
   interrupted part; a growth by more trials; or nothing, for a finished sweep);
2. prepare every dataset the sweep can use: a missing dataset fails here, before Ray, a tracking run, a study or
   a Tune experiment exist; a local sweep also checks that this machine can place one trial;
3. start (or join) Ray while the tracking store opens (a fresh sqlite DB gets its schema once, here), then
   check that some node can place one trial;
4. the parent run, the banner; then each part: an interrupted one is restored (`Tuner.restore`) after squaring the
   tracking store and the Optuna study with Tune's saved state; new trials run as a new part on the same study;
5. close any run left open, end the parent, refresh the report on it, print the summary; then, last, stop the
   Ray it started.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrmp.provenance import provenance
from mrmp.tracking import FINISHED, KILLED, RUNNING, Tracker
from mrmp.validation import ConfigError, Issue

from .cluster import ENV_DEFAULTS, apply_env_defaults
from .lifecycle import Outcome, Tag, TrialRuns
from .report import ReportRefresher, log_history
from .results import best_per_method, outcome_counts, trials
from .resume import ended_trials, reconcile
from .spec import OPTUNA_DB, SweepSpec, data_key, default_optuna_url
from .state import DriverLock, SweepState, now, read_state
from .views import summary_lines, sweep_params


@dataclass
class SweepOutcome:
    status: str  # finished | interrupted | nothing_to_do
    wall_s: float
    trials: dict[str, int] = field(default_factory=dict)  # outcome -> count
    best: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> row
    parent_run_id: str = ""
    failed: list[str] = field(default_factory=list)  # "name: error" of trials that failed for good

    @property
    def exit_code(self) -> int:
        """0 done; 130 interrupted (resumable); 3 a trial's process was lost (--resume retries it); 1 no trial
        has a score (every one failed or diverged)."""
        if self.status == "interrupted":
            return 130
        if self.trials.get(Outcome.LOST.value):
            return 3
        if self.status == "finished" and not any(self.trials.get(o.value) for o in Outcome if o.scored):
            return 1
        return 0


class Sweep:
    """Runs (or resumes, or grows) one sweep. `prepare` maps a DataConfig to PreparedData (default: the core's)."""

    def __init__(
        self,
        spec: SweepSpec,
        *,
        address: str | None = None,
        prepare: Callable[[Any], Any] | None = None,
        log: Callable[[str], None] = print,
        quiet: bool = False,
    ):
        self.spec = spec
        self.address = address
        self.prepare = prepare
        self.log = log
        self.quiet = quiet
        self.lock = DriverLock(spec.dir)
        self.tracker: Tracker | None = None
        self._prepared: Callable[[Any], Any] | None = None  # data config -> the PreparedData its trials had
        self.state: SweepState | None = None

    # --- the whole run ------------------------------------------------------------------------------------
    def run(self, resume: bool = False, add_trials: int = 0) -> SweepOutcome:
        apply_env_defaults(local=self.address is None)
        t0 = time.perf_counter()
        if add_trials and self.spec.searcher == "grid":
            raise ConfigError(
                [Issue("--add-trials", "", f"a grid sweep has exactly its {self.spec.trials} points")]
            )
        self.state = read_state(self.spec.dir)
        running = self.lock.holder()
        if running is not None:  # what a second driver must hear first, with or without --resume
            raise ConfigError([Issue(self.spec.path, "", self._running_message(running))])
        self._check_launch(resume)
        if not self.lock.acquire():
            holder = self.lock.holder() or {}
            raise ConfigError([Issue(self.spec.path, "", self._running_message(holder))])
        try:
            if self.state is not None and add_trials:
                self.spec.trials = max(self.spec.trials, self.state.trials_launched) + add_trials
            todo = self._todo()
            if not todo:
                return self._nothing_to_do(t0)
            return self._launch(todo, resume, t0)
        finally:
            self.lock.release()

    def _running_message(self, holder: dict[str, Any]) -> str:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"
        return (
            f"sweep {self.spec.name!r} is running now ({who}): two drivers on one sweep would corrupt it; wait for "
            "it to end, or stop it (Ctrl-C in its terminal, or kill -INT PID) and then --resume"
        )

    def _check_launch(self, resume: bool) -> None:
        spec, state = self.spec, self.state
        issues = []
        if state is not None and not resume:
            issues.append(
                Issue(
                    spec.path,
                    "sweep.name",
                    f"sweep {spec.name!r} already ran in {spec.dir}: pass --resume to continue or grow it, "
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
                    "the sweep changed since its first launch (what it searches or how it scores): --resume needs "
                    "the same file and --set values (only sweep.trials, concurrency, resources and retries may "
                    f"change); it was launched from {state.data.get('sweep_file')}",
                )
            )
        if issues:
            raise ConfigError(issues)

    def _todo(self) -> list[dict[str, Any]]:
        """The parts to run: the last one if it did not finish, then a new one for trials not launched yet."""
        state = self.state
        if state is None:
            return [{"name": self.spec.name, "trials": self.spec.trials, "status": "new"}]
        todo = [p for p in state.parts[-1:] if p["status"] != "finished"]
        more = self.spec.trials - state.trials_launched
        if more > 0:
            todo.append({"name": f"{self.spec.name}-{len(state.parts) + 1}", "trials": more, "status": "new"})
        return todo

    def _nothing_to_do(self, t0: float) -> SweepOutcome:
        state = self.state
        self.log(
            f"sweep {self.spec.name}: finished ({state.trials_launched} trials); nothing to do. "
            f"Grow it with --add-trials N (or --resume --set sweep.trials=N); look at it with `mrmp ui {self.spec.ref}`"
        )
        return SweepOutcome(
            "nothing_to_do", time.perf_counter() - t0, state.data.get("trials", {}), {}, state.parent_run_id
        )

    # --- launching ----------------------------------------------------------------------------------------
    def _launch(self, todo: list[dict[str, Any]], resume: bool, t0: float) -> SweepOutcome:
        spec = self.spec
        prepare = self.prepare
        if prepare is None:
            from mrmp.train import prepare_data as prepare
        datasets = {
            key: prepare(dcfg) for key, dcfg in spec.data_configs().items()
        }  # DataError: nothing started
        # the close rebuilds the best networks on the same data
        self._prepared = lambda d: datasets.get(data_key(d)) or prepare(d)
        from . import cluster

        if self.address is None:
            cluster.check_resources(spec, cluster.local_nodes(gpus=spec.gpu > 0), "this machine")
        spec.dir.mkdir(parents=True, exist_ok=True)
        # Under `ray job submit --working-dir`, the current directory is the job's unpacked package, which Ray may
        # remove and unpack again while the job runs: resolve what is relative to it, then leave it.
        self.sweep_file = str(Path(spec.path).resolve())
        cluster.leave_job_working_dir(spec.dir)
        fresh = [
            p
            for p in (spec.dir / "mlflow.db", spec.dir / "artifacts", spec.dir / OPTUNA_DB)
            if not p.exists()
        ]
        opened: dict[str, Any] = {}
        opener = threading.Thread(target=self._open_tracker, args=(opened,), daemon=True)
        opener.start()  # the tracking store's schema (seconds for a fresh sqlite DB) while Ray starts
        try:
            started = cluster.init_ray(
                self.address, {k: os.environ[k] for k in ENV_DEFAULTS if k in os.environ}
            )
        except BaseException:  # Ctrl-C while Ray starts: the store still ends whole
            opener.join()
            raise
        try:
            opener.join()
            if "error" in opened:
                raise opened["error"]
            self.tracker = opened["tracker"]
            try:
                cluster.check_cluster(spec, self.address)  # before any run, study or Tune experiment exists
            except ConfigError:
                for path in fresh:  # a new sweep refused: the store it just created goes
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                raise
            return self._run_parts(todo, resume, datasets, t0)
        finally:
            # Last: Ray quick-exits a process (status 1, no traceback) that touches its core worker after or
            # during `ray.shutdown`, so nothing may run beside it (a shutdown on a thread beside the close once
            # ended a resumed sweep mid-close).
            if started:
                from .compat import stop_ray

                stop_ray()

    def _open_tracker(self, out: dict[str, Any]) -> None:
        import logging

        logging.getLogger("alembic").setLevel(logging.WARNING)  # a fresh store's migrations, line by line
        try:
            out["tracker"] = self.spec.tracking.create()
            import mrmp.sweep.hooks  # noqa: F401  (Ray Tune: seconds of imports, while Ray starts)
            from mrmp.sweep.searcher import create_storage

            if self.spec.optuna_url == default_optuna_url(self.spec.dir):  # the sweep's own study file
                create_storage(self.spec.optuna_url)
        except Exception as e:  # noqa: BLE001  (re-raised in the driver's thread)
            out["error"] = e

    def _run_parts(
        self, todo: list[dict[str, Any]], resume: bool, datasets: dict[str, Any], t0: float
    ) -> SweepOutcome:
        import ray

        spec = self.spec
        tags = provenance()
        parent = self._parent(tags)
        total = self.state.trials_launched + sum(p["trials"] for p in todo if p["status"] == "new")
        self._done_before = sum(
            1 for r in trials(self.tracker, self.state) if r.outcome is not Outcome.RUNNING
        )
        if not self.quiet:
            from .views import banner

            for line in banner(spec, total, resume, self.address, parent):
                self.log(line)
        refs = {key: ray.put(data) for key, data in datasets.items()}  # once per sweep; trials get the refs
        interrupted = False
        try:
            for part in todo:
                interrupted = self._run_part(part, refs, tags, total)
                if interrupted:
                    break
        except BaseException:
            self._close(interrupted=True, t0=t0, status="interrupted")
            raise
        return self._close(interrupted, t0, "interrupted" if interrupted else "finished")

    def _parent(self, tags: dict[str, str]) -> str:
        import yaml

        spec, tracker = self.spec, self.tracker
        if self.state is None:
            parent = tracker.create_run(
                spec.name, None, {**tags, Tag.KIND: "sweep", "mrmp.sweep_file": self.sweep_file}
            )
            tracker.log_params(parent, sweep_params(spec))
            text = yaml.safe_dump(spec.raw, sort_keys=False)
            tracker.log_artifact(parent, "sweep.yaml", text)
            (spec.dir / "sweep.yaml").write_text(text, encoding="utf-8")
            self.state = SweepState(
                spec.dir,
                {
                    "name": spec.name,
                    "sweep_file": self.sweep_file,
                    "fingerprint": spec.fingerprint(),
                    "parent_run_id": parent,
                    "tracking": {
                        "backend": spec.tracking.backend,
                        "uri": spec.tracking.uri,
                        "experiment": spec.tracking.experiment,
                        "artifact_location": spec.tracking.artifact_location,
                    },
                    "objectives": [{"metric": o.metric, "mode": o.mode} for o in spec.objectives],
                    "target_rates": spec.targets,
                    "rate_tolerance": spec.section.rate_tolerance,
                    "optuna": {"url": spec.optuna_url, "study": spec.name},
                    "tune_dir": spec.tune_location,
                    "created": now(),
                    "parts": [],
                    "launches": [],
                },
            )
        else:
            parent = self.state.parent_run_id
            tracker.set_status(parent, RUNNING)
        self.state.data["status"] = "running"
        self.state.data["launches"].append(
            {"at": now(), "address": self.address or "local", "pid": os.getpid(), "host": platform.node()}
        )
        self.state.save()
        return parent

    def _run_part(self, part: dict[str, Any], refs: dict[str, Any], tags: dict[str, str], total: int) -> bool:
        """Run one part to its end; True when interrupted."""
        from ray import tune

        from .cluster import split_location, trial_resources
        from .compat import trials_on_prestarted_workers
        from .hooks import Lifecycle, make_scheduler, tune_trainable
        from .progress import Progress
        from .searcher import StudyLink, make_searcher
        from .trial import TrialContext

        spec, state = self.spec, self.state
        location = f"{state.data['tune_dir'].rstrip('/')}/{part['name']}"
        link = StudyLink(spec.optuna_url, spec.name)
        factory = RunsFactory(spec, state.parent_run_id, tags)
        callbacks: list[Any] = [Lifecycle(factory, ReportRefresher(spec.dir, state.parent_run_id))]
        if not self.quiet:
            callbacks.append(Progress(spec, total, link, done=self._done_before, log=self.log))
        ctx = TrialContext(
            spec=spec,
            data=refs,
            ended=ended_trials(self.tracker, state.parent_run_id, spec.objectives)
            if part["status"] != "new"
            else {},
        )
        trainable = tune.with_resources(
            tune.with_parameters(tune_trainable, ctx=ctx), trial_resources(spec.cpu, spec.gpu)
        )
        quiet_tune_logs()  # before the restore too: it reads the saved results and warns of missing files
        if part["status"] != "new" and tune.Tuner.can_restore(location):
            tuner = tune.Tuner.restore(location, trainable=trainable, resume_errored=True)
            reconcile(
                tuner, self.tracker, self.state.parent_run_id, link, factory(), self.log
            )  # the callbacks are the ones the part was saved with
        else:
            storage_path, name = split_location(location)
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=make_searcher(spec),
                    scheduler=make_scheduler(spec),
                    num_samples=part["trials"],
                    max_concurrent_trials=spec.concurrency,
                    trial_dirname_creator=lambda t: t.trial_id,  # short: Tune's default spells out the config
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=name,
                    storage_path=storage_path,
                    failure_config=tune.FailureConfig(max_failures=spec.section.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.section.keep_checkpoints),
                    verbose=0,
                    callbacks=callbacks,
                ),
            )
            if part["status"] == "new":
                part = {**part, "status": "running"}
                state.parts.append(part)
                state.save()
        with contextlib.nullcontext() if self.address else trials_on_prestarted_workers():
            results = tuner.fit()
        # Interrupted: Tune ended before every trial of the part did. Trials it cut off are marked terminated in
        # its results without a completion event, so their runs are still open (the lifecycle closes a run on every
        # end Tune reports, errors included); trials it never created are missing from its results.
        ids = {Path(r.path).name for r in results}
        still_open = [
            r
            for r in self.tracker.find_runs(state.parent_run_id)
            if r.status == RUNNING and r.tags.get(Tag.TUNE_ID) in ids
        ]
        interrupted = bool(still_open) or len(results) < part["trials"]
        status = "interrupted" if interrupted else "lost" if self._lost_in(results) else "finished"
        for p in state.parts:
            if p["name"] == part["name"]:
                p["status"] = status  # not finished: --resume restores the part and retries what it lost
        state.save()
        return interrupted

    def _lost_in(self, results: Any) -> bool:
        """Whether a trial of this part ended lost (its process or node died after its retries)."""
        ids = {Path(r.path).name for r in results}
        lost = self.tracker.find_runs(self.state.parent_run_id, {Tag.OUTCOME: Outcome.LOST.value})
        return any(r.tags.get(Tag.TUNE_ID) in ids for r in lost)

    # --- closing ------------------------------------------------------------------------------------------
    def _close(self, interrupted: bool, t0: float, status: str) -> SweepOutcome:
        spec, state, tracker = self.spec, self.state, self.tracker
        runs = RunsFactory(spec, state.parent_run_id, {})()
        runs.tracker = tracker
        runs.close_leftovers(interrupted)
        records = trials(tracker, state)
        counts = outcome_counts(records)
        first = spec.objectives[0]
        best = {
            m: {
                "trial": r.name,
                "run_id": r.run_id,
                **{
                    k: r.metric(k)
                    for o in spec.objectives
                    for k in (o.key, f"{o.key}_ci95_lo", f"{o.key}_ci95_hi", f"test_{o.name}")
                },
            }
            for m, r in best_per_method(records, first).items()
        }
        wall = time.perf_counter() - t0
        tracker.log_metrics(
            state.parent_run_id,
            {f"trials_{k}": v for k, v in counts.items()} | {"wall_time_s": wall},
            step=len(state.data["launches"]),
        )
        overall = max(
            best.values(), key=lambda b: b[first.key] * (1 if first.mode == "max" else -1), default=None
        )
        if overall is not None:
            tracker.log_metrics(state.parent_run_id, {f"best_{first.key}": overall[first.key]}, step=0)
            tracker.set_tags(state.parent_run_id, {Tag.BEST_RUN: overall["run_id"]})
        log_history(tracker, state, records)
        ReportRefresher(spec.dir, state.parent_run_id, every_s=0)(runs, log=self.log)
        if status == "finished" and counts.get(Outcome.COMPLETED.value):
            from .networks import register_best

            try:
                register_best(state, tracker, spec.dir / "networks", self.log, self._prepared)
            except Exception as e:  # noqa: BLE001  (the sweep's results stand; the models can be exported later)
                self.log(f"warning: the best networks could not be registered: {type(e).__name__}: {e}")
        tracker.end(state.parent_run_id, KILLED if status == "interrupted" else FINISHED)
        state.data.update(status=status, trials=counts, wall_time_s=round(wall, 1))
        state.save()
        failed = [
            f"{r.name}: {r.run.tags.get(Tag.ERROR, '')}"
            for r in records
            if r.outcome in (Outcome.FAILED, Outcome.LOST)
        ]
        outcome = SweepOutcome(status, wall, counts, best, state.parent_run_id, failed)
        for line in summary_lines(spec, outcome):
            self.log(line)
        return outcome


@dataclass
class RunsFactory:
    """Makes the sweep's `TrialRuns` in whichever process needs them (picklable: Tune saves the callbacks)."""

    spec: SweepSpec
    parent_id: str
    tags: dict[str, str]

    def __call__(self) -> TrialRuns:
        from .searcher import StudyLink

        return TrialRuns(
            self.spec.tracking.create(),
            self.spec,
            self.parent_id,
            self.tags,
            StudyLink(self.spec.optuna_url, self.spec.name),
        )


def quiet_tune_logs() -> None:
    """Tune's own lines (where it saved its state, its result files) say nothing a user of mrmp needs."""
    import logging

    # Its stop and resume hints name Tune APIs (ours say it); there is no result.json to analyse (the tracker is).
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    for name in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis"):
        logging.getLogger(name).setLevel(logging.ERROR)
