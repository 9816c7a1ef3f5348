"""Temporal-chunk node features."""

from __future__ import annotations

import numpy as np
import pytest

from mrmp.data import FPHA_GRAPH, SBU_GRAPH, SkeletonDataset, SkeletonGraph, chunk_features

LINE = SkeletonGraph("line", ("a", "b"), ((0, 1),), persons=1, center_joint=1)


def _seq(t: int, v: int = 2) -> np.ndarray:
    return np.arange(t * v * 3, dtype=np.float32).reshape(t, v, 3)


def test_chunk_means_by_time_stamp_hand_computed():
    # T=5, M=4: frame t goes to chunk floor(4t/5) -> chunks {0,1}, {2}, {3}, {4}
    f = chunk_features([_seq(5)], chunks=4, center=False)
    assert f.shape == (1, 2, 12) and f.dtype == np.float32
    node0 = [
        3,
        4,
        5,
        12,
        13,
        14,
        18,
        19,
        20,
        24,
        25,
        26,
    ]  # mean of frames 0,1 = (0+6)/2, ... then frames 2, 3, 4
    assert f[0, 0].tolist() == node0
    assert f[0, 1].tolist() == [v + 3 for v in node0]


def test_chunks_of_equal_length_and_chunk_major_order():
    s = _seq(8)
    f = chunk_features([s], chunks=4, center=False)[0]
    expect = s.reshape(4, 2, 2, 3).mean(axis=1).transpose(1, 0, 2).reshape(2, 12)  # x1 y1 z1 x2 ...
    np.testing.assert_allclose(f, expect)


def test_short_sequences_interpolate_at_chunk_centres():
    s = _seq(2)  # frames 0 and 1; centres at t = -0.25, 0.25, 0.75, 1.25 -> clipped to [0, 1]
    f = chunk_features([s], chunks=4, center=False)[0, 0]
    assert f.tolist() == [0, 1, 2, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 6, 7, 8]
    one = chunk_features([_seq(1)], chunks=3, center=False)[0]
    assert np.array_equal(one, np.tile(_seq(1)[0], (1, 3)))  # a single frame is repeated


def test_center_subtracts_first_frame_reference_joint():
    s = _seq(4)
    f = chunk_features([s], chunks=2, center=True, graph=LINE)[0]
    raw = chunk_features([s], chunks=2, center=False)[0]
    np.testing.assert_allclose(f, raw - np.tile(s[0, 1], 2))
    assert np.allclose(f[1, :3], s[:2, 1].mean(0) - s[0, 1])


def test_dataset_input_uses_its_graph_reference_and_scale():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(t, 30, 3)).astype(np.float32) for t in (7, 12)]
    ds = SkeletonDataset("x", seqs, np.array([0, 1]), ["a", "b"], SBU_GRAPH)
    f = chunk_features(ds)
    assert f.shape == (2, 30, 12)
    assert np.allclose(f[0, 2, :3], seqs[0][:2, 2].mean(0) - seqs[0][0, 2], atol=1e-6)  # torso of person A
    e = SBU_GRAPH.node_edges()
    bone = np.mean(
        np.concatenate([np.linalg.norm(s[:, e[:, 0]] - s[:, e[:, 1]], axis=-1).ravel() for s in seqs])
    )
    np.testing.assert_allclose(chunk_features(ds, scale=True), f / bone, rtol=1e-5)
    np.testing.assert_allclose(chunk_features(ds, scale=2.0), f / 2.0, rtol=1e-6)


def test_plain_sequences_need_a_graph_to_centre():
    with pytest.raises(ValueError, match="graph"):
        chunk_features([_seq(3)])
    assert chunk_features([_seq(3, 21)], graph=FPHA_GRAPH).shape == (1, 21, 12)
