"""End to end, as a user runs it: `mrmp sweep` on a tiny sweep (local Ray, local MLflow, synthetic data), read
back through the MLflow client, `mrmp export` then `mrmp.train.run` on an exported config, `mrmp report`,
`--resume` of the finished sweep, and `mrmp ui`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from mrmp.cli.main import main
from mrmp.config import load_config
from mrmp.methods import registry
from mrmp.sweep.objectives import curve_metrics
from mrmp.train import run

ROOT = Path(__file__).parents[1]
METHODS = ["srmp", "mrmp"] if {"srmp", "mrmp"} <= set(registry.names()) else ["mp", "random"]

TINY = f"""\
sweep:
  name: tiny
  searcher: grid
  concurrency: 2
  scheduler: {{name: asha, grace_period: 2, reduction_factor: 2}}
  objectives: [{{metric: auc, mode: max}}]
  resources: {{cpu: 1, gpu: 0}}
  report_every: 2
base:
  data: {{name: synthetic-sbu}}
  train: {{epochs: 4}}
  eval: {{rates: [0.0, 0.5, 0.52, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.95, 0.98, 0.99]}}
space:
  method.name: {{type: categorical, choices: {METHODS}}}
  train.lr: {{type: categorical, choices: [0.01, 0.03]}}
"""


@pytest.fixture(scope="module")
def swept(ray_local, tmp_path_factory):
    """Run the tiny sweep once for the tests of this module."""
    tmp = tmp_path_factory.mktemp("e2e")
    path = tmp / "tiny.yaml"
    path.write_text(TINY)
    t0 = time.perf_counter()
    code = main(["sweep", str(path), "--quiet", "--set", f"sweep.storage.root={tmp / 'store'}"])
    wall = time.perf_counter() - t0
    assert code == 0
    return path, tmp, wall


def _client(tmp: Path):
    from mlflow import MlflowClient

    state = json.loads((tmp / "store/tiny/sweep.json").read_text())
    client = MlflowClient(state["tracking"]["uri"])
    return client, client.get_experiment_by_name("tiny").experiment_id, state


@pytest.mark.slow
def test_mlflow_holds_a_parent_and_one_child_per_trial_with_per_rate_curves(swept, capsys):
    path, tmp, wall = swept
    client, exp, state = _client(tmp)
    runs = client.search_runs([exp], max_results=100)
    parents = [r for r in runs if r.data.tags.get("mrmp.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mrmp.kind") == "trial"]
    assert len(parents) == 1 and len(children) == 4  # a 2 x 2 grid
    parent = parents[0]
    assert parent.info.run_id == state["parent_run_id"] and parent.info.status == "FINISHED"
    assert {r.info.status for r in runs} == {"FINISHED"}  # nothing left RUNNING, early-stopped ones included
    assert {r.data.tags["mrmp.method"] for r in children} == set(METHODS)
    for r in children:
        tags, rid = r.data.tags, r.info.run_id
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["mrmp.outcome"] in ("completed", "stopped_early")
        # where the trial ran (Ray node, GPUs): a gpu: 0 trial sees none, whatever its node has
        assert (
            tags["mrmp.ray_node_id"]
            and tags["mrmp.gpu_ids"] == ""
            and tags["mrmp.cuda_visible_devices"] == ""
        )
        assert tags["mrmp.attempts"] == "1" and tags["mrmp.optuna_trial"].isdigit()
        for key in (
            "mlflow.source.git.commit",
            "mrmp.config_hash",
            "mrmp.split_hash",
            "mrmp.seeds",
            "mrmp.versions.torch",
        ):
            assert tags[key], key
        assert r.data.params["method.name"] == tags["mrmp.method"] and "train.lr" in r.data.params
        acc = client.get_metric_history(rid, "acc")
        seen = client.get_metric_history(rid, "acc_seen")
        unseen = client.get_metric_history(rid, "acc_unseen")
        assert sorted(m.step for m in acc) == sorted(
            [0, 520, 920, 990, *range(500, 951, 50), 980]
        )  # per mille
        assert sorted((m.step, m.value) for m in acc) == sorted((m.step, m.value) for m in seen + unseen)
        assert seen and unseen  # both kinds of points on every curve
        epochs = int(tags["mrmp.epochs"])
        assert [m.step for m in client.get_metric_history(rid, "loss")] == list(range(1, epochs + 1))
        assert {"auc", "mean_seen", "mean_unseen", "worst_unseen", "dense"} <= set(r.data.metrics)
        files = {a.path for a in client.list_artifacts(rid)}
        assert {"config.yaml", "curve.csv", "curve.png", "summary.json"} <= files
    with capsys.disabled():
        outcomes = [r.data.tags["mrmp.outcome"] for r in children]
        print(
            f"\n[e2e] tiny sweep ({METHODS}, 4 trials, 2 concurrent): {wall:.1f} s wall; outcomes {outcomes}"
        )


@pytest.mark.slow
def test_export_then_train_reproduces_the_trial(swept, tmp_path, capsys):
    path, tmp, _ = swept
    out = tmp_path / "best"
    assert main(["export", str(tmp / "store/tiny"), "--out", str(out), "--rates", "0.9"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    best = [e for e in manifest["entries"] if e["metric"] == "auc"]
    assert best and all(Path(out / e["file"]).exists() for e in manifest["entries"])
    assert {"value", "run_id", "trial_id", "command"} <= set(best[0])
    entry = best[0]
    cfg = load_config(out / entry["file"])  # what `mrmp train` reads
    assert cfg.hash() == entry["config_hash"]
    again = run(cfg)  # the data is prepared from the config, as `mrmp train` does
    assert curve_metrics(again.curve)["auc"] == pytest.approx(entry["value"], abs=1e-6)
    at = [e for e in manifest["entries"] if e["metric"] == "acc@0.9"]
    assert at and (out / at[0]["file"]).name.endswith("@0.9.yaml")


@pytest.mark.slow
def test_report_and_resume(swept, tmp_path, capsys):
    path, tmp, _ = swept
    out = tmp_path / "report"
    assert main(["report", str(tmp / "store/tiny"), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "synthetic SBU-like data generated by mrmp" in text and "| method | trial |" in text
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()

    client, exp, state = _client(tmp)
    before = {r.info.run_id for r in client.search_runs([exp])}
    assert (
        main(["sweep", str(path), "--quiet", "--set", f"sweep.storage.root={tmp / 'store'}"]) == 2
    )  # exists
    assert "--resume" in capsys.readouterr().err
    assert (
        main(["sweep", str(path), "--quiet", "--resume", "--set", f"sweep.storage.root={tmp / 'store'}"]) == 0
    )
    after = client.search_runs([exp])
    assert {r.info.run_id for r in after} == before  # nothing re-run
    assert {r.info.status for r in after} == {"FINISHED"}
    changed = ["--set", "train.epochs=5", "--set", f"sweep.storage.root={tmp / 'store'}"]
    assert main(["sweep", str(path), "--quiet", "--resume", *changed]) == 2
    assert "changed since its first launch" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_sweep_and_stops_on_ctrl_c(swept):
    path, tmp, _ = swept
    port = _free_port()
    exe = Path(sys.executable).with_name("mrmp")
    proc = subprocess.Popen(
        [str(exe), "ui", str(tmp / "store/tiny"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C reaches it and its mlflow child only
    )
    try:
        deadline = time.time() + 90
        body = None
        while time.time() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=tiny"
                body = json.loads(urllib.request.urlopen(url, timeout=2).read())
                break
            except OSError:
                time.sleep(1)
        assert body and body["experiment"]["name"] == "tiny"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert f"http://127.0.0.1:{port}" in out and "stopped" in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sweep_yaml_copy_is_kept(swept):
    path, tmp, _ = swept
    saved = yaml.safe_load((tmp / "store/tiny/sweep.yaml").read_text())
    assert saved["sweep"]["name"] == "tiny" and saved["space"]["method.name"]["choices"] == METHODS


@pytest.mark.slow
def test_ctrl_c_then_resume_finishes_without_rerunning(ray_local, tmp_path, capsys):
    """Ctrl-C mid-sweep: exit 130, open runs KILLED; --resume reopens them and runs only what is left.

    Tune's experiment lives apart from the sweep folder, given as a URI (`sweep.storage.tune`, as s3://...
    would be): checkpoints go there, the state files stay under storage.root, and --resume restores from it."""
    import threading

    from mlflow import MlflowClient

    path = tmp_path / "tiny.yaml"
    path.write_text(
        TINY.replace("name: tiny", "name: tiny-int")
        .replace("scheduler: {name: asha, grace_period: 2, reduction_factor: 2}", "scheduler: none")
        .replace("epochs: 4", "epochs: 8")
    )
    elsewhere = tmp_path / "object-store" / "tiny-int"
    args = ["sweep", str(path), "--quiet", "--set", f"sweep.storage.root={tmp_path}"]
    args += ["--set", f"sweep.storage.tune=file://{elsewhere}"]
    db = tmp_path / "tiny-int/mlflow.db"

    def interrupt_after_first_trial() -> None:
        deadline = time.time() + 240
        while time.time() < deadline:
            if db.exists():
                client = MlflowClient(f"sqlite:///{db}")
                exp = client.get_experiment_by_name("tiny-int")
                if exp and client.search_runs([exp.experiment_id], "tags.`mrmp.outcome` = 'completed'"):
                    time.sleep(3)  # let Tune register that trial's end (its run is closed just before)
                    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: Tune saves its state and returns
                    return
            time.sleep(0.5)

    threading.Thread(target=interrupt_after_first_trial, daemon=True).start()
    assert main(args) == 130
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("tiny-int").experiment_id
    first = {r.info.run_id: r for r in client.search_runs([exp])}
    statuses = sorted(r.info.status for r in first.values())
    assert "RUNNING" not in statuses and "KILLED" in statuses  # the parent at least
    done_before = {rid for rid, r in first.items() if r.data.tags.get("mrmp.outcome") == "completed"}
    assert "--resume" in capsys.readouterr().out

    assert list(elsewhere.glob("*/checkpoint_*")) and not (tmp_path / "tiny-int/tune").exists()
    assert json.loads((tmp_path / "tiny-int/sweep.json").read_text())["tune_dir"] == f"file://{elsewhere}"
    assert main([*args, "--resume"]) == 0
    after = {r.info.run_id: r for r in client.search_runs([exp])}
    children = [r for r in after.values() if r.data.tags.get("mrmp.kind") == "trial"]
    assert len(children) == 4 and {r.info.status for r in after.values()} == {"FINISHED"}
    assert set(first) <= set(after)  # interrupted runs were reopened, not replaced
    for r in children:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "loss")]
        assert sorted(steps) == list(range(1, 9)), (r.info.run_name, steps)  # no epoch logged twice
        if r.info.run_id in done_before:  # finished trials were not trained again
            assert r.info.end_time == first[r.info.run_id].info.end_time
