"""SBU Kinect Interaction: line parser, tolerant tree discovery, labels and the official 5 folds."""

from __future__ import annotations

import numpy as np
import pytest

from mrmp.data import DataError, load_dataset, load_sbu, parse_sbu_skeleton
from tests.fixtures_data import SBU_FOLD_NAMES, SBU_SETS, sbu_frames, sbu_text, write_sbu_tree


def _file(tmp_path, text: str, name: str = "skeleton_pos.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_parse_real_format_ignores_frame_column(tmp_path):
    frames = sbu_frames(np.random.default_rng(1), 6)
    text = sbu_text(frames, first_frame=566)
    assert text.startswith("566,") and text.splitlines()[1].startswith("567,")
    assert all(len(line.split(",")) == 91 for line in text.splitlines())
    x = parse_sbu_skeleton(_file(tmp_path, text))
    assert x.shape == (6, 2, 15, 3) and x.dtype == np.float32
    assert np.array_equal(x, frames.astype(np.float32))  # person A = fields 1..45, person B = 46..90
    assert x[0, 1, 0, 0] == np.float32(float(text.split("\n")[0].split(",")[46]))


def test_parse_tolerates_blank_lines_crlf_and_spaces(tmp_path):
    frames = sbu_frames(np.random.default_rng(2), 3)
    lines = sbu_text(frames).splitlines()
    text = "\r\n".join(["", lines[0] + "  ", "", lines[1], lines[2], "", ""])
    assert np.array_equal(parse_sbu_skeleton(_file(tmp_path, text)), frames.astype(np.float32))


def test_denormalize_uses_the_z_column(tmp_path):
    frames = sbu_frames(np.random.default_rng(3), 2)
    x = parse_sbu_skeleton(_file(tmp_path, sbu_text(frames)), denormalize=True)
    np.testing.assert_allclose(x[..., 0], 1280 - frames[..., 0] * 2560, rtol=1e-6)
    np.testing.assert_allclose(x[..., 2], frames[..., 2] * 10000 / 7.8125, rtol=1e-6)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f[:88], "expected 91 comma-separated fields, got 88"),
        (lambda f: f + ["0.5"], "expected 91 comma-separated fields, got 92"),
        (lambda f: f[:5] + ["abc"] + f[6:], "field 6 is not a number: 'abc'"),
        (lambda f: f[:7] + ["nan"] + f[8:], "field 8 is not a finite number: 'nan'"),
        (lambda f: f[:90] + ["-inf"], "field 91 is not a finite number: '-inf'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, mutate, message):
    lines = sbu_text(sbu_frames(np.random.default_rng(4), 14)).splitlines()
    lines.insert(3, "")  # blank lines still count in line numbers
    lines[12] = ",".join(mutate(lines[12].split(",")))
    path = _file(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        parse_sbu_skeleton(path)
    assert str(err.value) == f"{path}:13: {message}"
    assert err.value.line == 13 and err.value.path == str(path)


def test_empty_file_is_an_error(tmp_path):
    path = _file(tmp_path, "\n \n")
    with pytest.raises(DataError, match="empty skeleton file") as err:
        parse_sbu_skeleton(path)
    assert str(err.value).startswith(str(path))


def _all_sets_layout(prefix_of=lambda s: "") -> dict[str, str]:
    layout = {}
    for i, s in enumerate(SBU_SETS):
        layout[f"{s}/{i % 8 + 1:02d}/001"] = prefix_of(s)
        layout[f"{s}/{(i + 3) % 8 + 1:02d}/002"] = prefix_of(s)
    return layout


@pytest.mark.parametrize("variant", ["plain", "wrapper", "doubled"])
def test_load_tree_variants_labels_and_folds(tmp_path, variant):
    prefix = {"plain": lambda s: "", "wrapper": lambda s: "Clean/", "doubled": lambda s: f"SBU/{s}/"}[variant]
    layout = _all_sets_layout(prefix)
    values = write_sbu_tree(tmp_path, layout)
    (tmp_path / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "s01s02.zip").write_bytes(b"PK")
    (tmp_path / "s01s02_noisy.zip").write_bytes(b"PK")
    ds = load_sbu(tmp_path)
    assert ds.name == "sbu" and len(ds) == 42 and ds.ids == sorted(layout)
    assert (
        ds.graph.num_nodes == 30 and ds.class_names[0] == "Approaching" and ds.class_names[7] == "Exchanging"
    )
    for seq_id, seq, label in zip(ds.ids, ds.sequences, ds.labels):
        assert label == int(seq_id.split("/")[1]) - 1
        assert seq.shape == (len(values[seq_id]), 30, 3)
        assert np.array_equal(seq[:, :15], values[seq_id][:, 0].astype(np.float32))  # person A: nodes 0-14
        assert np.array_equal(seq[:, 15:], values[seq_id][:, 1].astype(np.float32))  # person B: nodes 15-29
    sets = np.array([i.split("/")[0] for i in ds.ids])
    all_test = []
    for k in range(1, 6):
        train, test = ds.split(k)
        assert set(sets[test]) == SBU_FOLD_NAMES[k - 1]
        assert not set(sets[train]) & SBU_FOLD_NAMES[k - 1]
        assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == len(ds)
        assert train.dtype == np.int64 and test.dtype == np.int64
        all_test.extend(test.tolist())
    assert sorted(all_test) == list(range(len(ds)))  # every sequence is tested exactly once
    assert np.array_equal(ds.split("fold3")[1], ds.split(3)[1])
    for bad in (0, 6):
        with pytest.raises(DataError, match="fold must be one of 1..5"):
            ds.split(bad)


def test_load_dataset_sbu_via_name(tmp_path):
    write_sbu_tree(tmp_path, {"s01s02/01/001": "", "s03s04/02/001": ""})
    ds = load_dataset("sbu", tmp_path)
    assert ds.name == "sbu" and ds.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match="data.root is required for sbu"):
        load_dataset("sbu")


def test_missing_empty_and_inconsistent_trees(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        load_sbu(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)
    with pytest.raises(DataError, match="no SBU files found"):
        load_sbu(tmp_path)
    write_sbu_tree(tmp_path, {"s01s02/01/001": "", "s01s02/02/001": "Clean/"})
    write_sbu_tree(tmp_path, {"s01s02/01/001": "Noisy/"})
    with pytest.raises(DataError, match="s01s02/01/001 found twice"):
        load_sbu(tmp_path)


def test_unknown_set_and_empty_files_are_reported(tmp_path):
    write_sbu_tree(tmp_path / "a", {"s09s01/01/001": ""})
    with pytest.raises(DataError, match="unknown set 's09s01'"):
        load_sbu(tmp_path / "a")
    write_sbu_tree(tmp_path / "b", {"s01s02/01/001": "", "s01s02/02/001": "", "s01s03/01/001": ""})
    for seq in ("s01s02/02/001", "s01s03/01/001"):
        (tmp_path / "b" / seq / "skeleton_pos.txt").write_text("")
    with pytest.raises(DataError, match="2 files: empty skeleton file") as err:
        load_sbu(tmp_path / "b")
    assert "s01s02/02/001" in str(err.value) and "s01s03/01/001" in str(err.value)  # all of them
