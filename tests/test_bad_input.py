"""Bad input is refused before anything starts (issue #6, docs/reliability.md).

Every case, through the real CLI (`mrmp train`, `mrmp validate`, `mrmp sweep`, `mrmp ui`, in-process): exit code
2, a message naming the file and the key or line, no traceback, and nothing started: no output folder, nothing in
the sweep folder but the driver's lock file (no sweep.json, mlflow.db, optuna.db or tune/), and Ray never started
(`mrmp.sweep.cluster.init_ray` would fail the test), except where the check needs the cluster: a request no node
can place is refused after joining it, before any run, study or Tune experiment exists.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrmp.cli.main import main
from tests.fixtures_data import FPHA_ENTRIES, split_text, write_fpha_tree, write_sbu_tree

SBU_LAYOUT = {"s01s02/01/001": "", "s01s03/02/001": "", "s02s01/03/002": ""}
SKELETON = "s01s03/02/001/skeleton_pos.txt"


def _sbu(tmp: Path, edit: Callable[[Path], None] | None = None) -> Path:
    root = tmp / "SBU"
    write_sbu_tree(root, SBU_LAYOUT)
    if edit:
        edit(root / SKELETON)
    return root


def _replace_field(path: Path, line: int, field: int, value: str) -> None:
    lines = path.read_text().splitlines()
    parts = lines[line - 1].split(",")
    parts[field - 1] = value
    lines[line - 1] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")


def _drop_field(path: Path, line: int) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")


def _fpha_bad_counts(tmp: Path) -> Path:
    root = tmp / "FPHA"
    write_fpha_tree(root)
    text = split_text(FPHA_ENTRIES["train"], FPHA_ENTRIES["test"]).replace("Training 4", "Training 5")
    (root / "data_split_action_recognition.txt").write_bytes(text.encode())
    return root


# --- run configs: `mrmp train FILE` and `mrmp validate FILE` -------------------------------------------------
@dataclass
class RunCase:
    id: str
    text: str  # the run config (a file)
    expect: list[str]  # in stderr, `{f}` = the file's path
    data: Callable[[Path], Path] | None = None  # a dataset root, set as data.root (train only)


RUN_CASES = [
    RunCase("malformed-yaml", "train: {epochs: 5\neval: x\n", ["{f}:2: malformed YAML"]),
    RunCase(
        "unknown-key", "train:\n  epocs: 5\n", ["{f}:2: train.epocs: unknown key (did you mean 'epochs'?)"]
    ),
    RunCase("unknown-section", "trian: {}\n", ["{f}:1: trian: unknown section (did you mean 'train'?)"]),
    RunCase("wrong-type", "train:\n  epochs: five\n", ["{f}:2: train.epochs: expected int, got 'five'"]),
    RunCase("wrong-type-bool", "train:\n  adaptive_lr: 3\n", ["{f}:2: train.adaptive_lr: expected bool"]),
    RunCase(
        "eval-rate-ge-1", "eval:\n  rates: [0.0, 0.5, 1.2]\n", ["{f}:2: eval.rates: must be < 1.0, got 1.2"]
    ),
    RunCase(
        "eval-rate-negative", "eval:\n  rates: [-0.1, 0.5]\n", ["{f}:2: eval.rates: must be >= 0.0, got -0.1"]
    ),
    RunCase(
        "eval-rates-unsorted", "eval:\n  rates: [0.0, 0.9, 0.5]\n", ["{f}:2: eval.rates: must be strictly"]
    ),
    RunCase("method-rate-ge-1", "method:\n  name: mp\n  rate: 1.0\n", ["{f}:3: method.rate: must be < 1.0"]),
    RunCase(
        "seen-rates-empty",
        "method:\n  name: mrmp\n  seen_rates: []\n",
        ["{f}:3: method.seen_rates: must list at least one rate"],
    ),
    RunCase(
        "seen-rates-unsorted",
        "method:\n  name: mrmp\n  seen_rates: [0.9, 0.5]\n",
        ["{f}:3: method.seen_rates: must be strictly increasing"],
    ),
    RunCase(
        "seen-rates-out-of-range",
        "method:\n  name: mrmp\n  seen_rates: [0.5, 1.5]\n",
        ["{f}:3: method.seen_rates: must be < 1.0, got 1.5"],
    ),
    RunCase(
        "seen-rate-not-evaluated",
        "method:\n  name: mrmp\n  seen_rates: [0.5, 0.93]\neval:\n  rates: [0.0, 0.5, 0.9]\n",
        ["{f}:3: method.seen_rates: 0.93 not in eval.rates"],
    ),
    RunCase(
        "unknown-method",
        "method:\n  name: srmpp\n",
        ["{f}:2: method.name: unknown method 'srmpp' (did you mean 'srmp'?)"],
    ),
    RunCase(
        "unknown-prior",
        "method:\n  name: srmp\n  prior: gausian\n",
        ["{f}:3: method.prior: unknown value 'gausian' (did you mean 'gaussian'?)"],
    ),
    RunCase(
        "unknown-dataset",
        "data:\n  name: sbuu\n",
        ["{f}:2: data.name: unknown value 'sbuu' (did you mean 'sbu'?)"],
    ),
    RunCase(
        "real-data-without-root", "data:\n  name: sbu\n", ["{f}:1: data.root: is required for data.name=sbu"]
    ),
]
DATA_CASES = [  # the config is fine; the dataset is not (only training reads it)
    RunCase("missing-data-root", "", ["{root}: data root does not exist"], lambda t: t / "nowhere"),
    RunCase(
        "empty-data-root", "", ["{root}: no SBU files found"], lambda t: (t / "empty").mkdir() or t / "empty"
    ),
    RunCase(
        "skeleton-field-count",
        "",
        ["{root}/" + SKELETON + ":3: expected 91 comma-separated fields, got 90"],
        lambda t: _sbu(t, lambda p: _drop_field(p, 3)),
    ),
    RunCase(
        "skeleton-not-a-number",
        "",
        ["{root}/" + SKELETON + ":2: field 7 is not a number: 'abc'"],
        lambda t: _sbu(t, lambda p: _replace_field(p, 2, 7, "abc")),
    ),
    RunCase(
        "skeleton-nan",
        "",
        ["{root}/" + SKELETON + ":4: field 12 is not a finite number: 'nan'"],
        lambda t: _sbu(t, lambda p: _replace_field(p, 4, 12, "nan")),
    ),
    RunCase(
        "skeleton-empty-file",
        "",
        ["{root}/" + SKELETON + ": empty skeleton file"],
        lambda t: _sbu(t, lambda p: p.write_text("\n\n")),
    ),
    RunCase(
        "split-counts-mismatch",
        "",
        ["{root}/data_split_action_recognition.txt:1: header 'Training 5' but the section has 4 entries"],
        _fpha_bad_counts,
    ),
]


def _check(code: int, err: str, out: str, expect: list[str], **names: object) -> None:
    assert code == 2, (code, err)
    for e in expect:
        assert e.format(**names) in err, err
    assert "Traceback" not in err + out


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.id)
def test_bad_run_config_is_refused_by_train_and_validate(case, tmp_path, capsys):
    f = tmp_path / "run.yaml"
    f.write_text(case.text)
    out_dir = tmp_path / "out"
    _check(main(["train", str(f), "--out", str(out_dir)]), *_streams(capsys), case.expect, f=f)
    assert not out_dir.exists()
    _check(main(["validate", str(f)]), *_streams(capsys), case.expect, f=f)


@pytest.mark.parametrize("case", DATA_CASES, ids=lambda c: c.id)
def test_bad_dataset_is_refused_by_train(case, tmp_path, capsys):
    root = case.data(tmp_path)
    name = "fpha" if "split" in case.id else "sbu"
    out_dir = tmp_path / "out"
    args = ["train", "--set", f"data.name={name}", "--set", f"data.root={root}", "--out", str(out_dir)]
    _check(main(args), *_streams(capsys), case.expect, root=root)
    assert not out_dir.exists()


def _streams(capsys) -> tuple[str, str]:
    got = capsys.readouterr()
    return got.err, got.out


# --- sweep files: `mrmp sweep FILE` (and `mrmp validate FILE`) ----------------------------------------------
GOOD_SWEEP = """\
sweep:
  name: bad
  trials: 2
  searcher: tpe
  resources: {cpu: 1, gpu: 0}
  objectives: [acc@0.9]
base:
  train: {epochs: 2}
  eval: {rates: [0.0, 0.5, 0.9]}
space:
  method.name: {type: categorical, choices: [mp, srmp]}
  train.lr: {type: float, low: 0.001, high: 0.01, log: true}
"""
BEFORE_LR = "  train.lr:"  # a space entry inserted here is line 12


@dataclass
class SweepCase:
    id: str
    edit: tuple[str, str] | None  # replace in GOOD_SWEEP
    expect: list[str]
    sets: tuple[str, ...] = ()  # --set values
    validate: bool = True  # also refused by `mrmp validate` (False: needs the machine or the data)
    data: Callable[[Path], Path] | None = None


SWEEP_CASES = [
    SweepCase("malformed-yaml", ("  trials: 2\n", "  trials: [2\n"), ["{f}:4: malformed YAML"]),
    SweepCase(
        "unknown-sweep-key",
        ("  trials: 2", "  trails: 2"),
        ["{f}:3: sweep.trails: unknown key (did you mean 'trials'?)"],
    ),
    SweepCase("unknown-section", ("base:", "bsae:"), ["{f}:7: bsae: unknown section (did you mean 'base'?)"]),
    SweepCase("wrong-type", ("  trials: 2", "  trials: many"), ["{f}:3: sweep.trials: expected int or null"]),
    SweepCase(
        "unknown-searcher",
        ("searcher: tpe", "searcher: tpee"),
        ["{f}:4: sweep.searcher: unknown value 'tpee' (did you mean 'tpe'?)"],
    ),
    SweepCase(
        "unknown-scheduler",
        ("  trials: 2", "  trials: 2\n  scheduler: {name: hyperband}"),
        ["{f}:4: sweep.scheduler.name: unknown value 'hyperband'; choose one of: asha, none"],
    ),
    SweepCase(
        "unknown-objective",
        ("objectives: [acc@0.9]", "objectives: [aucc]"),
        ["{f}:6: sweep.objectives: unknown metric 'aucc' (did you mean 'auc'?)"],
    ),
    SweepCase(
        "objective-undefined-for-a-method",
        ("objectives: [acc@0.9]", "objectives: [auc]"),
        ["{f}:6: sweep.objectives: auc is undefined for srmp: auc reads the whole rate grid"],
    ),
    SweepCase(
        "objective-at-an-untrained-rate",
        ("objectives: [acc@0.9]", "objectives: [acc@0.5]"),
        ["{f}:6: sweep.objectives: acc@0.5 is undefined for srmp: it is trained for rate 0.9 only"],
    ),
    SweepCase(
        "objective-needs-target-rates",
        ("objectives: [acc@0.9]", "objectives: [acc@targets]"),
        ["{f}:6: sweep.objectives: acc@targets is undefined for mp: acc@targets needs sweep.target_rates"],
    ),
    SweepCase(
        "target-rate-out-of-range",
        ("objectives: [acc@0.9]", "objectives: [acc@targets]\n  target_rates: [0.5, 1.2]"),
        ["{f}:7: sweep.target_rates: must be < 1.0, got 1.2"],
    ),
    SweepCase(
        "unknown-retry-kind",
        ("  trials: 2", "  trials: 2\n  retry_on: [nan]"),
        ["{f}:4: sweep.retry_on: unknown value 'nan'; choose one of: error, nonfinite"],
    ),
    SweepCase(
        "space-unknown-method",
        ("choices: [mp, srmp]", "choices: [mp, srmpp]"),
        ["{f}:11: space.method.name: unknown method 'srmpp' (did you mean 'srmp'?)"],
    ),
    SweepCase(
        "space-unknown-prior",
        (
            BEFORE_LR,
            "  method.prior: {type: categorical, choices: [gausian], when: {method.name: [srmp]}}\n"
            + BEFORE_LR,
        ),
        ["{f}:12: space.method.prior: unknown value 'gausian' (did you mean 'gaussian'?)"],
    ),
    SweepCase(
        "space-key-a-method-does-not-take",
        (BEFORE_LR, "  method.prior: {type: categorical, choices: [laplace]}\n" + BEFORE_LR),
        ["{f}:12: space.method.prior: unknown key", "only mrmp, srmp take it"],
    ),
    SweepCase(
        "space-rate-out-of-range",
        (
            BEFORE_LR,
            "  method.rate: {type: float, low: 0.5, high: 1.5, when: {method.name: [mp]}}\n" + BEFORE_LR,
        ),
        ["{f}:12: space.method.rate: must be < 1.0, got 1.5 (sampled method.name=mp, method.rate=1.5)"],
    ),
    SweepCase(
        "space-unknown-key",
        (BEFORE_LR, "  train.lrr: {type: float, low: 0.1, high: 0.2}\n" + BEFORE_LR),
        ["{f}:12: space.train.lrr: unknown key (did you mean 'lr'?)"],
    ),
    SweepCase(
        "space-low-above-high",
        (BEFORE_LR, "  train.weight_decay: {type: float, low: 0.1, high: 0.01}\n" + BEFORE_LR),
        ["{f}:12: space.train.weight_decay.low: low (0.1) must be <= high (0.01)"],
    ),
    SweepCase(
        "seen-rates-not-evaluated",
        (
            "  method.name: {type: categorical, choices: [mp, srmp]}",
            "  method.name: {type: categorical, choices: [mrmp]}\n"
            "  method.seen_rates: {type: categorical, choices: [[0.5, 0.9], [0.5, 0.7]]}",
        ),
        ["{f}:12: space.method.seen_rates: 0.7 not in eval.rates: every seen rate must be evaluated"],
    ),
    SweepCase(
        "seen-rates-unsorted",
        (
            "  method.name: {type: categorical, choices: [mp, srmp]}",
            "  method.name: {type: categorical, choices: [mrmp]}\n"
            "  method.seen_rates: {type: categorical, choices: [[0.5, 0.9], [0.9, 0.5]]}",
        ),
        [
            "{f}:12: space.method.seen_rates: must be strictly increasing (sampled method.seen_rates=[0.9, 0.5])"
        ],
    ),
    SweepCase(
        "gpu-share-unplaceable",
        ("gpu: 0}", "gpu: 1.5}"),
        ["{f}:5: sweep.resources.gpu: 1.5: a fraction of one GPU"],
    ),
    SweepCase(
        "storage-root-uri",
        None,
        ["--set: sweep.storage.root: 's3://bucket/sweeps': the sweep's own files"],
        sets=("sweep.storage.root=s3://bucket/sweeps",),
    ),
    SweepCase(
        "storage-tune-bare-bucket",
        ("  trials: 2", "  trials: 2\n  storage: {tune: 's3://bucket'}"),
        ["{f}:4: sweep.storage.tune: 's3://bucket': name a folder below the bucket"],
    ),
    SweepCase(
        "set-unknown-key",
        None,
        ["--set: base.train.epoch: unknown key (did you mean 'epochs'?)"],
        sets=("train.epoch=3",),
    ),
    SweepCase(
        "set-a-searched-key",
        None,
        ["--set: train.lr: is searched (space.train.lr): --set cannot fix it"],
        sets=("train.lr=0.1",),
    ),
    SweepCase(
        "more-gpus-than-the-machine",
        None,
        ["{f}: sweep.resources.gpu: 64 GPU per trial, but no node of this machine has that many"],
        sets=("sweep.resources.gpu=64",),
        validate=False,
    ),
    SweepCase(
        "more-cpus-than-the-machine",
        None,
        ["{f}: sweep.resources.cpu: 512 CPU per trial, but no node of this machine has that many"],
        sets=("sweep.resources.cpu=512",),
        validate=False,
    ),
    SweepCase(
        "missing-data-root",
        None,
        ["{f}: base.data: {root}: data root does not exist", "--set data.root=/path/to/data"],
        sets=("data.name=sbu",),
        validate=False,
        data=lambda t: t / "nowhere",
    ),
    SweepCase(
        "corrupt-skeleton",
        None,
        ["{f}: base.data: {root}/" + SKELETON + ":3: expected 91 comma-separated fields, got 90"],
        sets=("data.name=sbu",),
        validate=False,
        data=lambda t: _sbu(t, lambda p: _drop_field(p, 3)),
    ),
]


def _left_in(store: Path) -> set[str]:
    """What a refused sweep left under its storage root: at most the driver's lock file, once it was taken."""
    return {p.name for p in store.rglob("*") if p.is_file()} if store.exists() else set()


@pytest.fixture
def no_ray(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr("mrmp.sweep.cluster.init_ray", refuse)


@pytest.mark.parametrize("case", SWEEP_CASES, ids=lambda c: c.id)
def test_bad_sweep_is_refused_before_anything_starts(case, tmp_path, capsys, no_ray):
    text = GOOD_SWEEP if case.edit is None else GOOD_SWEEP.replace(*case.edit)
    assert text != GOOD_SWEEP or case.edit is None
    f = tmp_path / "sweep.yaml"
    f.write_text(text)
    store = tmp_path / "store"
    root = case.data(tmp_path) if case.data else None
    sets = [f"sweep.storage.root={store}", *case.sets, *([f"data.root={root}"] if root else [])]
    args = [a for s in sets for a in ("--set", s)]
    _check(main(["sweep", str(f), "--quiet", *args]), *_streams(capsys), case.expect, f=f, root=root)
    assert _left_in(store) <= {".driver.lock"}  # no sweep.json, mlflow.db, optuna.db, tune/
    if case.validate and not case.sets:
        _check(main(["validate", str(f)]), *_streams(capsys), case.expect, f=f)


def test_the_good_sweep_is_good(tmp_path, capsys):
    f = tmp_path / "sweep.yaml"
    f.write_text(GOOD_SWEEP)
    assert main(["validate", str(f)]) == 0


def test_a_top_level_list_is_refused(tmp_path, capsys, no_ray):
    f = tmp_path / "list.yaml"
    f.write_text("- sweep: {}\n- base: {}\n")
    _check(main(["validate", str(f)]), *_streams(capsys), ["{f}: a run config is a mapping"], f=f)
    store = tmp_path / "store"
    code = main(["sweep", str(f), "--quiet", "--set", f"sweep.storage.root={store}"])
    _check(code, *_streams(capsys), ["{f}: a sweep file is a mapping with `sweep`, `base` and `space`"], f=f)
    assert not store.exists()


def test_add_trials_below_zero_is_refused(tmp_path, capsys, no_ray):
    f = tmp_path / "sweep.yaml"
    f.write_text(GOOD_SWEEP)
    store = tmp_path / "store"
    code = main(["sweep", str(f), "--quiet", "--add-trials", "-1", "--set", f"sweep.storage.root={store}"])
    _check(code, *_streams(capsys), ["--add-trials: expected a positive number, got -1"])
    assert not store.exists()


def test_ui_on_a_busy_port_is_refused(tmp_path, capsys, monkeypatch):
    """Something already listens on the port: exit 2 saying so, and no MLflow UI process is started (it used to
    print the address of the other server and exit 0)."""
    import socket
    import subprocess

    from mrmp.sweep.state import SweepState

    sweep_dir = tmp_path / "store" / "ui-busy"
    sweep_dir.mkdir(parents=True)
    tracking = {"backend": "mlflow", "uri": f"sqlite:///{sweep_dir / 'mlflow.db'}", "experiment": "ui-busy"}
    SweepState(sweep_dir, {"name": "ui-busy", "parent_run_id": "x", "tracking": tracking}).save()

    def no_server(*args, **kwargs):
        raise AssertionError(f"a server was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_server)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["ui", str(sweep_dir), "--port", str(port)])
    err, out = _streams(capsys)
    _check(code, err, out, [f"--port: 127.0.0.1:{port} is in use (another UI?); pick a free one"])
    assert "http://" not in out


@pytest.mark.slow
def test_a_request_the_cluster_cannot_place_is_refused_after_joining_before_any_run(
    ray_local, tmp_path, capsys
):
    """`--address`: checked against the cluster's nodes once joined (here the test's 2-CPU Ray), before any
    tracking run, study or Tune experiment exists; a relative storage root is warned about."""
    f = tmp_path / "sweep.yaml"
    f.write_text(GOOD_SWEEP)
    store = tmp_path / "store"
    args = ["sweep", str(f), "--quiet", "--address", "auto", "--set", "sweep.resources.gpu=64"]
    code = main([*args, "--set", f"sweep.storage.root={store}"])
    err, out = _streams(capsys)
    _check(
        code,
        err,
        out,
        ["{f}: sweep.resources.gpu: 64 GPU per trial, but no node of the Ray cluster at auto"],
        f=f,
    )
    assert "(nodes: 2 CPU, " in err
    # joined, then refused before any run, study or Tune experiment: the store was opened, and holds no run
    assert _left_in(store) <= {".driver.lock", "mlflow.db"} and not (store / "bad" / "tune").exists()
    if (store / "bad" / "mlflow.db").exists():
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{store / 'bad' / 'mlflow.db'}")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert "warning" not in err  # an absolute root
    code = main([*args, "--set", "sweep.storage.root=store-relative", "--dry-run"])
    err, _ = _streams(capsys)
    assert code == 0 and "warning: sweep.storage.root 'store-relative' is relative" in err
    assert "ray job submit" in err and not Path("store-relative").exists()


def test_sweep_error_lines_point_at_the_file(tmp_path, capsys):
    """The lines above are 1-based lines of the sweep file itself."""
    f = tmp_path / "sweep.yaml"
    f.write_text(textwrap.dedent(GOOD_SWEEP.replace("searcher: tpe", "searcher: tpee")))
    assert main(["validate", str(f)]) == 2
    assert f"{f}:4: sweep.searcher" in capsys.readouterr().err
    assert f.read_text().splitlines()[3].strip() == "searcher: tpee"
