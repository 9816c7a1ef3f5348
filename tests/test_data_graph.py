"""Skeleton graphs: bones, node layout and adjacency."""

from __future__ import annotations

import numpy as np
import pytest

from mrmp.data import FPHA_GRAPH, SBU_GRAPH, SkeletonGraph


def _components(adj: np.ndarray) -> int:
    seen, count = set(), 0
    for start in range(len(adj)):
        if start in seen:
            continue
        count += 1
        stack = [start]
        while stack:
            v = stack.pop()
            if v not in seen:
                seen.add(v)
                stack.extend(np.flatnonzero(adj[v]).tolist())
    return count


def test_sbu_graph_is_two_15_joint_trees_person_major():
    a = SBU_GRAPH.adjacency()
    assert SBU_GRAPH.num_nodes == 30 and a.shape == (30, 30) and a.dtype == np.float32
    assert set(np.unique(a)) == {0.0, 1.0} and np.array_equal(a, a.T)
    assert np.all(np.diag(a) == 1)
    assert len(SBU_GRAPH.edges) == 14
    off = a - np.eye(30, dtype=np.float32)
    assert off.sum() == 2 * 14 * 2  # 14 bones per person, both directions, two persons
    assert not off[:15, 15:].any()  # no inter-person edges
    assert np.array_equal(off[:15, :15], off[15:, 15:])  # same bones, node = person * 15 + joint
    assert off[0, 1] and off[1, 2] and off[2, 9] and off[15 + 13, 15 + 14]  # head-neck, neck-torso, torso-hip
    assert _components(off[:15, :15]) == 1  # a tree: 15 joints, 14 edges, connected
    assert SBU_GRAPH.joint_names[2] == "TORSO" and SBU_GRAPH.center_joint == 2
    assert SBU_GRAPH.node_names[15] == "B:HEAD"


def test_fpha_graph_follows_raw_joint_order():
    off = FPHA_GRAPH.adjacency(self_loops=False)
    assert off.shape == (21, 21) and off.sum() == 40 and not np.diag(off).any()
    assert _components(off) == 1
    # thumb chain wrist-TMCP-TPIP-TDIP-TTIP, index chain wrist-IMCP-IPIP-IDIP-ITIP in raw file order
    for a, b in [(0, 1), (1, 6), (6, 7), (7, 8), (0, 2), (2, 9), (9, 10), (10, 11), (5, 18), (19, 20)]:
        assert off[a, b] == 1
    assert off[1, 2] == 0 and off[6, 11] == 0  # not DSTA-Net's reordered list
    assert FPHA_GRAPH.center_joint == 0 and FPHA_GRAPH.joint_names[0] == "Wrist"


def test_bad_graphs_are_rejected():
    with pytest.raises(ValueError):
        SkeletonGraph("x", ("a", "b"), ((0, 2),))
    with pytest.raises(ValueError):
        SkeletonGraph("x", ("a", "b"), ((0, 1),), center_joint=5)
