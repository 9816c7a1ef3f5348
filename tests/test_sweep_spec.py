"""Sweep files: every shipped file validates; errors name file, line and key; samples become run configs.

No Ray here: validation must not import Ray, Optuna or MLflow.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mrmp.cli.main import main
from mrmp.config import ConfigError, config_from_dict
from mrmp.sweep.objectives import auc, curve_metrics, mean_curve, metric_value
from mrmp.sweep.spec import load_sweep
from mrmp.train import CurvePoint

ROOT = Path(__file__).parents[1]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_shipped_sweep_file_validates(path):
    spec = load_sweep(path)
    assert spec.trials >= 1 and spec.objectives
    # every edge sample is a valid run config (load_sweep proved it; spot-check the grid/first sample)
    assignment = spec.grid_points()[0] if spec.searcher == "grid" else spec.resolve({})
    for repeat in spec.repeat_list():
        config_from_dict(spec.trial_config(assignment, repeat))


def test_shipped_files_cover_the_issue():
    names = {p.stem for p in SWEEPS}
    assert {
        "quickstart",
        "srmp_priors",
        "mrmp_seen_rates",
        "tcmp",
        "methods",
        "sbu_paper",
        "fpha_paper",
    } <= names
    folds = load_sweep(ROOT / "sweeps/sbu_paper.yaml")
    assert folds.repeats == {"data.fold": [1, 2, 3, 4, 5]}
    assert len(folds.data_configs()) == 5  # each fold prepared once, by the driver


def test_validation_imports_no_ray_optuna_mlflow():
    code = (
        "import sys; from mrmp.cli.validate import validate_file; "
        "assert validate_file('sweeps/quickstart.yaml') == []; "
        "print(sorted(m for m in ('ray', 'optuna', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


BAD = """\
sweep:
  name: bad
  searcher: tpee
  objectives: [{metric: acc@0.93}]
base:
  train: {epochs: 5}
  eval: {rates: [0.0, 0.5, 0.9]}
space:
  method.name: {type: categorical, choices: [mp, srmp]}
  method.kl_wieght: {type: float, low: 1.0e-3, high: 1.0, log: true, when: {method.name: [srmp]}}
  method.rate: {type: float, low: 0.5, high: 1.5}
  train.lr: {type: float, low: 0.1, high: 0.01}
"""


def test_errors_name_file_line_and_key_all_at_once(tmp_path, capsys):
    path = write(tmp_path, BAD)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: sweep.searcher: unknown value 'tpee' (did you mean 'tpe'?)" in err
    assert f"{path}:12: space.train.lr.low: low (0.1) must be <= high (0.01)" in err
    assert "Traceback" not in err
    # the structural errors fixed, the sampled configs are checked through the core's validation
    path.write_text(BAD.replace("tpee", "tpe").replace("low: 0.1, high: 0.01", "low: 0.01, high: 0.1"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:10: space.method.kl_wieght: unknown key (did you mean 'kl_weight'?)" in err
    assert f"{path}:11: space.method.rate: must be < 1.0, got 1.5" in err
    assert "(sampled method.name=srmp)" in err and "(sampled method.rate=1.5)" in err  # which sample failed
    assert f"{path}:4: sweep.objectives: acc@0.93: rate 0.93 is not in eval.rates" in err


def test_a_method_key_without_when_says_which_methods_take_it(tmp_path):
    path = write(
        tmp_path,
        """\
        sweep: {name: w}
        space:
          method.name: {type: categorical, choices: [mp, srmp]}
          method.prior: {type: categorical, choices: [gaussian, laplace]}
        """,
    )
    with pytest.raises(ConfigError) as e:
        load_sweep(path)
    (issue,) = e.value.issues
    assert issue.key == "space.method.prior" and issue.line == 4
    assert "add `when: {method.name: [" in issue.message and "srmp" in issue.message


def test_objective_rate_must_be_evaluated(tmp_path):
    path = write(
        tmp_path,
        """\
        sweep: {name: o, objectives: [{metric: acc@0.93}]}
        base: {eval: {rates: [0.0, 0.5, 0.9]}}
        """,
    )
    with pytest.raises(
        ConfigError, match=r"s.yaml:1: sweep.objectives: acc@0.93: rate 0.93 is not in eval.rates"
    ):
        load_sweep(path)


SPACE = """\
sweep: {name: sp, searcher: SEARCHER}
base: {train: {epochs: 3}}
space:
  method.name: {type: categorical, choices: [mp, random, srmp]}
  method.rate: {type: categorical, choices: [0.8, 0.9], when: {method.name: [mp, srmp]}}
  method.prior: {type: categorical, choices: [gaussian, laplace], when: {method.name: [srmp]}}
  method.layerwise: {type: categorical, choices: [false, true], when: {method.name: [mp, random]}}
  train.lr: {type: float, low: 0.001, high: 0.004, step: 0.001}
"""


def test_grid_respects_conditions_without_duplicates(tmp_path):
    spec = load_sweep(write(tmp_path, SPACE.replace("SEARCHER", "grid")))
    points = spec.grid_points()
    # mp: 2 rates x 2 layerwise; random: 2 layerwise; srmp: 2 rates x 2 priors; each x 4 learning rates
    assert len(points) == (4 + 2 + 4) * 4 == spec.trials
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert all("method.prior" not in p for p in points if p["method.name"] != "srmp")
    for p in points:
        config_from_dict(spec.trial_config(p))


def test_define_by_run_samples_lists_and_conditions(tmp_path):
    optuna = pytest.importorskip("optuna")
    spec = load_sweep(write(tmp_path, (ROOT / "sweeps/quickstart.yaml").read_text(), "q.yaml"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    seen_sets = set()
    for _ in range(30):
        trial = study.ask()
        spec.define_by_run(trial)
        assignment = spec.decode(trial.params)
        method = assignment["method.name"]
        assert ("method.seen_rates" in assignment) == (method == "mrmp")
        assert ("method.prior" in assignment) == (method in ("srmp", "mrmp"))
        if method == "mrmp":
            assert isinstance(assignment["method.seen_rates"], list)
            seen_sets.add(tuple(assignment["method.seen_rates"]))
        cfg = config_from_dict(spec.trial_config(assignment))
        assert cfg.method.name == method and cfg.train.threads == 1  # the trial's CPU count, recorded
        study.tell(trial, 0.5)
    assert len(seen_sets) == 2


def test_overrides_target_sweep_or_base_and_errors_point_at_set(tmp_path):
    spec = load_sweep(ROOT / "sweeps/quickstart.yaml", ["sweep.trials=3", "train.epochs=7", "sweep.name=qs2"])
    assert (spec.trials, spec.base["train"]["epochs"], spec.name) == (3, 7, "qs2")
    assert spec.fingerprint() != load_sweep(ROOT / "sweeps/quickstart.yaml").fingerprint()
    with pytest.raises(ConfigError) as e:
        load_sweep(ROOT / "sweeps/quickstart.yaml", ["train.epochs=-2"])
    assert [i.file for i in e.value.issues] == ["--set"]


def test_missing_data_exits_2_before_anything_starts(tmp_path, capsys, monkeypatch):
    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr("mrmp.sweep.runner._init_ray", no_ray)
    root = tmp_path / "store"
    code = main(["sweep", str(ROOT / "sweeps/sbu_paper.yaml"), "--set", f"sweep.storage.root={root}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "base.data" in err and "--set data.root=" in err and "Traceback" not in err
    assert not root.exists()  # no MLflow store, no Optuna study, no Tune experiment


def _pts(*rows):
    return [CurvePoint(r, a, a, r, r, 0, s) for r, a, s in rows]


def test_curve_metrics():
    c = _pts((0.0, 0.9, 1), (0.5, 0.8, 1), (0.7, 0.6, 0), (0.9, 0.4, 1))
    # trapezoids over 0.5..0.9: (0.2*0.7 + 0.2*0.5) / 0.4 = 0.6
    assert auc(c) == pytest.approx(0.6)
    m = curve_metrics(c, target_rate=0.9)
    assert m["mean_seen"] == pytest.approx(0.6) and m["mean_unseen"] == pytest.approx(0.6)
    assert m["worst_unseen"] == pytest.approx(0.6) and m["dense"] == pytest.approx(0.9)
    assert metric_value("acc@0.7", c) == pytest.approx(0.6) and metric_value("acc@target", c, 0.9) == 0.4
    assert curve_metrics(_pts((0.0, 0.9, 1)))["auc"] is None  # the dense method has no pruned rate
    both = mean_curve([c, _pts((0.0, 0.7, 1), (0.5, 0.6, 1), (0.7, 0.4, 0), (0.9, 0.2, 1))])
    assert [p.val_accuracy for p in both] == pytest.approx([0.8, 0.7, 0.5, 0.3])
