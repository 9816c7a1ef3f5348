"""End to end, as a user runs it: `mrmp sweep` on a tiny sweep (local Ray, local MLflow, synthetic data), read
back through the MLflow and Optuna clients; `mrmp export` then `mrmp.train.run` on an exported config;
`mrmp report`; `--resume` of a finished sweep (nothing runs, nothing is rewritten); growing it by a trial; an
ASHA sweep's stopped trials PRUNED in Optuna; `mrmp ui`.
"""

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

TINY = """\
sweep:
  name: tiny
  searcher: grid
  concurrency: 2
  objectives: [acc@targets]
  target_rates: [0.9]
  seeds: [0, 1]
  report_every: 2
base:
  data: {name: synthetic-sbu}
  model: {blocks: 1, heads: 1, filters: 4, fc: 16}
  train: {epochs: 4}
  eval: {rates: [0.0, 0.5, 0.7, 0.9]}
space:
  method.name: {type: categorical, choices: [srmp, mp]}
"""


@pytest.fixture(scope="module")
def swept(ray_local, tmp_path_factory):
    """Run the tiny sweep once for the tests of this module: 2 trials (SRMP trains at 0.9, MP is read there),
    each 2 seeds."""
    tmp = tmp_path_factory.mktemp("e2e")
    path = tmp / "tiny.yaml"
    path.write_text(TINY)
    code = main(["sweep", str(path), "--set", f"sweep.storage.root={tmp / 'store'}"])
    assert code == 0
    return path, tmp


def _client(tmp: Path):
    from mlflow import MlflowClient

    state = json.loads((tmp / "store/tiny/sweep.json").read_text())
    client = MlflowClient(state["tracking"]["uri"])
    return client, client.get_experiment_by_name("tiny"), state


def _study(tmp: Path, name: str = "tiny"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / 'store' / name / 'optuna.db'}")


@pytest.mark.slow
def test_mlflow_shows_named_trials_with_validation_and_test_apart(swept):
    path, tmp = swept
    client, exp, state = _client(tmp)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # opens on its runs
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags["mrmp.kind"] == "sweep"]
    children = sorted((r for r in runs if r.data.tags["mrmp.kind"] == "trial"), key=lambda r: r.info.run_name)
    assert [r.info.run_name for r in children] == ["mp-001", "srmp-000"]  # method and Optuna number
    for r in children:
        assert r.info.status == "FINISHED" and r.data.tags["mrmp.outcome"] == "completed"
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        m = r.data.metrics
        for key in (
            "val_acc_at_targets",
            "val_acc_at_targets_std",
            "val_acc_at_targets_ci95_lo",
            "test_acc_at_targets",
        ):
            assert key in m, key
        assert m["val_acc_at_targets_ci95_lo"] <= m["val_acc_at_targets"] <= m["val_acc_at_targets_ci95_hi"]
        assert r.data.tags["mlflow.note.content"].startswith(r.data.tags["mrmp.method"])
        steps = [x.step for x in client.get_metric_history(r.info.run_id, "train/loss")]
        assert steps == [1, 2, 3, 4]
    mp = children[0]
    assert [x.step for x in client.get_metric_history(mp.info.run_id, "curve/val_acc")] == [500, 700, 900]
    srmp = children[1]  # trained at 0.9: scored there only
    assert [x.step for x in client.get_metric_history(srmp.info.run_id, "curve/val_acc")] == [900]
    assert "val_auc" in mp.data.metrics and "val_auc" not in srmp.data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/trials.csv", "report/frontier.png"} <= artifacts
    assert parent.info.status == "FINISHED" and parent.data.tags["mrmp.best_run_id"] in {
        r.info.run_id for r in children
    }


@pytest.mark.slow
def test_optuna_holds_named_objectives_and_knows_each_run(swept):
    path, tmp = swept
    client, exp, _ = _client(tmp)
    study = _study(tmp)
    assert study.metric_names == ["val_acc_at_targets"]
    by_number = {
        int(r.data.tags["mrmp.optuna_number"]): r
        for r in client.search_runs([exp.experiment_id], "tags.`mrmp.kind` = 'trial'")
    }
    for t in study.get_trials():
        assert t.state.name == "COMPLETE"
        run_ = by_number[t.number]
        assert t.user_attrs["mlflow_run_id"] == run_.info.run_id
        assert t.value == pytest.approx(run_.data.metrics["val_acc_at_targets"])
        assert max(t.intermediate_values) == 4  # at epoch steps


@pytest.mark.slow
def test_export_then_train_reproduces_the_trial(swept, tmp_path, capsys):
    path, tmp = swept
    out = tmp_path / "best"
    assert main(["export", str(tmp / "store/tiny"), "--out", str(out), "--rates", "0.7"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selected_by"]["split"] == "validation"
    srmp = next(e for e in manifest["entries"] if e["file"] == "srmp.yaml")
    assert len(srmp["validation"]["ci95"]) == 2 and srmp["test"]["mean"] is not None
    text = (out / "srmp.yaml").read_text()
    assert text.startswith(f"# from sweep tiny, trial {srmp['optuna_number']} (MLflow run {srmp['run_id']})")
    assert srmp["command"].endswith("--objective acc@targets --targets 0.9")
    ran = tmp_path / "again"
    assert (
        main(
            [
                "train",
                str(out / "srmp.yaml"),
                "--out",
                str(ran),
                "--objective",
                "acc@targets",
                "--targets",
                "0.9",
            ]
        )
        == 0
    )
    summary = json.loads((ran / "summary.json").read_text())  # the first unit (seed 0), re-run from its file
    assert summary["objectives"]["acc@targets"]["val"] == pytest.approx(
        srmp["first_unit"]["validation"], abs=1e-6
    )
    assert summary["objectives"]["acc@targets"]["test"] == pytest.approx(srmp["first_unit"]["test"], abs=1e-6)
    assert load_config(out / "srmp.yaml").hash() == summary["config_hash"]
    assert (out / "mp@0.7.yaml").exists() and not (
        out / "srmp@0.7.yaml"
    ).exists()  # SRMP never trained at 0.7
    assert "validation acc@targets" in capsys.readouterr().out


@pytest.mark.slow
def test_report_ranks_with_intervals_and_a_flat_trials_csv(swept, tmp_path):
    path, tmp = swept
    out = tmp_path / "report"
    assert main(["report", str(tmp / "store/tiny"), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "synthetic SBU-like data generated by mrmp" in text and "never used to choose" in text
    assert "| method | trial | validation acc@targets | test |" in text and "≈ best" in text
    assert (out / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    header = (out / "trials.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["optuna_number", "run_id", "name", "method", "outcome", "epochs"]
    assert "val_acc_at_targets_ci95_lo" in header and header[-1] == "method.name"


@pytest.mark.slow
def test_the_report_refreshed_as_a_sweep_goes_reads_each_trials_curve_once(swept):
    """A completed trial's curve never changes: the refresher (the sweep's views thread) reads each curve.csv
    once, not once per refresh, and Tune's saved copy of it carries no memo."""
    import pickle
    from types import SimpleNamespace

    from mrmp.sweep.report import ReportRefresher
    from mrmp.sweep.state import read_state

    path, tmp = swept
    state = read_state(tmp / "store/tiny")
    tracker = state.tracking.create()
    reads: list[str] = []

    class Counting:
        def __getattr__(self, name):
            return getattr(tracker, name)

        def read_artifact(self, run_id, name):
            reads.append(name)
            return tracker.read_artifact(run_id, name)

    runs = SimpleNamespace(spec=SimpleNamespace(tracking=state.tracking), tracker=Counting())
    refresh = ReportRefresher(tmp / "store/tiny", state.parent_run_id, every_s=0.0)
    refresh(runs)
    first = reads.count("curve.csv")
    report = (tmp / "store/tiny/report/report.md").read_text()
    refresh(runs)
    assert first > 0 and reads.count("curve.csv") == first
    assert (tmp / "store/tiny/report/report.md").read_text() == report
    assert pickle.loads(pickle.dumps(refresh))._curves == {}


@pytest.mark.slow
def test_a_finished_sweep_resumes_to_nothing_and_grows_in_the_same_study(swept, capsys, monkeypatch):
    path, tmp = swept
    client, exp, _ = _client(tmp)
    args = ["sweep", str(path), "--set", f"sweep.storage.root={tmp / 'store'}"]
    assert main(args) == 2 and "--resume" in capsys.readouterr().err  # it exists
    before = (tmp / "store/tiny/sweep.json").read_text()
    parent = client.search_runs([exp.experiment_id], "tags.`mrmp.kind` = 'sweep'")[0]

    def no_ray(*a, **k):
        raise AssertionError("Ray was started")

    with monkeypatch.context() as m:
        m.setattr("mrmp.sweep.cluster.init_ray", no_ray)
        assert main([*args, "--resume"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (tmp / "store/tiny/sweep.json").read_text() == before
    again = client.get_run(parent.info.run_id)
    assert again.info.end_time == parent.info.end_time and again.data.metrics == parent.data.metrics
    assert main([*args, "--resume", "--set", "train.epochs=5"]) == 2
    assert "changed since its first launch" in capsys.readouterr().err
    assert main([*args, "--resume", "--set", "sweep.trials=3"]) == 2  # a grid has its own size
    capsys.readouterr()


@pytest.mark.slow
def test_a_tpe_sweep_grows_by_more_trials_in_the_same_study_and_experiment(ray_local, tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text(
        TINY.replace("name: tiny", "name: grow")
        .replace("searcher: grid", "searcher: random\n  trials: 1")
        .replace("seeds: [0, 1]", "seeds: [0]")  # fmt: skip
    )
    args = ["sweep", str(path), "--quiet", "--set", f"sweep.storage.root={tmp_path}"]
    assert main(args) == 0
    assert main([*args, "--add-trials", "2"]) == 0
    state = json.loads((tmp_path / "grow/sweep.json").read_text())
    assert [(p["name"], p["trials"], p["status"]) for p in state["parts"]] == [
        ("grow", 1, "finished"),
        ("grow-2", 2, "finished"),
    ]
    from mlflow import MlflowClient

    client = MlflowClient(state["tracking"]["uri"])
    exp = client.get_experiment_by_name("grow")
    children = client.search_runs([exp.experiment_id], "tags.`mrmp.kind` = 'trial'")
    assert sorted(int(r.data.tags["mrmp.optuna_number"]) for r in children) == [0, 1, 2]
    import optuna

    study = optuna.load_study(study_name="grow", storage=f"sqlite:///{tmp_path / 'grow/optuna.db'}")
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE"] * 3


@pytest.mark.slow
def test_an_asha_sweep_tells_optuna_its_stopped_trials_as_pruned(ray_local, tmp_path):
    path = tmp_path / "a.yaml"
    text = (
        TINY.replace("name: tiny", "name: asha")
        .replace("epochs: 4", "epochs: 6")
        .replace("seeds: [0, 1]", "seeds: [0]")
    )
    path.write_text(
        text.replace(
            "  report_every: 2", "  report_every: 2\n  scheduler: {name: asha, grace_period: 2, max_t: 2}"
        )
    )
    assert main(["sweep", str(path), "--quiet", "--set", f"sweep.storage.root={tmp_path}"]) == 0
    import optuna
    from mlflow import MlflowClient

    study = optuna.load_study(study_name="asha", storage=f"sqlite:///{tmp_path / 'asha/optuna.db'}")
    assert [t.state.name for t in study.get_trials()] == ["PRUNED", "PRUNED"]  # max_t stops both at epoch 2
    state = json.loads((tmp_path / "asha/sweep.json").read_text())
    client = MlflowClient(state["tracking"]["uri"])
    exp = client.get_experiment_by_name("asha")
    for r in client.search_runs([exp.experiment_id], "tags.`mrmp.kind` = 'trial'"):
        assert (r.info.status, r.data.tags["mrmp.outcome"], r.data.tags["mrmp.epochs"]) == (
            "FINISHED",
            "stopped_early",
            "2",
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_sweep_and_stops_on_ctrl_c(swept):
    path, tmp = swept
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
        deadline = time.time() + 120
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
    path, tmp = swept
    saved = yaml.safe_load((tmp / "store/tiny/sweep.yaml").read_text())
    assert saved["sweep"]["name"] == "tiny" and saved["space"]["method.name"]["choices"] == ["srmp", "mp"]


@pytest.mark.slow
def test_verify_reruns_a_published_selection_and_catches_one_that_moved(swept, tmp_path, capsys):
    path, tmp = swept
    out = tmp_path / "best"
    assert main(["export", str(tmp / "store/tiny"), "--out", str(out)]) == 0
    assert main(["verify", str(out / "manifest.json"), "--only", "mp", "--out", str(tmp_path / "v")]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| mp.yaml | acc@targets |"))
    checks = json.loads((tmp_path / "v/verify.json").read_text())["checks"]
    published, rerun = row.split(" | ")[2:4]
    assert published == rerun  # both columns in the same form (± half-width, or clipped [lo, hi])
    assert [c["reproduces"] for c in checks] == [True] and checks[0]["rerun"]["n"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    for e in manifest["entries"]:  # a published number that no longer holds
        e["validation"] = {
            "mean": e["validation"]["mean"] + 0.5,
            "ci95": [e["validation"]["mean"] + 0.4, 1.0],
        }
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(out / "manifest.json"), "--only", "mp"]) == 1
    assert "| NO" in capsys.readouterr().out


@pytest.mark.slow
def test_the_best_network_per_method_is_registered_and_exported_sparse(swept, tmp_path, capsys):
    path, tmp = swept
    client, exp, state = _client(tmp)
    versions = client.search_model_versions("name = 'mrmp-tiny'")
    assert sorted(v.tags["method"] for v in versions) == ["mp", "srmp"]
    srmp = next(v for v in versions if v.tags["method"] == "srmp")
    assert (
        srmp.tags["rate"] == "0.9"
        and float(srmp.tags["val_accuracy"]) >= 0
        and int(srmp.tags["nonzero_params"]) > 0
    )
    assert client.get_model_version_by_alias("mrmp-tiny", "srmp").version == srmp.version
    parent = client.search_runs([exp.experiment_id], "tags.`mrmp.kind` = 'sweep'")[0]
    history = client.get_metric_history(parent.info.run_id, "trials/val_acc_at_targets")
    assert sorted(m.step for m in history) == [
        0,
        1,
    ]  # each trial's score by Optuna number, for the chart view

    out = tmp_path / "best"
    args = ["export", str(tmp / "store/tiny"), "--out", str(out), "--networks", "--network-rates", "0.7,0.95"]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    nets = {e["method"]: e["networks"] for e in manifest["entries"]}
    assert [n["rate"] for n in nets["srmp"]] == [0.9]  # trained for 0.9: written there only
    assert [n["rate"] for n in nets["mp"]] == [0.7, 0.95]  # read at any rate: where asked
    dense_bytes = (out / "networks" / "mp-0.7.pt").stat().st_size
    assert (out / "networks" / "mp-0.95.pt").stat().st_size < dense_bytes  # the file shrinks with the rate
    capsys.readouterr()
    assert main(["predict", str(out / "networks" / "mp-0.95.pt")]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_the_close_rebuilds_the_best_networks_on_the_data_the_trials_had(ray_local, tmp_path, monkeypatch):
    """Registering each method's best network rebuilds its trainer: on the datasets the driver prepared for the
    trials, not on data generated or read again (a synthetic set regenerated per method cost ~0.1 s each)."""
    import mrmp.data
    from mrmp.sweep.driver import Sweep
    from mrmp.sweep.spec import load_sweep

    path = tmp_path / "tiny.yaml"
    doc = yaml.safe_load(TINY)
    doc["sweep"]["seeds"] = [0]
    doc["sweep"]["storage"] = {"root": str(tmp_path / "store")}
    path.write_text(yaml.safe_dump(doc))
    loads = []
    load = mrmp.data.load_dataset

    def counting(*args, **kwargs):
        loads.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(mrmp.data, "load_dataset", counting)
    said = []
    outcome = Sweep(load_sweep(path), quiet=True, log=said.append).run()
    assert outcome.exit_code == 0, said
    assert sum("registered mrmp-tiny" in line for line in said) == 2  # srmp and mp
    assert len(loads) == 1  # once, for the trials
