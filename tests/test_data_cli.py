"""`mrmp data summary` / `mrmp data synth`, called in-process through the CLI's own parser."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from mrmp.cli import data as cli_data
from mrmp.data import load_sbu

KEYS = {"dataset", "sequences", "classes", "joints", "persons", "frames_min", "frames_max", "splits"}


def _call(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mrmp")
    cli_data.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_summary_prints_one_json_object(capsys):
    assert _call(["data", "summary", "--dataset", "synthetic-sbu", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    summary = json.loads(out)
    assert set(summary) == KEYS
    assert summary["dataset"] == "synthetic-sbu" and summary["sequences"] == 282 and summary["classes"] == 8
    assert (summary["joints"], summary["persons"], summary["frames_min"], summary["frames_max"]) == (
        15,
        2,
        10,
        46,
    )
    assert list(summary["splits"]) == [f"fold{k}" for k in range(1, 6)]
    assert sum(s["test"] for s in summary["splits"].values()) == 282


def test_data_errors_exit_2_without_traceback(capsys, tmp_path):
    assert _call(["data", "summary", "--dataset", "sbu"]) == 2
    err = capsys.readouterr().err
    assert err == "error: data.root is required for sbu\n"
    assert _call(["data", "summary", "--dataset", "fpha", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}: no data_split_action_recognition.txt")


def test_synth_writes_atomically_refuses_non_empty_and_forces(capsys, tmp_path):
    out = tmp_path / "sbu"
    assert _call(["data", "synth", "--like", "sbu", "--out", str(out), "--seed", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["out"] == str(out) and report["sequences"] == 282
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sbu"]  # no temporary left behind
    first = load_sbu(out)
    assert _call(["data", "synth", "--like", "sbu", "--out", str(out)]) == 2
    assert "not empty (use --force" in capsys.readouterr().err
    assert _call(["data", "synth", "--like", "sbu", "--out", str(out), "--seed", "2", "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sbu"]
    second = load_sbu(out)
    assert first.ids == second.ids and not np.array_equal(first.sequences[0][:3], second.sequences[0][:3])
    assert _call(["data", "summary", "--dataset", "synthetic-sbu", "--root", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["sequences"] == 282


def test_synth_into_existing_empty_dir_and_onto_a_file(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _call(["data", "synth", "--like", "sbu", "--out", str(tmp_path / "empty")]) == 0
    assert (tmp_path / "empty" / "s01s02").is_dir()
    (tmp_path / "file").write_text("x")
    assert _call(["data", "synth", "--like", "sbu", "--out", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_help_epilogs_end_with_an_example():
    parser = argparse.ArgumentParser(prog="mrmp")
    sub = parser.add_subparsers(dest="command")
    cli_data.register(sub)
    data = sub.choices["data"]
    subs = next(a for a in data._actions if isinstance(a, argparse._SubParsersAction)).choices
    for p in (data, subs["summary"], subs["synth"]):
        lines = p.format_help().rstrip().splitlines()
        assert "example:" in p.format_help() and lines[-1].strip().startswith("mrmp data ")


def test_main_dispatches_data(capsys):
    main = pytest.importorskip("mrmp.cli.main")
    assert main.main(["data", "summary", "--dataset", "synthetic-sbu"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == KEYS
