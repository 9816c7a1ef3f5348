"""Skeleton graphs: joint names, bones, persons, and the node adjacency the GCN mixes with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SkeletonGraph:
    """One skeleton type.

    ``joint_names`` and ``edges`` (0-based bones) describe ONE person; a sample holds ``persons`` copies,
    stored person-major: node ``person * joints + joint``. ``center_joint`` is the per-person joint used as
    the origin when features are centred (SBU: torso of person A; FPHA: wrist).
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    persons: int = 1
    center_joint: int = 0

    def __post_init__(self) -> None:
        j = len(self.joint_names)
        if j == 0 or self.persons < 1:
            raise ValueError(f"graph {self.name!r}: needs at least one joint and one person")
        for a, b in self.edges:
            if not (0 <= a < j and 0 <= b < j) or a == b:
                raise ValueError(f"graph {self.name!r}: bad edge ({a}, {b}) for {j} joints")
        if not 0 <= self.center_joint < j:
            raise ValueError(f"graph {self.name!r}: center_joint {self.center_joint} out of range")

    @property
    def joints(self) -> int:
        """Joints per person."""
        return len(self.joint_names)

    @property
    def num_nodes(self) -> int:
        """Graph nodes: persons * joints."""
        return self.persons * self.joints

    @property
    def node_names(self) -> list[str]:
        """Readable node names (``A:HEAD``... for several persons, the joint name otherwise)."""
        if self.persons == 1:
            return list(self.joint_names)
        return [f"{chr(ord('A') + p)}:{n}" for p in range(self.persons) for n in self.joint_names]

    def node_edges(self) -> np.ndarray:
        """All bones as node pairs (E * persons, 2), replicated per person, no inter-person edges."""
        e = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        return np.concatenate([e + p * self.joints for p in range(self.persons)], axis=0)

    def adjacency(self, self_loops: bool = True) -> np.ndarray:
        """Symmetric 0/1 float32 (V, V) bone adjacency, with the identity added when ``self_loops``."""
        v = self.num_nodes
        a = np.zeros((v, v), dtype=np.float32)
        e = self.node_edges()
        a[e[:, 0], e[:, 1]] = 1.0
        a[e[:, 1], e[:, 0]] = 1.0
        if self_loops:
            a[np.arange(v), np.arange(v)] = 1.0
        return a

    def reference_nodes(self) -> np.ndarray:
        """Node index of ``center_joint`` for each person (person 0 first)."""
        return np.arange(self.persons) * self.joints + self.center_joint


SBU_JOINTS = (
    "HEAD",
    "NECK",
    "TORSO",
    "LEFT_SHOULDER",
    "LEFT_ELBOW",
    "LEFT_HAND",
    "RIGHT_SHOULDER",
    "RIGHT_ELBOW",
    "RIGHT_HAND",
    "LEFT_HIP",
    "LEFT_KNEE",
    "LEFT_FOOT",
    "RIGHT_HIP",
    "RIGHT_KNEE",
    "RIGHT_FOOT",
)
# The 14-edge kinematic tree (datasets.md 1.5): head-neck-torso, neck-shoulders-elbows-hands, torso-hips-knees-feet.
SBU_EDGES = (
    (0, 1), (1, 2), (1, 3), (3, 4), (4, 5), (1, 6), (6, 7), (7, 8),
    (2, 9), (9, 10), (10, 11), (2, 12), (12, 13), (13, 14),
)  # fmt: skip

FPHA_JOINTS = (
    "Wrist",
    "TMCP", "IMCP", "MMCP", "RMCP", "PMCP",
    "TPIP", "TDIP", "TTIP",
    "IPIP", "IDIP", "ITIP",
    "MPIP", "MDIP", "MTIP",
    "RPIP", "RDIP", "RTIP",
    "PPIP", "PDIP", "PTIP",
)  # fmt: skip
# Raw file order (datasets.md 2.5): wrist -> MCP -> PIP -> DIP -> TIP for each finger.
FPHA_EDGES = (
    (0, 1), (1, 6), (6, 7), (7, 8),
    (0, 2), (2, 9), (9, 10), (10, 11),
    (0, 3), (3, 12), (12, 13), (13, 14),
    (0, 4), (4, 15), (15, 16), (16, 17),
    (0, 5), (5, 18), (18, 19), (19, 20),
)  # fmt: skip

SBU_GRAPH = SkeletonGraph("sbu", SBU_JOINTS, SBU_EDGES, persons=2, center_joint=2)
FPHA_GRAPH = SkeletonGraph("fpha", FPHA_JOINTS, FPHA_EDGES, persons=1, center_joint=0)
