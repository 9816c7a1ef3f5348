"""The CLI as a user meets it: exit codes, messages without tracebacks, outputs on disk."""

import csv
import json

import pytest

from mrmp.cli.main import COMMANDS, build_parser, main


def test_every_command_has_help_ending_with_an_example(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)
    for name, p in sub.choices.items():
        assert p.epilog and "example" in p.epilog and "mrmp " in p.epilog, name


def test_train_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--set",
            "method.name=mp",
            "--set",
            "train.epochs=3",
            "--set",
            "eval.rates=[0, 0.5, 0.9]",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "parameters per layer" in text and "fc" in text and "total" in text
    rows = list(csv.DictReader((out / "curve.csv").open()))
    assert [r["rate"] for r in rows] == ["0.000000", "0.500000", "0.900000"]
    assert json.loads((out / "summary.json").read_text())["method"] == "mp"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("train:\n  epochs: [\n", ":3: malformed YAML"),
        ("train:\n  epoch: 3\n", ":2: train.epoch: unknown key (did you mean 'epochs'?)"),
        ("method:\n  name: srmpp\n", ":2: method.name: unknown method 'srmpp'"),
        ("eval:\n  rates: [0.5, 1.5]\n", ":2: eval.rates: must be < 1.0"),
    ],
)
def test_bad_config_exits_2_with_file_line_key_and_no_traceback(tmp_path, capsys, text, fragment):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "never"
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}{fragment}" in err and "Traceback" not in err
    assert not out.exists()  # nothing half-written
    assert main(["validate", str(cfg)]) == 2


def test_validate_accepts_good_files(tmp_path, capsys):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("method:\n  name: mp\n  rate: 0.95\ntrain:\n  epochs: 5\n")
    assert main(["validate", str(cfg)]) == 0
    assert f"ok: {cfg}" in capsys.readouterr().out


def test_missing_real_dataset_root_is_a_clean_error(tmp_path, capsys):
    code = main(
        [
            "train",
            "--set",
            "data.name=sbu",
            "--set",
            f"data.root={tmp_path / 'nope'}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and str(tmp_path / "nope") in err
