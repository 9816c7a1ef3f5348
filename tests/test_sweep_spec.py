"""Sweep files: every shipped file validates; errors name file, line and key, all at once; objectives compare
like with like (refused where a method cannot be scored); samples become run configs and units; scores carry
intervals. No Ray here: validation must not import Ray, Optuna or MLflow.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mrmp.cli.main import main
from mrmp.stats import estimate, t975
from mrmp.sweep.objectives import Objective, auc, merge_units, metric_value, score_trial, undefined
from mrmp.sweep.spec import load_sweep
from mrmp.train import CurvePoint
from mrmp.validation import ConfigError

ROOT = Path(__file__).parents[1]
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def issues_of(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_sweep(path, overrides)
    return [str(i) for i in e.value.issues]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_shipped_sweep_file_validates_and_compares_like_with_like(path):
    spec = load_sweep(path)
    assert spec.trials >= 1 and spec.objectives
    for o in spec.objectives:  # nothing a method cannot be scored on: checked over every sample edge
        assert not o.grid or spec.targets is None
    assignment = spec.grid_points()[0] if spec.searcher == "grid" else spec.resolve({})
    for unit, cfg in spec.configs(assignment):
        assert unit.target is None or cfg.method.rate == unit.target


def test_shipped_sweeps_use_repeats_and_paper_sweeps_their_folds():
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
    for path in SWEEPS:
        assert len(load_sweep(path).repeat_list()) >= 2 or path.stem == "fpha_paper", path.stem
    folds = load_sweep(ROOT / "sweeps/sbu_paper.yaml")
    assert folds.repeats == {"data.fold": [1, 2, 3, 4, 5]}
    assert len(folds.data_configs()) == 5  # each fold prepared once, by the driver
    quick = load_sweep(ROOT / "sweeps/quickstart.yaml")
    assert quick.targets == [0.9] and quick.objectives == [Objective("acc@targets")]


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
  objectives: [acc@targets]
  target_rates: [0.9]
  scheduler: {name: asha, grace_perod: 5}
base:
  train: {epochs: 5}
  eval: {rates: [0.0, 0.5, 0.9]}
space:
  method.name: {type: categorical, choices: [mp, srmp]}
  method.kl_wieght: {type: float, low: 1.0e-3, high: 1.0, log: true, when: {method.name: [srmp]}}
  model.heads: {type: int, low: 1, high: 99}
  train.lr: {type: float, low: 0.1, high: 0.01}
"""


def test_errors_name_file_line_and_key_all_at_once(tmp_path, capsys):
    path = write(tmp_path, BAD)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: sweep.searcher: unknown value 'tpee' (did you mean 'tpe'?)" in err
    assert f"{path}:6: sweep.scheduler.grace_perod: unknown key (did you mean 'grace_period'?)" in err
    assert f"{path}:14: space.train.lr.low: low (0.1) must be <= high (0.01)" in err
    assert "Traceback" not in err
    # the structural errors fixed, the sampled configs are checked through the core's validation
    fixed = BAD.replace("tpee", "tpe").replace("low: 0.1, high: 0.01", "low: 0.01, high: 0.1")
    path.write_text(fixed.replace("grace_perod", "grace_period"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{path}:12: space.method.kl_wieght: unknown key (did you mean 'kl_weight'?) (sampled method.name=srmp)"
        in err
    )
    assert f"{path}:13: space.model.heads: must be <= 64, got 99 (sampled model.heads=99)" in err


def test_a_method_key_without_when_says_which_methods_take_it(tmp_path):
    path = write(
        tmp_path,
        """\
        sweep: {name: w, objectives: [acc@targets], target_rates: [0.9]}
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


LIKE = """\
sweep: {name: like, objectives: [OBJECTIVE], TARGETS}
space:
  method.name: {type: categorical, choices: [mrmp, METHOD]}
"""


@pytest.mark.parametrize(
    ("objective", "targets", "method", "refusal"),
    [
        (
            "auc",
            "",
            "srmp",
            "auc is undefined for srmp: auc reads the whole rate grid, but it is trained for rate 0.9",
        ),
        ("mean_unseen", "", "tcmp", "mean_unseen is undefined for tcmp"),
        ("acc@0.95", "", "srmp", "acc@0.95 is undefined for srmp: it is trained for rate 0.9 only"),
        (
            "acc@targets",
            "",
            "mp",
            "acc@targets is undefined for mrmp: acc@targets needs sweep.target_rates",
        ),
        (
            "acc@targets",
            "target_rates: [0.9]",
            "dense",
            "acc@targets is undefined for dense: it is trained for rate 0",
        ),
        ("auc", "target_rates: [0.9]", "mp", None),  # MP without fine-tuning is read at any rate
        ("acc@0.9", "", "srmp", None),  # its own rate
        ("acc@0.95", "", "mp", None),
        ("acc@targets", "target_rates: [0.7, 0.95]", "srmp", None),  # trains one network per target
    ],
)
def test_objectives_are_refused_where_a_method_cannot_be_scored(
    tmp_path, objective, targets, method, refusal
):
    text = (
        LIKE.replace("OBJECTIVE", objective)
        .replace("METHOD", method)
        .replace(", TARGETS", f", {targets}" if targets else "")
    )
    path = write(tmp_path, text)
    if refusal is None:
        load_sweep(path)
        return
    issues = issues_of(path)
    assert any(refusal in i for i in issues), issues
    assert all(":1: sweep.objectives:" in i for i in issues)  # the line to fix


def test_single_rate_methods_train_at_each_target_and_others_are_read_there(tmp_path):
    spec = load_sweep(
        write(
            tmp_path,
            """\
            sweep: {name: t, objectives: [acc@targets], target_rates: [0.7, 0.925], seeds: [0, 1]}
            space:
              method.name: {type: categorical, choices: [srmp, mrmp, mp]}
              method.finetune_epochs: {type: categorical, choices: [0, 3], when: {method.name: [mp]}}
            """,
        )
    )
    srmp = spec.configs({"method.name": "srmp"})
    assert [(u.repeat["train.seed"], u.target, c.method.rate) for u, c in srmp] == [
        (0, 0.7, 0.7), (0, 0.925, 0.925), (1, 0.7, 0.7), (1, 0.925, 0.925)]  # fmt: skip
    mrmp = spec.configs({"method.name": "mrmp"})
    assert [u.target for u, _ in mrmp] == [None, None]
    assert 0.925 in mrmp[0][1].eval.rates and 0.7 in mrmp[0][1].eval.rates  # read where it is compared
    assert len(spec.configs({"method.name": "mp", "method.finetune_epochs": 0})) == 2  # read at any rate
    assert len(spec.configs({"method.name": "mp", "method.finetune_epochs": 3})) == 4  # fine-tuned per target
    assert spec.trained_at({"method.name": "srmp"}) == (0.7, 0.925)
    assert spec.trained_at({"method.name": "mrmp"}) is None


def test_searching_the_rate_that_targets_set_is_refused(tmp_path):
    path = write(
        tmp_path,
        """\
        sweep: {name: r, objectives: [acc@targets], target_rates: [0.9]}
        space:
          method.name: {type: categorical, choices: [srmp]}
          method.rate: {type: float, low: 0.5, high: 0.9}
        """,
    )
    assert any("space.method.rate: sweep.target_rates sets method.rate" in i for i in issues_of(path))


SPACE = """\
sweep: {name: sp, searcher: SEARCHER, objectives: [acc@targets], target_rates: [0.9]}
base: {train: {epochs: 3}}
space:
  method.name: {type: categorical, choices: [mp, random, srmp]}
  method.prior: {type: categorical, choices: [gaussian, laplace], when: {method.name: [srmp]}}
  method.layerwise: {type: categorical, choices: [false, true], when: {method.name: [mp, random]}}
  train.lr: {type: float, low: 0.001, high: 0.004, step: 0.001}
"""


def test_grid_respects_conditions_without_duplicates(tmp_path):
    spec = load_sweep(write(tmp_path, SPACE.replace("SEARCHER", "grid")))
    points = spec.grid_points()
    # mp: 2 layerwise; random: 2 layerwise; srmp: 2 priors; each x 4 learning rates
    assert len(points) == (2 + 2 + 2) * 4 == spec.trials
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert all("method.prior" not in p for p in points if p["method.name"] != "srmp")
    for p in points:
        for _, cfg in spec.configs(p):
            assert cfg.train.lr in (0.001, 0.002, 0.003, 0.004)


def test_a_condition_on_two_keys_is_checked_with_both_values_it_needs(tmp_path):
    # prior_init applies to MRMP with the uniform prior; the prior itself applies to SRMP and MRMP. The
    # validator builds a sample where prior_init is active (method.name mrmp, not the prior's first method)
    path = write(
        tmp_path,
        """\
        sweep: {name: w, objectives: [acc@targets], target_rates: [0.9]}
        base: {train: {epochs: 3}}
        space:
          method.name: {type: categorical, choices: [srmp, mrmp]}
          method.prior: {type: categorical, choices: [gaussian, uniform], when: {method.name: [srmp, mrmp]}}
          method.prior_init: {type: categorical, choices: [false], when: {method.name: [mrmp], method.prior: [uniform]}}
        """,
    )
    spec = load_sweep(path)  # refused as "never active" when the prior's first method stood in for mrmp
    active = spec.resolve({"method.name": "mrmp", "method.prior": "uniform", "method.prior_init": False})
    assert active["method.prior_init"] is False
    assert "method.prior_init" not in spec.resolve({"method.name": "srmp", "method.prior": "uniform"})
    assert "method.prior_init" not in spec.resolve({"method.name": "mrmp", "method.prior": "gaussian"})


def test_define_by_run_samples_lists_and_conditions(tmp_path):
    optuna = pytest.importorskip("optuna")
    spec = load_sweep(
        write(
            tmp_path,
            """\
            sweep: {name: d, objectives: [mean_unseen]}
            space:
              method.name: {type: categorical, choices: [mrmp, mp]}
              method.seen_rates: {type: categorical, choices: [[0.5, 0.9], [0.5, 0.7, 0.9]], when: {method.name: [mrmp]}}
            """,
        )
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    seen_sets = set()
    for _ in range(30):
        trial = study.ask()
        labels = spec.define_by_run(trial)
        assert labels == trial.params  # what Optuna stores: a list choice as its JSON text
        assignment = spec.decode(labels)
        assert ("method.seen_rates" in assignment) == (assignment["method.name"] == "mrmp")
        if "method.seen_rates" in assignment:
            assert isinstance(assignment["method.seen_rates"], list)
            seen_sets.add(tuple(assignment["method.seen_rates"]))
            assert spec.label(assignment) == labels
        ((_, cfg),) = spec.configs(assignment)
        assert cfg.train.threads == 1  # the trial's CPU count, recorded
        study.tell(trial, 0.5)
    assert len(seen_sets) == 2


def test_overrides_target_sweep_or_base_and_never_a_searched_key(tmp_path):
    spec = load_sweep(ROOT / "sweeps/quickstart.yaml", ["sweep.trials=3", "train.epochs=7", "sweep.name=qs2"])
    assert (spec.trials, spec.base["train"]["epochs"], spec.name) == (3, 7, "qs2")
    with pytest.raises(ConfigError) as e:
        load_sweep(ROOT / "sweeps/quickstart.yaml", ["train.epochs=-2"])
    assert [i.file for i in e.value.issues] == ["--set"]
    issues = issues_of(ROOT / "sweeps/quickstart.yaml", ["train.lr=abc"])  # searched: --set cannot fix it
    assert issues == [
        "--set: train.lr: is searched (space.train.lr): --set cannot fix it; remove it from `space` first"
    ]


def test_the_fingerprint_lets_a_sweep_grow_but_not_change(tmp_path):
    base = load_sweep(ROOT / "sweeps/quickstart.yaml").fingerprint()
    for grown in (["sweep.trials=30"], ["sweep.concurrency=4", "sweep.max_failures=3"]):
        assert load_sweep(ROOT / "sweeps/quickstart.yaml", grown).fingerprint() == base
    for changed in (["train.epochs=7"], ["sweep.seed=3"], ["sweep.target_rates=[0.95]"]):
        assert load_sweep(ROOT / "sweeps/quickstart.yaml", changed).fingerprint() != base


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, capsys):
    for text in ("- a\n- b\n", "42\n"):
        path = write(tmp_path, text)
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert "a run config is a mapping" in err and "Traceback" not in err
        kind = "list" if text.startswith("-") else "int"
        assert issues_of(path)[0].endswith(
            f"a sweep file is a mapping with `sweep`, `base` and `space`, got {kind}"
        )


def test_missing_data_exits_2_before_anything_starts(tmp_path, capsys, monkeypatch):
    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr("mrmp.sweep.cluster.init_ray", no_ray)
    root = tmp_path / "store"
    code = main(["sweep", str(ROOT / "sweeps/sbu_paper.yaml"), "--set", f"sweep.storage.root={root}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "base.data" in err and "--set data.root=" in err and "Traceback" not in err
    assert not (root / "sbu_paper" / "mlflow.db").exists() and not (root / "sbu_paper" / "tune").exists()


# --- scores --------------------------------------------------------------------------------------------------
def _pts(*rows):
    """(rate, val, test, seen) rows."""
    return [CurvePoint(r, v, t, r, r, 0, s) for r, v, t, s in rows]


def test_curve_metrics_read_validation_and_test_apart():
    c = _pts((0.0, 0.9, 0.8, 1), (0.5, 0.8, 0.7, 1), (0.7, 0.6, 0.5, 0), (0.9, 0.4, 0.3, 1))
    assert auc(c) == pytest.approx((0.2 * 0.7 + 0.2 * 0.5) / 0.4)  # trapezoids over 0.5..0.9
    assert auc(c, "test") == pytest.approx((0.2 * 0.6 + 0.2 * 0.4) / 0.4)
    assert metric_value("mean_seen", c, None) == pytest.approx(0.6)  # rate 0 is not a pruned rate
    assert metric_value("mean_unseen", c, None) == pytest.approx(0.6)
    assert metric_value("worst_unseen", c, None, "test") == pytest.approx(0.5)
    assert metric_value("dense", c, None) == 0.9
    assert metric_value("acc@targets", c, [0.5, 0.9]) == pytest.approx(0.6)
    assert metric_value("acc@0.7", c, None, "test") == 0.5
    assert metric_value("acc@0.8", c, None) is None  # not a rate of the curve: no value, never a guess
    assert auc(_pts((0.0, 0.9, 0.9, 1))) is None  # the dense method has no pruned rate


def test_a_trial_scores_the_mean_over_repeats_with_a_t_interval():
    merged = merge_units([_pts((0.7, 0.5, 0.4, 1)), _pts((0.9, 0.3, 0.2, 1))])  # one network per target
    assert [p.rate for p in merged] == [0.7, 0.9]
    repeats = [
        _pts((0.7, 0.5, 0.4, 1), (0.9, 0.3, 0.2, 1)),
        _pts((0.7, 0.7, 0.6, 1), (0.9, 0.5, 0.4, 1)),
        _pts((0.7, 0.6, 0.5, 1), (0.9, 0.4, 0.3, 1)),
    ]
    scores = score_trial(repeats, ["acc@targets"], [0.7, 0.9])
    val = scores.metrics["val_acc_at_targets"]
    assert val.mean == pytest.approx(0.5) and val.n == 3 and val.std == pytest.approx(0.1)
    half = t975(2) * 0.1 / math.sqrt(3)
    assert (val.lo, val.hi) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert scores.metrics["test_acc_at_targets"].mean == pytest.approx(0.4)
    flat = scores.flat({"val_acc_at_targets"})
    assert (
        flat["val_acc_at_targets_ci95_hi"] == pytest.approx(0.5 + half)
        and "test_acc_at_targets_std" not in flat
    )
    rate = scores.curve[1]
    assert (
        rate["rate"] == 0.9
        and rate["val"].mean == pytest.approx(0.4)
        and rate["test"].std == pytest.approx(0.1)
    )
    one = estimate([0.7])
    assert one.std is None and one.lo is None and one.format() == "70.0"  # no spread from one value, never 0
    assert estimate([0.5, 0.7]).overlaps(estimate([0.65, 0.66])) and not estimate([0.1, 0.11]).overlaps(one)


def test_an_interval_past_what_an_accuracy_can_be_is_shown_clipped():
    """`41.3 ± 121.6` (one seed of three at chance) says nothing readable: the interval is shown within 0–100 %."""
    from mrmp.stats import interval_text

    wide = estimate([0.125, 0.92, 0.195])
    assert wide.lo < 0 < 1 < wide.hi and wide.format() == "41.3 [0.0, 100.0]"
    assert interval_text(0.95, 0.85, 1.05) == "95.0 [85.0, 100.0]"
    assert estimate([0.8, 0.84, 0.82]).format() == "82.0 ± 5.0" and interval_text(0.5, None, None) == "50.0"


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 29, 30, 45, 100, 500):
        assert t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-3)


def test_undefined_names_the_reason():
    assert undefined(Objective("auc"), None, None) is None
    assert "needs sweep.target_rates" in undefined(Objective("acc@targets"), None, None)
    assert undefined(Objective("acc@targets"), (0.9, 0.95), [0.9, 0.95]) is None
