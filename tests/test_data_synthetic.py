"""Synthetic SBU-like / FPHA-like data: protocol structure, determinism, difficulty, exact on-disk round trip."""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import pytest

from mrmp.data import (
    DataError,
    chunk_features,
    load_dataset,
    load_fpha,
    load_sbu,
    make_synthetic,
    write_synthetic,
)
from mrmp.data.fpha import FPHA_CLASSES
from tests.fixtures_data import SBU_FOLD_NAMES, SBU_SETS


@functools.cache
def _ds(like: str, seed: int = 0, difficulty: float | None = None):
    return make_synthetic(like, seed=seed, difficulty=difficulty)


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.int32)


def _assert_identical(a, b) -> None:
    assert a.ids == b.ids and a.class_names == b.class_names
    assert np.array_equal(a.labels, b.labels) and a.labels.dtype == b.labels.dtype == np.int64
    assert len(a.sequences) == len(b.sequences)
    for x, y in zip(a.sequences, b.sequences):
        assert x.dtype == y.dtype == np.float32 and x.shape == y.shape
        assert np.array_equal(_bits(x), _bits(y))  # bit for bit
    assert list(a.splits) == list(b.splits)
    for k in a.splits:
        assert all(np.array_equal(u, v) for u, v in zip(a.splits[k], b.splits[k]))


def test_sbu_like_structure():
    ds = _ds("sbu")
    assert ds.name == "synthetic-sbu" and len(ds) == 282 and ds.num_classes == 8 and ds.graph.num_nodes == 30
    lengths = ds.lengths
    assert lengths.min() == 10 and lengths.max() == 46
    sets = [i.split("/")[0] for i in ds.ids]
    assert set(sets) == set(SBU_SETS) and ds.ids == sorted(ds.ids)
    per_cell = Counter(zip(sets, ds.labels.tolist()))
    assert len(per_cell) == 21 * 8 and set(per_cell.values()) == {
        1,
        2,
    }  # every set has every class once or twice
    for k in range(1, 6):
        train, test = ds.split(k)
        assert {sets[i] for i in test} == SBU_FOLD_NAMES[k - 1] and len(train) + len(test) == 282
    x = np.concatenate([s.reshape(-1, 3) for s in ds.sequences])
    assert 0.0 < x[:, 0].min() and x[:, 0].max() < 1.1 and 1.2 < np.median(x[:, 2]) < 2.1  # normalised units
    torso_a = np.array([s[0, 2, 0] for s in ds.sequences])
    torso_b = np.array([s[0, 17, 0] for s in ds.sequences])
    assert np.all(torso_a < torso_b)  # person A is on the left (x about 0.3 vs 0.7)


def test_fpha_like_structure():
    ds = _ds("fpha")
    assert ds.name == "synthetic-fpha" and len(ds) == 1175 and ds.graph.num_nodes == 21
    assert ds.class_names == list(FPHA_CLASSES) and ds.num_classes == 45
    assert ds.lengths.min() == 50 and ds.lengths.max() == 150
    train, test = ds.split(1)
    assert len(train) == 600 and len(test) == 575 and np.intersect1d(train, test).size == 0
    for rel, label in zip(ds.ids, ds.labels):
        subject, action, seq = rel.split("/")
        assert (
            subject in {f"Subject_{k}" for k in range(1, 7)}
            and action == FPHA_CLASSES[label]
            and seq.isdigit()
        )
    assert np.bincount(ds.labels[train], minlength=45).min() >= 12  # every class is trained on
    # millimetres, and kinematic: a bone keeps (almost) its length through a sequence (up to sensor noise)
    s = ds.sequences[0]
    bone = np.linalg.norm(s[:, 6] - s[:, 7], axis=-1)
    assert 20 < bone.mean() < 40 and bone.std() < 10
    assert 200 < np.median(np.concatenate([q[..., 2].ravel() for q in ds.sequences[:50]])) < 700


@pytest.mark.parametrize("like", ["sbu", "fpha"])
def test_deterministic_for_a_seed_and_different_across_seeds(like):
    a, b, c = _ds(like, 0), make_synthetic(like, seed=0), _ds(like, 1)
    _assert_identical(a, b)
    assert a.ids == c.ids  # the protocol structure is fixed ...
    assert not np.array_equal(a.sequences[0][:5], c.sequences[0][:5])  # ... the motions are not
    assert sum(x.shape != y.shape for x, y in zip(a.sequences, c.sequences)) > len(a) // 2


def _nearest_mean_accuracy(ds) -> float:
    x = chunk_features(ds).reshape(len(ds), -1)
    train, test = ds.split(1)
    means = np.stack([x[train][ds.labels[train] == c].mean(0) for c in range(ds.num_classes)])
    pred = np.argmin(((x[test][:, None] - means[None]) ** 2).sum(-1), axis=1)
    return float((pred == ds.labels[test]).mean())


def test_difficulty_knob_makes_classes_harder_to_separate():
    easy, default, hard = (_nearest_mean_accuracy(_ds("sbu", 0, d)) for d in (0.0, None, 1.0))
    assert easy > default > hard > 1 / 8  # learnable at every setting, cleaner when easy
    assert easy - hard > 0.2
    with pytest.raises(ValueError, match="difficulty"):
        make_synthetic("sbu", difficulty=1.5)
    with pytest.raises(ValueError, match="like"):
        make_synthetic("ntu")


def test_sbu_round_trip_through_the_real_loader_is_exact(tmp_path):
    ds = write_synthetic("sbu", tmp_path)
    _assert_identical(ds, _ds("sbu"))
    first = (tmp_path / "s01s02/01/001/skeleton_pos.txt").read_text().splitlines()
    assert first[0].startswith("566,") and first[1].startswith("567,")
    assert all(len(line.split(",")) == 91 for line in first)
    assert "e" not in "".join(first)  # plain decimals, no exponent
    assert (
        max(len(f.lstrip("0.").replace(".", "")) for f in first[0].split(",")[1:]) <= 5
    )  # 5 significant digits
    back = load_sbu(tmp_path)
    _assert_identical(ds, back)
    via_name = load_dataset("synthetic-sbu", tmp_path)
    assert via_name.name == "synthetic-sbu"
    _assert_identical(ds, via_name)


def test_fpha_round_trip_through_the_real_loader_is_exact(tmp_path):
    ds = write_synthetic("fpha", tmp_path)
    split = (tmp_path / "data_split_action_recognition.txt").read_text().splitlines()
    assert split[0] == "Training 600" and split[601] == "Test 575" and len(split) == 1177
    assert split[1].startswith("Subject_1/open_juice_bottle/")
    assert (
        (tmp_path / "action_object_info.txt").read_text().splitlines()[1].startswith("1 open_juice_bottle ")
    )
    lines = (tmp_path / "Hand_pose_annotation_v1" / ds.ids[0] / "skeleton.txt").read_text().splitlines()
    assert [line.split(" ")[0] for line in lines[:3]] == ["0", "1", "2"]
    assert all(len(line.split(" ")) == 64 for line in lines)
    back = load_fpha(tmp_path, name="synthetic-fpha")
    _assert_identical(ds, back)


def test_unknown_dataset_name_suggests():
    with pytest.raises(DataError, match="did you mean 'synthetic-sbu'"):
        load_dataset("synthetic_sbu")
