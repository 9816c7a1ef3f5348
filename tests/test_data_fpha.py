"""FPHA: skeleton.txt parser, split file reader, loader (both annotation folder spellings)."""

from __future__ import annotations

import numpy as np
import pytest

from mrmp.data import DataError, load_dataset, load_fpha, parse_fpha_skeleton, read_fpha_split
from tests.fixtures_data import FPHA_ENTRIES, fpha_frames, fpha_text, split_text, write_fpha_tree


def _file(tmp_path, text: str, name: str = "skeleton.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_parse_real_format(tmp_path):
    frames = fpha_frames(np.random.default_rng(0), 4)
    text = fpha_text(frames)
    assert text.startswith("0 ") and all(len(line.split(" ")) == 64 for line in text.splitlines())
    x = parse_fpha_skeleton(_file(tmp_path, text.replace("\n", " \r\n") + "\n"))
    assert x.shape == (4, 21, 3) and x.dtype == np.float32
    assert np.array_equal(x, frames.astype(np.float32))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f[:60], "expected 64 whitespace-separated fields, got 60"),
        (lambda f: f[:3] + ["1.2.3"] + f[4:], "field 4 is not a number: '1.2.3'"),
        (lambda f: f[:10] + ["NaN"] + f[11:], "field 11 is not a finite number: 'NaN'"),
        (lambda f: ["7"] + f[1:], "frame column should count 0, 1, 2, ...: expected 2, got 7"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, mutate, message):
    lines = fpha_text(fpha_frames(np.random.default_rng(1), 5)).splitlines()
    lines[2] = " ".join(mutate(lines[2].split(" ")))
    path = _file(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        parse_fpha_skeleton(path)
    assert str(err.value) == f"{path}:3: {message}"


def test_empty_skeleton_file(tmp_path):
    path = _file(tmp_path, "")
    with pytest.raises(DataError, match="empty skeleton file") as err:
        parse_fpha_skeleton(path)
    assert str(err.value) == f"{path}: empty skeleton file"


def test_read_split_sections_crlf_blank_lines(tmp_path):
    path = _file(tmp_path, split_text(FPHA_ENTRIES["train"], FPHA_ENTRIES["test"]), "split.txt")
    assert b"\r\n" in path.read_bytes()
    split = read_fpha_split(path)
    assert split == {"train": FPHA_ENTRIES["train"], "test": FPHA_ENTRIES["test"]}


def test_split_header_count_mismatch_names_header_line(tmp_path):
    text = split_text(FPHA_ENTRIES["train"], FPHA_ENTRIES["test"]).replace("Test 3", "Test 4")
    path = _file(tmp_path, text, "split.txt")
    with pytest.raises(DataError) as err:
        read_fpha_split(path)
    assert str(err.value) == f"{path}:7: header 'Test 4' but the section has 3 entries"


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("Subject_1/prick/1 5\n", 1, "entry before the first"),
        ("Training 1\nSubject_1/prick/1\n", 2, "expected '<Subject_k/action/seq> <label>'"),
        ("Training 1\nSubject_1/prick/1 five\n", 2, "expected '<Subject_k/action/seq> <label>'"),
        ("Training x\n", 1, "bad section header"),
        ("Training 0\nTest 0\nTraining 0\n", 3, "second 'Training' section"),
    ],
)
def test_split_syntax_errors(tmp_path, text, line, message):
    path = _file(tmp_path, text, "split.txt")
    with pytest.raises(DataError, match=message) as err:
        read_fpha_split(path)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_split_without_test_section(tmp_path):
    path = _file(tmp_path, "Training 1\nSubject_1/prick/1 5\n", "split.txt")
    with pytest.raises(DataError, match="no 'Test <count>' section header"):
        read_fpha_split(path)


@pytest.mark.parametrize(
    "annotation, doubled",
    [
        ("Hand_pose_annotation_v1", False),
        ("Hand_pose_annotation_v1_1", False),
        ("Hand_pose_annotation_v1", True),
    ],
)
def test_load_release(tmp_path, annotation, doubled):
    values = write_fpha_tree(tmp_path, annotation, doubled)
    ds = load_fpha(tmp_path)
    assert ds.name == "fpha" and len(ds) == 7 and ds.ids == sorted(values)
    assert ds.graph.num_nodes == 21
    for rel, seq in zip(ds.ids, ds.sequences):
        assert np.array_equal(seq, values[rel].astype(np.float32))
    # names from the split paths' action folders ordered by label; label 3 only in action_object_info.txt
    assert len(ds.class_names) == 45
    assert ds.class_names[:4] == ["open_juice_bottle", "close_juice_bottle", "class_2", "open_peanut_butter"]
    assert ds.class_names[12] == "pour_milk" and ds.class_names[44] == "high_five"
    train, test = ds.split(1)
    assert [ds.ids[i] for i in train] == sorted(r for r, _ in FPHA_ENTRIES["train"])
    assert [ds.ids[i] for i in test] == sorted(r for r, _ in FPHA_ENTRIES["test"])
    assert ds.labels[test].tolist() == [0, 1, 44]
    assert list(ds.splits) == ["official"]
    with pytest.raises(DataError, match="only the official split, so fold must be 1"):
        ds.split(2)
    assert load_dataset("fpha", tmp_path).name == "fpha"


def test_empty_and_missing_skeletons_are_all_reported(tmp_path):
    write_fpha_tree(tmp_path)
    ann = tmp_path / "Hand_pose_annotation_v1"
    (ann / "Subject_1/open_juice_bottle/1/skeleton.txt").write_text("")
    (ann / "Subject_4/high_five/1/skeleton.txt").write_text("\n")
    with pytest.raises(DataError) as err:
        load_fpha(tmp_path)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "data_split_action_recognition.txt"))
    assert "2 files: empty skeleton file" in msg
    assert "Subject_1/open_juice_bottle/1" in msg and "Subject_4/high_five/1" in msg
    (ann / "Subject_1/open_juice_bottle/1/skeleton.txt").unlink()
    with pytest.raises(DataError, match="listed in data_split_action_recognition.txt but missing"):
        load_fpha(tmp_path)


def test_inconsistent_labels_and_missing_pieces(tmp_path):
    with pytest.raises(DataError, match="no data_split_action_recognition.txt"):
        load_fpha(tmp_path)
    write_fpha_tree(tmp_path)
    split = tmp_path / "data_split_action_recognition.txt"
    split.write_text(split.read_text().replace("Subject_4/high_five/1 44", "Subject_4/high_five/1 43"))
    with pytest.raises(DataError, match="'high_five' has label 43 here but 44 at line 5") as err:
        load_fpha(tmp_path)
    assert str(err.value).startswith(f"{split}:10: ")
    (tmp_path / "Hand_pose_annotation_v1").rename(tmp_path / "other")
    with pytest.raises(DataError, match="no Hand_pose_annotation_v1 or Hand_pose_annotation_v1_1 folder"):
        load_fpha(tmp_path)
    with pytest.raises(DataError, match="data.root is required for fpha"):
        load_dataset("fpha", None)
