"""Faults a long sweep must survive, injected for real (issue #6, docs/reliability.md):

- the `mrmp sweep` driver SIGKILLed mid-sweep (its own session), the Ray processes it left stopped by PID, then
  `--resume`: finished trials are not trained again, the Optuna study is the same, one terminal run per trial;
- a trial whose loss turns NaN (a real divergence: lr 1e10) ends FAILED naming the epoch, is not retrained;
- a trial's worker process killed mid-trial: retried from its last checkpoint, in the same run;
- the safe defaults hold across mrmp/ (no pickle loads of checkpoints, no unsafe YAML, no shell strings).

A probe wraps the trainable Tune runs (as the cluster tests do): it records each attempt (pid, restored epoch)
and every epoch a trial trains, so "not trained again" is checked on what ran, not on what was logged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mrmp.cli.main import main

from .test_cluster_helpers import trial_runs

ROOT = Path(__file__).parents[1]
RATES = [0.0, 0.5, 0.9]


def sweep_file(path: Path, name: str, root: Path, space: dict, **sweep: Any) -> Path:
    section = {
        "name": name,
        "searcher": "tpe",
        "concurrency": 2,
        "objectives": [{"metric": "auc", "mode": "max"}],
        "resources": {"cpu": 1, "gpu": 0},
        "report_every": 2,
        "max_failures": 1,
        "storage": {"root": str(root)},
        **sweep,
    }
    epochs = section.pop("epochs", 6)
    doc = {
        "sweep": section,
        "base": {"method": {"name": "mp"}, "train": {"epochs": epochs}, "eval": {"rates": RATES}},
        "space": space,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# --- the probe ---------------------------------------------------------------------------------------------
def make_probe(original: Callable[..., Any], out_dir: Path, epoch_s: float = 0.0) -> Callable[..., Any]:
    """The trainable, wrapped: writes `attempt-<trial>-<n>.json` (pid, restored epoch, how it ended) and one line
    per epoch the trial trains to `epochs-<pid>.log`; `epoch_s` makes each epoch last that much longer (so a
    fault lands mid-trial). A closure, so cloudpickle ships it by value to the workers."""
    out = str(out_dir)

    def probe(config: dict[str, Any], ctx: Any) -> Any:
        import glob
        import json
        import os
        import time

        from ray import tune

        import mrmp.train as train_mod
        from mrmp.sweep.trial import load_checkpoint

        trial_id = tune.get_context().get_trial_id()
        saved = load_checkpoint(tune.get_checkpoint())
        attempt = len(glob.glob(os.path.join(out, f"attempt-{trial_id}-*.json")))
        rec = {
            "trial_id": trial_id,
            "attempt": attempt,
            "pid": os.getpid(),
            "start": time.time(),
            "restored_epoch": saved["repeats"][0]["epoch"] if saved else 0,
            "config": config,
        }
        path = os.path.join(out, f"attempt-{trial_id}-{attempt}.json")

        def write() -> None:
            with open(path + ".tmp", "w") as f:
                json.dump(rec, f)
            os.replace(path + ".tmp", path)

        write()
        real = getattr(train_mod.run, "__wrapped__", train_mod.run)

        def run(cfg, data=None, out_dir=None, callback=None, resume_state=None):
            def on_epoch(ev):
                time.sleep(epoch_s)
                with open(os.path.join(out, f"epochs-{os.getpid()}.log"), "a") as f:
                    f.write(f"{trial_id} {ev.epoch}\n")
                if callback is not None:
                    callback(ev)

            return real(cfg, data, out_dir, on_epoch, resume_state)

        run.__wrapped__ = real
        train_mod.run = run  # this worker process only; the trial looks `run` up when it trains
        try:
            value = original(config, ctx)
            rec["end"] = "returned"
            return value
        except BaseException as e:
            rec["end"] = type(e).__name__
            raise
        finally:
            write()

    return probe


def attempts(probes: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for p in sorted(probes.glob("attempt-*.json")):
        rec = json.loads(p.read_text())
        out.setdefault(rec["trial_id"], []).append(rec)
    return {k: sorted(v, key=lambda r: r["attempt"]) for k, v in out.items()}


def epochs_trained(probes: Path) -> Counter:
    """(trial id, epoch) -> how many times it was trained."""
    lines = [ln.split() for p in probes.glob("epochs-*.log") for ln in p.read_text().splitlines()]
    return Counter((t, int(e)) for t, e in lines)


def driver_main() -> int:
    """`python -c ... PROBES EPOCH_S sweep ARGS`: `mrmp sweep ARGS` with the probe around every trial."""
    import mrmp.sweep.trial as trial_mod

    probes, epoch_s, argv = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    trial_mod.tune_trainable = make_probe(trial_mod.tune_trainable, probes, epoch_s)
    return main(argv)


def mlflow_children(db: Path, experiment: str) -> list[Any]:
    return trial_runs(f"sqlite:///{db}", experiment)


def loss_steps(db: Path, run_id: str) -> list[int]:
    from mlflow import MlflowClient

    return sorted(m.step for m in MlflowClient(f"sqlite:///{db}").get_metric_history(run_id, "loss"))


# --- Ray processes a killed driver leaves behind -----------------------------------------------------------
def _proc_cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace").strip()


def processes_of(session: int, ray_tmp: Path) -> dict[int, str]:
    """Live processes that belong to the killed driver: members of the session (and process group) it led, or
    processes whose command line names its private RAY_TMPDIR (a Ray session dir under it). Nothing else."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            cmd = _proc_cmdline(pid)
            mine = os.getsid(pid) == session or os.getpgid(pid) == session or str(ray_tmp) in cmd
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
        if mine and not zombie:
            found[pid] = cmd[:100]
    return found


def stop_by_pid(pids: dict[int, str], grace: float = 5.0) -> dict[int, str]:
    """SIGTERM each, SIGKILL what is still there after `grace` s; returns those that would not go."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    alive = dict(pids)
    while alive and time.time() < deadline:
        alive = {p: c for p, c in alive.items() if _alive(p)}
        time.sleep(0.2)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    return {p: c for p, c in alive.items() if _alive(p)}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def optuna_trials(db: Path, name: str) -> tuple[int, list[Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return study._study_id, study.get_trials(deepcopy=False)


# --- 1. the driver killed mid-sweep, then --resume -----------------------------------------------------------
EPOCH_S = 0.4  # 8 epochs of ~0.45 s: the kill lands mid-trial


def settled(session: int, ray_tmp: Path, quiet_s: float = 2.0, limit_s: float = 15.0) -> dict[int, str]:
    """What the killed driver leaves once Ray's own fate-sharing is done (the set stops changing)."""
    seen, since, deadline = processes_of(session, ray_tmp), time.time(), time.time() + limit_s
    while time.time() - since < quiet_s and time.time() < deadline:
        time.sleep(0.3)
        now = processes_of(session, ray_tmp)
        if set(now) != set(seen):
            seen, since = now, time.time()
    return seen


@pytest.mark.slow
def test_driver_killed_mid_sweep_then_resume_finishes_it(ray_local, tmp_path, monkeypatch, capsys):
    name, trials, epochs = "killed", 4, 8
    store, probes = tmp_path / "store", tmp_path / "probes"
    probes.mkdir()
    f = sweep_file(
        tmp_path / "k.yaml",
        name,
        store,
        {"train.lr": {"type": "float", "low": 3.0e-3, "high": 3.0e-2, "log": True}},
        trials=trials,
        epochs=epochs,
    )
    db, optuna_db = store / name / "mlflow.db", store / name / "optuna.db"
    ray_tmp = Path(tempfile.mkdtemp(prefix="mrmp-rk-", dir="/tmp"))  # short: Ray's sockets live below it
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "driver.log").open("w")
    code = "import sys; from tests.test_reliability import driver_main; sys.exit(driver_main())"
    t0 = time.time()
    driver = subprocess.Popen(
        [sys.executable, "-c", code, str(probes), str(EPOCH_S), "sweep", str(f), "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # it leads its own session: what it leaves behind is found by that
    )
    leftovers: dict[int, str] = {}
    try:
        # kill it once two trials have finished and a later one is past its first checkpoint (read from the probe's
        # files and Tune's folders: opening the MLflow DB while the driver creates it would race its migration)
        deadline, killed_at = time.time() + 240, None
        tune_dir = store / name / "tune"
        while time.time() < deadline and driver.poll() is None:
            last = [recs[-1] for recs in attempts(probes).values()]
            done = [r for r in last if r.get("end") == "returned"]
            running = [
                r for r in last if "end" not in r and list((tune_dir / r["trial_id"]).glob("checkpoint_*"))
            ]
            if len(done) >= 2 and running:
                driver.send_signal(signal.SIGKILL)
                killed_at = time.time() - t0
                break
            time.sleep(0.3)
        driver.wait(timeout=30)
        assert killed_at is not None, (tmp_path / "driver.log").read_text()[-3000:]
        leftovers = settled(driver.pid, ray_tmp)
        from mrmp.sweep.runner import launch_leftovers

        assert launch_leftovers(driver.pid).keys() == leftovers.keys()  # what --resume warns about
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        stubborn = stop_by_pid(processes_of(driver.pid, ray_tmp))
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not stubborn, f"processes that survived SIGKILL: {stubborn}"

    before = {r.info.run_id: r for r in mlflow_children(db, name)}
    finished_before = {
        r.data.tags["mrmp.trial_id"]: r
        for r in before.values()
        if r.data.tags.get("mrmp.outcome") == "completed"
    }
    orphaned = [r.data.tags["mrmp.trial_id"] for r in before.values() if r.info.status == "RUNNING"]
    study_id, ot_before = optuna_trials(optuna_db, name)
    params_before = {t.number: t.params for t in ot_before}
    trained_before = epochs_trained(probes)
    assert finished_before  # the kill came mid-sweep

    import mrmp.sweep.trial as trial_mod

    monkeypatch.setattr(trial_mod, "tune_trainable", make_probe(trial_mod.tune_trainable, probes, EPOCH_S))
    t1 = time.time()
    assert main(["sweep", str(f), "--quiet", "--resume"]) == 0
    resume_s = time.time() - t1
    out = capsys.readouterr().out

    # the Optuna study: the same one, one trial per sweep trial, the old ones' parameters untouched
    study_id_after, ot_after = optuna_trials(optuna_db, name)
    assert study_id_after == study_id and len(ot_after) == trials
    assert all(t.state.name == "COMPLETE" for t in ot_after), [(t.number, t.state) for t in ot_after]
    assert {n: ot_after[n].params for n in params_before} == params_before, (
        [(t.number, t.state.name, t.params, t.user_attrs) for t in ot_before],
        [(t.number, t.state.name, t.params, t.user_attrs) for t in ot_after],
        out,
    )

    # MLflow: exactly one child run per trial, each terminal and complete, every epoch logged once
    runs = mlflow_children(db, name)
    assert len(runs) == trials and len({r.data.tags["mrmp.key"] for r in runs}) == trials
    assert sorted(int(r.data.tags["mrmp.optuna_trial"]) for r in runs) == list(range(trials))
    assert all(r.info.status == "FINISHED" and r.data.tags["mrmp.outcome"] == "completed" for r in runs)
    assert all("mrmp.error" not in r.data.tags for r in runs)  # nothing stale from the killed launch
    for r in runs:
        assert loss_steps(db, r.info.run_id) == list(range(1, epochs + 1)), r.info.run_name
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    parent = json.loads((store / name / "sweep.json").read_text())["parent_run_id"]
    assert client.get_run(parent).info.status == "FINISHED"

    # trials that had finished were not trained again (each of their epochs ran exactly once)
    trained = epochs_trained(probes)
    for tid, r in finished_before.items():
        assert [trained[(tid, e)] for e in range(1, epochs + 1)] == [1] * epochs, tid
        assert client.get_run(r.info.run_id).info.end_time == r.info.end_time
    rerun = sorted({t for (t, _), n in trained.items() if n > trained_before.get((t, _), 0)})
    adopted = [r for r in runs if r.data.tags.get("mrmp.former_key")]
    with capsys.disabled():
        print(
            f"\n[reliability] driver SIGKILL at {killed_at:.1f} s ({len(finished_before)} finished, "
            f"{len(orphaned)} running); Ray processes left behind, stopped by PID: {len(leftovers)} "
            f"{sorted(set(re.sub(r' .*', '', c) for c in leftovers.values()))}; resume {resume_s:.1f} s, "
            f"trials trained after resume: {len(rerun)}, lost trials re-run in their run: {len(adopted)}"
        )
    assert "resume" in out or not adopted


# --- 2. a NaN loss and a killed worker, in one sweep ---------------------------------------------------------
@pytest.fixture(scope="module")
def faulty(ray_local, tmp_path_factory):
    """A grid of two trials: lr 1e10 diverges (NaN at epoch 2); the other's worker is killed after its first
    checkpoint. max_failures 2, retry_on the default ([error])."""
    tmp = tmp_path_factory.mktemp("faults")
    probes = tmp / "probes"
    probes.mkdir()
    name = "faults"
    f = sweep_file(
        tmp / "f.yaml",
        name,
        tmp / "store",
        {"train.lr": {"type": "categorical", "choices": [0.01, 1.0e10]}},
        searcher="grid",
        max_failures=2,
        epochs=8,
    )
    tune_dir = tmp / "store" / name / "tune"
    kill: dict[str, Any] = {}
    stop = threading.Event()

    def kill_worker_after_first_checkpoint() -> None:
        while not stop.is_set():
            for tid, recs in attempts(probes).items():
                if recs[0]["config"]["train.lr"] != 0.01:
                    continue
                results = tune_dir / tid / "result.json"  # written by the driver once it has the checkpoint
                if results.exists() and results.read_text().strip() and _alive(recs[0]["pid"]):
                    if not kill:
                        kill.update(trial_id=tid, pid=recs[0]["pid"], at=time.time())
                        os.kill(recs[0]["pid"], signal.SIGKILL)
                        return
            time.sleep(0.1)

    import mrmp.sweep.trial as trial_mod

    original = trial_mod.tune_trainable
    trial_mod.tune_trainable = make_probe(original, probes, epoch_s=0.3)  # ~2.5 s of training per trial
    killer = threading.Thread(target=kill_worker_after_first_checkpoint, daemon=True)
    killer.start()
    t0 = time.time()
    try:
        code = main(["sweep", str(f), "--quiet"])
    finally:
        stop.set()
        killer.join(timeout=5)
        trial_mod.tune_trainable = original
    return {
        "code": code,
        "wall": time.time() - t0,
        "tmp": tmp,
        "db": tmp / "store" / name / "mlflow.db",
        "tune": tune_dir,
        "probes": probes,
        "kill": kill,
        "name": name,
    }


def _run_of(faulty: dict, lr: float) -> Any:
    (run,) = [
        r for r in mlflow_children(faulty["db"], faulty["name"]) if r.data.params["train.lr"] == str(lr)
    ]
    return run


@pytest.mark.slow
def test_nan_loss_fails_the_trial_naming_the_epoch_and_is_not_retrained(faulty, capsys):
    assert faulty["code"] == 0  # the sweep went on: the other trial completed
    run = _run_of(faulty, 1.0e10)
    tags = run.data.tags
    assert run.info.status == "FAILED" and tags["mrmp.outcome"] == "failed"
    assert tags["mrmp.error"].startswith("NonFiniteLoss: non-finite loss at epoch 2 (loss nan")
    assert tags["mrmp.retry"] == "no" and tags["mrmp.attempts"] == "1"
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{faulty['db']}")
    text = Path(client.download_artifacts(run.info.run_id, "error.txt", str(faulty["tmp"]))).read_text()
    assert "NonFiniteLoss: non-finite loss at epoch 2" in text
    # Tune: the trial ended ERROR with that reason; its retries failed at once, training nothing
    tid = tags["mrmp.trial_id"]
    error = (faulty["tune"] / tid / "error.txt").read_text()
    assert "non-finite loss at epoch 2" in error and "NotRetried" in error
    tries = attempts(faulty["probes"])[tid]
    assert len(tries) == 3  # max_failures 2: Tune's retries happened, and each stopped at once
    trained = epochs_trained(faulty["probes"])
    assert sorted(e for (t, e) in trained if t == tid) == [1, 2] and {
        trained[(tid, 1)],
        trained[(tid, 2)],
    } == {1}
    gaps = [b["start"] - a["start"] for a, b in zip(tries, tries[1:])]
    with capsys.disabled():
        print(f"\n[reliability] NaN trial: attempts {len(tries)}, retry gaps {[round(g, 1) for g in gaps]} s")


@pytest.mark.slow
def test_killed_worker_is_retried_from_its_checkpoint_in_the_same_run(faulty, capsys):
    kill = faulty["kill"]
    assert kill, "no worker was killed mid-trial"
    tries = attempts(faulty["probes"])[kill["trial_id"]]
    assert len(tries) == 2 and tries[0]["pid"] == kill["pid"]
    assert tries[1]["restored_epoch"] > 0, tries  # from its checkpoint, not from scratch
    run = _run_of(faulty, 0.01)
    assert run.info.status == "FINISHED" and run.data.tags["mrmp.outcome"] == "completed"
    assert run.data.tags["mrmp.attempts"] == "2" and "lost" not in run.data.tags.get("mrmp.error", "")
    assert loss_steps(faulty["db"], run.info.run_id) == list(range(1, 9))  # one run, every epoch once
    with capsys.disabled():
        print(
            f"\n[reliability] worker SIGKILL: retried {tries[1]['start'] - kill['at']:.1f} s later from epoch "
            f"{tries[1]['restored_epoch']}; faults sweep {faulty['wall']:.1f} s"
        )


# --- 3. safe defaults, across the tree -----------------------------------------------------------------------
SOURCES = sorted((ROOT / "mrmp").rglob("*.py"))


def _calls(text: str, name: str) -> list[str]:
    """The text of each call `name(...)` (balanced parentheses), to read its arguments."""
    out = []
    for m in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.start() : i])
    return out


def test_safe_defaults_hold_across_mrmp():
    problems = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        for call in _calls(text, "torch.load"):
            if "weights_only=True" not in call:
                problems.append(f"{rel}: {call}: torch.load without weights_only=True")
        for call in _calls(text, "yaml.load"):
            if "SafeLoader" not in call:
                problems.append(f"{rel}: {call}: yaml.load without SafeLoader (use yaml.safe_load)")
        for bad in (
            "yaml.unsafe_load",
            "yaml.full_load",
            "pickle.load",
            "shell=True",
            "os.system",
            "os.popen",
        ):
            if bad in text:
                problems.append(f"{rel}: uses {bad}")
        if re.search(r"""["']0\.0\.0\.0["']""", text):
            problems.append(f"{rel}: binds to 0.0.0.0")
    assert not problems, "\n".join(problems)
    assert SOURCES and any(_calls(p.read_text(), "torch.load") for p in SOURCES)  # the check sees real calls


def test_servers_bind_to_loopback_by_default():
    from mrmp.cli.main import build_parser

    args = build_parser().parse_args(["ui", "some-sweep"])
    assert args.host == "127.0.0.1"


# --- 4. the Optuna side of a resume, in isolation --------------------------------------------------------------
def test_lost_optuna_trials_are_asked_again_with_their_parameters(tmp_path):
    import optuna

    from mrmp.sweep.search import TRIAL_ID_ATTR, requeue_lost

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=url, sampler=optuna.samplers.RandomSampler(seed=0))
    asked = []
    for tid in ("known1", "known2", "lost3"):
        t = study.ask()
        t.suggest_float("train.lr", 1e-3, 1e-1, log=True)
        t.set_user_attr(TRIAL_ID_ATTR, tid)
        asked.append(t)
    study.tell(asked[0], 0.5)  # finished before the kill; known2 runs on; lost3 Tune never saved
    assert requeue_lost(url, "s", ["known1", "known2"]) == [2]
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE", "RUNNING", "WAITING"]
    again = study.ask()  # the next new Tune trial's ask takes it, parameters and all
    assert (
        again.number == 2
        and again.suggest_float("train.lr", 1e-3, 1e-1, log=True) == asked[2].params["train.lr"]
    )
    assert len(study.get_trials()) == 3


def test_the_searcher_never_tells_a_finished_optuna_trial_again(tmp_path, caplog):
    import optuna

    from mrmp.sweep.search import TRIAL_ID_ATTR, SweepSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path}/optuna.db"

    def space(trial):
        trial.suggest_float("train.lr", 1e-3, 1e-1, log=True)

    search = SweepSearch(
        space=space, metric="auc", mode="max", study_name="s", storage=optuna.storages.RDBStorage(url)
    )
    config = search.suggest("t1")
    assert set(config) == {"train.lr", "_optuna_trial"} and config["_optuna_trial"] == 0
    study = optuna.load_study(study_name="s", storage=url)
    assert study.trials[0].user_attrs[TRIAL_ID_ATTR] == "t1"
    study.tell(0, 0.7)  # told by the killed driver; the restored searcher still holds it as running
    with caplog.at_level("WARNING"):
        search.on_trial_result("t1", {"auc": 0.7, "training_iteration": 3})
        search.on_trial_complete("t1", {"auc": 0.7})
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.text
    assert study.trials[0].value == 0.7 and len(study.trials) == 1


def test_a_second_driver_on_a_running_sweep_is_refused(tmp_path, capsys):
    """Two drivers on one sweep folder would run two Tune experiments into one study: refused, exit 2."""
    from mrmp.sweep.results import SweepState
    from mrmp.sweep.spec import load_sweep

    f = sweep_file(
        tmp_path / "s.yaml",
        "busy",
        tmp_path / "store",
        {"train.lr": {"type": "categorical", "choices": [0.01]}},
    )
    spec = load_sweep(f)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "mrmp", "sweep"])
    try:
        spec.dir.mkdir(parents=True)
        launch = {"at": "2026-01-01T00:00:00+00:00", "pid": other.pid, "host": __import__("platform").node()}
        SweepState(
            spec.dir, {"status": "running", "fingerprint": spec.fingerprint(), "launches": [launch]}
        ).save()
        for extra in ([], ["--resume"]):
            assert main(["sweep", str(f), "--quiet", *extra]) == 2
            err = capsys.readouterr().err
            assert f"sweep 'busy' is running now (pid {other.pid}" in err and f"kill -INT {other.pid}" in err
        assert sorted(p.name for p in spec.dir.iterdir()) == ["sweep.json"]  # nothing else was touched
    finally:
        other.kill()
        other.wait()
