"""Configs are data: validated into typed objects, every problem reported with file, line and key."""

import pytest

from mrmp.config import ConfigError, load_config, parse_overrides
from mrmp.config.schema import default_rates


def write(tmp_path, text, name="run.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_run_without_a_file():
    cfg = load_config()
    assert cfg.data.name == "synthetic-sbu" and cfg.method.name == "dense" and cfg.model.preset == "small"
    assert cfg.eval.rates == default_rates()
    assert cfg.eval.rates[0] == 0.0 and cfg.eval.rates[1] == 0.5 and cfg.eval.rates[-1] == 0.99
    assert len(cfg.eval.rates) == 51


def test_file_and_overrides_resolve_to_typed_values(tmp_path):
    p = write(tmp_path, "method:\n  name: mp\n  rate: 0.8\ntrain:\n  epochs: 5\n")
    cfg = load_config(p, ["train.lr=0.05", "method.finetune_epochs=2", "eval.rates=[0.5, 0.9]"])
    assert cfg.method.name == "mp" and cfg.method.rate == 0.8 and cfg.method.params.finetune_epochs == 2
    assert cfg.train.epochs == 5 and cfg.train.lr == 0.05 and cfg.eval.rates == [0.5, 0.9]
    assert isinstance(cfg.train.lr, float)


def test_every_problem_is_reported_with_line_and_suggestion(tmp_path):
    p = write(
        tmp_path,
        "data:\n  name: synthetic-sbu\n  fodl: 2\ntrain:\n  epochs: ten\n  lr: -1\nmethod:\n  name: magnitude\n",
    )
    with pytest.raises(ConfigError) as e:
        load_config(p)
    text = [str(i) for i in e.value.issues]
    assert f"{p}:3: data.fodl: unknown key (did you mean 'fold'?)" in text
    assert any(t.startswith(f"{p}:5: train.epochs: expected int") for t in text)
    assert any(t.startswith(f"{p}:6: train.lr: must be > 0") for t in text)
    assert any(t.startswith(f"{p}:8: method.name: unknown method 'magnitude'") for t in text)
    assert len(text) == 4


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = write(tmp_path, "train:\n  epochs: 3\n  lr: [0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    (issue,) = e.value.issues
    assert issue.file == str(p) and issue.line is not None and "malformed YAML" in issue.message


@pytest.mark.parametrize(
    "override, key, fragment",
    [
        ("eval.rates=[0.5, 1.0]", "eval.rates", "must be < 1.0"),
        ("eval.rates=[0.9, 0.5]", "eval.rates", "strictly increasing"),
        ("method.rate=0.5", "method.rate", "unknown key"),  # dense has no rate
        ("data.name=sbu", "data.root", "required"),
        ("train.batch_size=true", "train.batch_size", "expected int"),
    ],
)
def test_bad_values_are_refused(override, key, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert any(i.key == key and fragment in i.message for i in e.value.issues), e.value.issues


def test_override_syntax_errors():
    _, issues = parse_overrides(["epochs=3", "train.lr=0.1"])
    assert [i.key for i in issues] == ["epochs=3"]


def test_round_trip_through_yaml(tmp_path):
    from mrmp.config import dump_config

    cfg = load_config(None, ["method.name=mp", "method.layerwise=true", "train.seed=3"])
    dump_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg and again.hash() == cfg.hash()


def test_errors_survive_pickling():
    import pickle

    from mrmp.config import Issue
    from mrmp.data import DataError

    e = ConfigError([Issue("a.yaml", "train.lr", "must be > 0", 3)])
    again = pickle.loads(pickle.dumps(e))
    assert again.issues == e.issues and str(again) == str(e)
    d = pickle.loads(pickle.dumps(DataError("bad line", "x/skeleton.txt", 4)))
    assert str(d) == "x/skeleton.txt:4: bad line" and d.line == 4


def test_yaml_scientific_floats_without_a_sign_are_floats(tmp_path):
    """YAML 1.1 reads `1.0e10` (no sign in the exponent) as a string; a float field takes it as the number."""
    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 1.0e10, weight_decay: 5e-4}\n")
    cfg = load_config(path)
    assert cfg.train.lr == 1.0e10 and cfg.train.weight_decay == 5e-4
    path.write_text("train: {lr: fast}\n")
    with pytest.raises(ConfigError, match="train.lr: expected float, got 'fast'"):
        load_config(path)
