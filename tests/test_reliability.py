"""Faults a long sweep must survive, injected for real (docs/reliability.md):

- the `mrmp sweep` driver SIGKILLed mid-sweep (a process leading its own session), the Ray processes it leaves
  found and stopped by PID, then `--resume`: finished trials are not trained again, the Optuna study is the same,
  one terminal run per trial, every epoch logged once; while it ran, a second driver was refused by the lock;
- the driver SIGKILLed while its (slowed) store records a trial's end: `--resume` still ends that run;
- Ctrl-C (SIGINT) mid-sweep: exit 130, open runs KILLED (`interrupted`), `--resume` finishes them in the same runs;
- a NaN loss (lr 1e10, a real divergence): `diverged`, run FAILED naming the epoch, Optuna FAIL, not retried;
  with `retry_on: [nonfinite]` it is retried;
- a trial that raises: retried from its checkpoint, then FAILED with its traceback after `max_failures`;
- a trial's worker process SIGKILLed mid-trial: retried from its last checkpoint, in the same run;
- a second driver on a sweep whose lock is held is refused, naming the holder;
- the safe defaults hold across mrmp/ (no pickle loads, no unsafe YAML, no shell strings, loopback servers).

The probe (`tests.faults`) wraps every trial: it records each attempt (pid, restored epoch) and every epoch
trained, so "not trained again" is checked on what ran, not on what was logged; it also injects the faults that
happen inside a trial (raise, SIGKILL of its own process).
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
from pathlib import Path
from typing import Any

import pytest

from mrmp.cli.main import main

from .faults import (
    ROOT,
    artifact_text,
    attempts,
    driver_command,
    epochs_trained,
    optuna_trials,
    probed,
    processes_of,
    settled,
    steps,
    stop_by_pid,
    sweep_file,
    trial_runs,
    wait_for,
)

LR = {"train.lr": {"type": "float", "low": 3.0e-3, "high": 3.0e-2, "log": True}}


def _stores(root: Path, name: str) -> tuple[str, str, Path]:
    """(MLflow URI, Optuna URL, Tune experiment folder of the first part) of a sweep under `root`."""
    d = root / name
    return f"sqlite:///{d / 'mlflow.db'}", f"sqlite:///{d / 'optuna.db'}", d / "tune" / name


def _parent_status(root: Path, name: str) -> str:
    from mlflow import MlflowClient

    state = json.loads((root / name / "sweep.json").read_text())
    return MlflowClient(state["tracking"]["uri"]).get_run(state["parent_run_id"]).info.status


# --- 1. the driver SIGKILLed mid-sweep, then --resume ------------------------------------------------------------
EPOCH_S = 0.4  # added to each epoch: 8 epochs take a few seconds, so the kill lands mid-trial


@pytest.mark.slow
def test_driver_killed_mid_sweep_then_resume_finishes_it(ray_local, tmp_path, capsys):
    name, trials, epochs = "killed", 4, 8
    store, probes = tmp_path / "store", tmp_path / "probes"
    probes.mkdir()
    f = sweep_file(tmp_path / "k.yaml", name, store, LR, trials=trials, epochs=epochs)
    uri, optuna_url, tune_dir = _stores(store, name)
    ray_tmp = Path(tempfile.mkdtemp(prefix="mrmp-rk-", dir="/tmp"))  # short: Ray's sockets live below it
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(ROOT)}
    log_path = tmp_path / "driver.log"
    t0 = time.time()
    with log_path.open("w") as log:
        driver = subprocess.Popen(
            driver_command(probes, [str(f), "--quiet"], epoch_s=EPOCH_S),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it leads its own session: what it leaves behind is found by that
        )
    refused: list[tuple[int, str]] = []
    leftovers: dict[int, str] = {}
    try:

        def ripe() -> bool:
            """Two trials finished, and a later one past its first checkpoint (the probe's files, Tune's)."""
            last = [recs[-1] for recs in attempts(probes).values()]
            done = [r for r in last if r.get("end") == "returned"]
            running = [
                r for r in last if "end" not in r and list((tune_dir / r["trial_id"]).glob("checkpoint_*"))
            ]
            return driver.poll() is not None or (len(done) >= 2 and bool(running))

        assert wait_for(ripe, timeout=300) and driver.poll() is None, log_path.read_text()[-3000:]
        # a second driver on the running sweep is refused by its lock, with or without --resume
        for extra in ([], ["--resume"]):
            refused.append((main(["sweep", str(f), "--quiet", *extra]), capsys.readouterr().err))
        driver.send_signal(signal.SIGKILL)
        killed_at = time.time() - t0
        driver.wait(timeout=30)
        leftovers = settled(driver.pid, ray_tmp)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        stubborn = stop_by_pid(processes_of(driver.pid, ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not stubborn, f"processes that survived SIGKILL: {stubborn}"
    for code, err in refused:
        assert code == 2 and f"sweep 'killed' is running now (pid {driver.pid} " in err, (code, err)
        assert "Traceback" not in err

    before = {r.info.run_id: r for r in trial_runs(uri, name)}
    finished_before = {
        r.data.tags["mrmp.tune_trial_id"]: r
        for r in before.values()
        if r.data.tags.get("mrmp.outcome") == "completed"
    }
    orphaned = [r for r in before.values() if r.info.status == "RUNNING"]
    study_id, ot_before = optuna_trials(optuna_url, name)
    params_before = {t.number: t.params for t in ot_before}
    trained_before = epochs_trained(probes)
    assert finished_before and orphaned, [(r.info.run_name, r.info.status) for r in before.values()]

    t1 = time.time()
    with probed(probes, epoch_s=EPOCH_S):
        code = main(["sweep", str(f), "--quiet", "--resume"])
    resume_s = time.time() - t1
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]

    # the Optuna study: the same one, one trial per sweep trial, the old ones' parameters untouched
    study_id_after, ot_after = optuna_trials(optuna_url, name)
    assert study_id_after == study_id and len(ot_after) == trials
    assert all(t.state.name == "COMPLETE" for t in ot_after), [(t.number, t.state) for t in ot_after]
    # (one the driver had asked but not yet given parameters when it was killed is asked again for fresh ones)
    given = {n: p for n, p in params_before.items() if p}
    assert {n: ot_after[n].params for n in given} == given

    # MLflow: exactly one terminal run per trial, each complete, every epoch logged once
    runs = trial_runs(uri, name)
    assert sorted(int(r.data.tags["mrmp.optuna_number"]) for r in runs) == list(range(trials))
    assert all(r.info.status == "FINISHED" and r.data.tags["mrmp.outcome"] == "completed" for r in runs), [
        (r.info.run_name, r.info.status, r.data.tags.get("mrmp.outcome")) for r in runs
    ]
    assert all("mrmp.error" not in r.data.tags for r in runs)  # nothing stale from the killed launch
    for r in runs:
        assert steps(uri, r.info.run_id) == list(range(1, epochs + 1)), r.info.run_name
        assert r.info.run_name == f"mp-{int(r.data.tags['mrmp.optuna_number']):03d}"
    assert _parent_status(store, name) == "FINISHED"

    # trials that had finished were not trained again (each of their epochs ran once) nor their runs touched
    trained = epochs_trained(probes)
    for tid, r in finished_before.items():
        assert [trained[(tid, e)] for e in range(1, epochs + 1)] == [1] * epochs, tid
        after = next(a for a in runs if a.info.run_id == r.info.run_id)
        assert after.info.end_time == r.info.end_time and after.data.tags["mrmp.attempts"] == "1"
    # those Tune restored as unfinished (they ended after its last save) reported their runs' end, training nothing
    ended_late = [t for t in finished_before if len(attempts(probes)[t]) > 1]
    assert all(a["end"] == "returned" for t in ended_late for a in attempts(probes)[t])
    retrained = sorted({t for (t, e), n in trained.items() if n > trained_before.get((t, e), 0)})
    adopted = [r for r in runs if int(r.data.tags["mrmp.attempts"]) > 1]
    names = sorted({re.sub(r" .*", "", c) for c in leftovers.values()})
    with capsys.disabled():
        print(
            f"\n[reliability] driver SIGKILL at {killed_at:.1f} s ({len(finished_before)} finished, "
            f"{len(orphaned)} running); left behind, stopped by PID: {len(leftovers)} {names}; "
            f"resume {resume_s:.1f} s, trials trained after it: {len(retrained)}, runs reopened: {len(adopted)}, "
            f"ended after Tune's last save (not trained again): {len(ended_late)}"
        )


@pytest.mark.slow
def test_driver_killed_while_a_trials_end_is_being_recorded_then_resume_records_it(ray_local, tmp_path):
    """The store is slow to record a trial's end (15 s, in the driver), and the driver is SIGKILLed 8 s after
    the trial returned: Tune must not have saved the trial as ended while its run was not, or no resume would
    ever close that run. --resume then ends it completed, in its run, without training it again."""
    name, epochs = "slow-end", 3
    store, probes = tmp_path / "store", tmp_path / "probes"
    probes.mkdir()
    one = {"train.lr": {"type": "categorical", "choices": [0.01]}}
    f = sweep_file(tmp_path / "e.yaml", name, store, one, searcher="grid", epochs=epochs)
    uri, optuna_url, _ = _stores(store, name)
    ray_tmp = Path(tempfile.mkdtemp(prefix="mrmp-re-", dir="/tmp"))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "PYTHONPATH": str(ROOT)}
    argv = driver_command(probes, [str(f), "--quiet"], finish_delay_s=15)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    driver = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, **quiet)
    try:
        returned = wait_for(
            lambda: [r for t in attempts(probes).values() for r in t if "end" in r], timeout=300
        )
        assert returned and driver.poll() is None
        time.sleep(8)  # a one-trial experiment is over: Tune saves its state as soon as callbacks let it
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        stubborn = stop_by_pid(settled(driver.pid, ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not stubborn
    (run,) = trial_runs(uri, name)
    assert run.info.status == "RUNNING"  # its end was not recorded: the driver died first

    with probed(probes):
        assert main(["sweep", str(f), "--quiet", "--resume"]) == 0
    (after,) = trial_runs(uri, name)
    assert after.info.run_id == run.info.run_id
    assert (after.info.status, after.data.tags["mrmp.outcome"]) == ("FINISHED", "completed")
    assert steps(uri, after.info.run_id) == list(range(1, epochs + 1))
    assert all(n == 1 for n in epochs_trained(probes).values())  # restored from its final checkpoint
    _, studied = optuna_trials(optuna_url, name)
    assert [t.state.name for t in studied] == ["COMPLETE"]


# --- 2. Ctrl-C mid-sweep, then --resume ----------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_ends_open_runs_killed_then_resume_finishes_them(ray_local, tmp_path, capsys):
    name, trials, epochs = "ctrl-c", 3, 8  # 2 at a time: once the first ends, every trial has started
    store, probes = tmp_path / "store", tmp_path / "probes"
    probes.mkdir()
    f = sweep_file(tmp_path / "c.yaml", name, store, LR, trials=trials, epochs=epochs)
    uri, optuna_url, _ = _stores(store, name)
    db = store / name / "mlflow.db"
    sent: dict[str, Any] = {}

    def interrupt_mid_trial() -> None:
        """Ctrl-C once a trial has completed, another is mid-way and none is left to start (Tune then marks
        every trial TERMINATED, the stopped ones too)."""

        def ripe() -> bool:
            if not db.exists():
                return False
            runs = trial_runs(uri, name) if (store / name / "sweep.json").exists() else []
            done = [r for r in runs if r.data.tags.get("mrmp.outcome") == "completed"]
            mid = [
                r for r in runs if r.info.status == "RUNNING" and 2 <= len(steps(uri, r.info.run_id)) < epochs
            ]
            return bool(done and mid) and len(runs) == trials

        if wait_for(ripe, timeout=300, every=0.5):
            sent["at"] = time.time()
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: Tune saves its state and returns

    thread = threading.Thread(target=interrupt_mid_trial, daemon=True)
    thread.start()
    with probed(probes, epoch_s=EPOCH_S):
        code = main(["sweep", str(f), "--quiet"])
    thread.join(timeout=5)
    out = capsys.readouterr().out
    assert sent, "the sweep ended before the interrupt"
    assert code == 130, out[-3000:]
    assert f"mrmp sweep {f} --resume" in out

    first = {r.info.run_id: r for r in trial_runs(uri, name)}
    assert "RUNNING" not in {r.info.status for r in first.values()}
    interrupted = {rid for rid, r in first.items() if r.data.tags["mrmp.outcome"] == "interrupted"}
    completed = {rid for rid, r in first.items() if r.data.tags["mrmp.outcome"] == "completed"}
    assert interrupted and completed and interrupted | completed == set(first)
    assert all(first[rid].info.status == "KILLED" for rid in interrupted)
    assert _parent_status(store, name) == "KILLED"
    # those that had reported, so checkpointed (checkpoint_every 0): the one interrupted mid-way at least
    reported = {rid for rid in interrupted if steps(uri, rid)}
    assert reported
    trained_before = epochs_trained(probes)

    with probed(probes, epoch_s=EPOCH_S):
        assert main(["sweep", str(f), "--quiet", "--resume"]) == 0
    runs = {r.info.run_id: r for r in trial_runs(uri, name)}
    assert len(runs) == trials and set(first) <= set(runs)  # interrupted runs were reopened, not replaced
    assert {(r.info.status, r.data.tags["mrmp.outcome"]) for r in runs.values()} == {
        ("FINISHED", "completed")
    }
    for rid, r in runs.items():
        assert steps(uri, rid) == list(range(1, epochs + 1)), r.info.run_name  # each epoch logged once
        if rid in interrupted:
            assert r.data.tags["mrmp.attempts"] == "2" and "interrupted" in r.data.tags["mrmp.previous_error"]
        if rid in completed:  # not run again
            assert r.info.end_time == first[rid].info.end_time and r.data.tags["mrmp.attempts"] == "1"
    trained = epochs_trained(probes)
    for rid in completed:
        tid = runs[rid].data.tags["mrmp.tune_trial_id"]
        assert all(trained[(tid, e)] == trained_before[(tid, e)] == 1 for e in range(1, epochs + 1)), tid
    for rid in interrupted & reported:  # continued from the checkpoint of its last report, not from scratch
        tid = runs[rid].data.tags["mrmp.tune_trial_id"]
        assert trained[(tid, 1)] == 1, tid
    _, studied = optuna_trials(optuna_url, name)
    assert len(studied) == trials and {t.state.name for t in studied} == {"COMPLETE"}
    assert _parent_status(store, name) == "FINISHED"


# --- 3-5. a NaN loss, a trial that raises, a killed worker: one sweep ------------------------------------------
@pytest.fixture(scope="module")
def faulty(ray_local, tmp_path_factory):
    """A grid of three trials, max_failures 2, retry_on left at its default ([error]):
    lr 1e10 diverges (NaN at epoch 2); lr 0.02 raises whenever it would train past epoch 4; lr 0.01 SIGKILLs its
    own worker process in its first attempt when it would train past epoch 4 (its checkpoint at epoch 4 done)."""
    tmp = tmp_path_factory.mktemp("faults")
    probes = tmp / "probes"
    probes.mkdir()
    name = "faults"
    f = sweep_file(
        tmp / "f.yaml",
        name,
        tmp / "store",
        {"train.lr": {"type": "categorical", "choices": [0.01, 0.02, 1.0e10]}},
        searcher="grid",
        max_failures=2,
        epochs=8,
    )
    rules = [
        {"when": {"train.lr": 0.02}, "at_epoch": 4, "do": "raise"},
        {"when": {"train.lr": 0.01}, "at_epoch": 4, "do": "kill", "attempts": [0]},
    ]
    t0 = time.time()
    with probed(probes, epoch_s=0.3, rules=rules):
        code = main(["sweep", str(f), "--quiet"])
    uri, optuna_url, tune_dir = _stores(tmp / "store", name)
    return {
        "code": code,
        "wall": time.time() - t0,
        "tmp": tmp,
        "uri": uri,
        "optuna": optuna_url,
        "probes": probes,
        "name": name,
    }


def _run_of(faulty: dict, lr: float) -> Any:
    (run,) = [r for r in trial_runs(faulty["uri"], faulty["name"]) if float(r.data.params["train.lr"]) == lr]
    return run


def _optuna_state(faulty: dict, lr: float) -> str:
    _, studied = optuna_trials(faulty["optuna"], faulty["name"])
    (t,) = [t for t in studied if t.params["train.lr"] == lr]
    return t.state.name


@pytest.mark.slow
def test_nan_loss_ends_the_trial_diverged_naming_the_epoch_and_is_not_retried(faulty):
    assert faulty["code"] == 0  # the sweep went on: the lr 0.01 trial completed
    run = _run_of(faulty, 1.0e10)
    tags = run.info.status, run.data.tags["mrmp.outcome"], run.data.tags["mrmp.error"]
    assert tags == ("FAILED", "diverged", "non-finite loss at epoch 2 (loss nan)")
    assert run.data.tags["mrmp.attempts"] == "1" and run.data.tags["mrmp.epochs"] == "2"
    assert _optuna_state(faulty, 1.0e10) == "FAIL"
    tid = run.data.tags["mrmp.tune_trial_id"]
    assert len(attempts(faulty["probes"])[tid]) == 1  # not retried, though max_failures is 2
    trained = epochs_trained(faulty["probes"])
    assert {e: n for (t, e), n in trained.items() if t == tid} == {1: 1, 2: 1}
    assert steps(faulty["uri"], run.info.run_id) == [1]  # the NaN epoch is not a point


@pytest.mark.slow
def test_a_trial_that_raises_is_retried_from_its_checkpoint_then_fails_with_its_traceback(faulty):
    run = _run_of(faulty, 0.02)
    tags = run.data.tags
    assert (run.info.status, tags["mrmp.outcome"]) == ("FAILED", "failed")
    assert tags["mrmp.error"] == "RuntimeError: injected fault at epoch 4"
    assert tags["mrmp.attempts"] == "3"  # the first run and max_failures (2) retries, all in this run
    text = artifact_text(faulty["uri"], run.info.run_id, "error.txt", faulty["tmp"])
    assert (
        text.startswith("Failure # 1") and "Failure # 3" in text
    )  # every attempt's traceback (Ray's format)
    assert 'in advance\n    raise RuntimeError(f"injected fault' in text
    assert _optuna_state(faulty, 0.02) == "FAIL"
    tries = attempts(faulty["probes"])[tags["mrmp.tune_trial_id"]]
    assert [t["restored_epoch"] for t in tries] == [0, 4, 4]  # each retry from the checkpoint at epoch 4
    assert all(t["end"] == "RuntimeError" for t in tries)
    assert steps(faulty["uri"], run.info.run_id) == [1, 2, 3, 4]  # every epoch it trained, once


@pytest.mark.slow
def test_killed_worker_is_retried_from_its_checkpoint_in_the_same_run(faulty, capsys):
    run = _run_of(faulty, 0.01)
    tries = attempts(faulty["probes"])[run.data.tags["mrmp.tune_trial_id"]]
    assert len(tries) == 2 and "end" not in tries[0], tries  # the first attempt died with its process
    assert (
        tries[1]["pid"] != tries[0]["pid"]
        and tries[1]["restored_epoch"] == 4
        and tries[1]["end"] == "returned"
    )
    tags = run.data.tags
    assert (run.info.status, tags["mrmp.outcome"], tags["mrmp.attempts"]) == ("FINISHED", "completed", "2")
    assert "mrmp.error" not in tags  # and why the first attempt ended:
    assert "its worker process has died" in tags["mrmp.previous_error"]
    assert steps(faulty["uri"], run.info.run_id) == list(range(1, 9))  # one run, every epoch once
    assert _optuna_state(faulty, 0.01) == "COMPLETE"
    trained = epochs_trained(faulty["probes"])
    tid = tags["mrmp.tune_trial_id"]
    assert [trained[(tid, e)] for e in range(5, 9)] == [1] * 4  # after the checkpoint: trained once
    with capsys.disabled():
        print(
            f"\n[reliability] worker SIGKILL: retried {tries[1]['start'] - tries[0]['start']:.1f} s after its "
            f"first start, from epoch {tries[1]['restored_epoch']}; faults sweep {faulty['wall']:.1f} s"
        )


@pytest.mark.slow
def test_nan_loss_is_retried_when_retry_on_names_nonfinite(ray_local, tmp_path):
    probes = tmp_path / "probes"
    probes.mkdir()
    name = "nonfinite"
    f = sweep_file(
        tmp_path / "n.yaml",
        name,
        tmp_path / "store",
        {"train.lr": {"type": "categorical", "choices": [1.0e10]}},
        searcher="grid",
        max_failures=1,
        retry_on=["error", "nonfinite"],
        epochs=4,
    )
    with probed(probes):
        code = main(["sweep", str(f), "--quiet"])
    assert code == 1  # no trial has a score
    uri, optuna_url, _ = _stores(tmp_path / "store", name)
    (run,) = trial_runs(uri, name)
    tags = run.data.tags
    assert (run.info.status, tags["mrmp.outcome"], tags["mrmp.attempts"]) == ("FAILED", "failed", "2")
    assert tags["mrmp.error"] == "mrmp.sweep.trial.NonFiniteLoss: non-finite loss at epoch 2 (loss nan)"
    (tries,) = attempts(probes).values()
    assert [t["end"] for t in tries] == ["NonFiniteLoss", "NonFiniteLoss"]
    _, studied = optuna_trials(optuna_url, name)
    assert [t.state.name for t in studied] == ["FAIL"]


# --- 8. one driver per sweep: the lock -------------------------------------------------------------------------
HOLD = """\
import sys, time
from pathlib import Path
from mrmp.sweep.state import DriverLock
lock = DriverLock(Path(sys.argv[1]))
assert lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_driver_is_refused_while_another_holds_the_sweep(tmp_path, capsys):
    """The lock alone decides (no sweep.json yet: the first driver may still be starting Ray): exit 2, the
    holder's pid named, nothing touched. The SIGKILL test above checks the same against a real running driver."""
    from mrmp.sweep.spec import load_sweep

    f = sweep_file(tmp_path / "s.yaml", "busy", tmp_path / "store", LR)
    sweep_dir = load_sweep(f).dir
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(sweep_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in sweep_dir.iterdir())
        assert main(["sweep", str(f), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"sweep 'busy' is running now (pid {holder.pid} " in err and "kill -INT PID" in err
        assert sorted(p.name for p in sweep_dir.iterdir()) == before == [".driver.lock"]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# --- 11. safe defaults, across the tree --------------------------------------------------------------------------
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
            "pickle.loads",
            "shell=True",
            "os.system",
            "os.popen",
        ):
            if bad in text:
                problems.append(f"{rel}: uses {bad}")
        for call in _calls(text, "pickle.load"):
            problems.append(f"{rel}: {call}: pickle.load of a file")
        if re.search(r"""["']0\.0\.0\.0["']""", text):
            problems.append(f"{rel}: binds to 0.0.0.0")
    assert not problems, "\n".join(problems)
    assert any(_calls(p.read_text(), "torch.load") for p in SOURCES)  # the check sees real calls


def test_servers_bind_to_loopback_by_default():
    from mrmp.cli.main import build_parser
    from mrmp.cli.ui import ui_command

    args = build_parser().parse_args(["ui", "some-sweep"])
    assert args.host == "127.0.0.1"
    command = ui_command("sqlite:////x/mlflow.db", args.host, args.port)
    assert command[command.index("--host") + 1] == "127.0.0.1"
