"""The attention GCN, its presets, and the unit-graph topology tools shared by every pruning method."""

from .gcn import PRESETS, AttentionGCN, PrunableLayer, build_model, parameter_table
from .topology import (
    Integrity,
    UnitGates,
    consistent_count,
    consistent_counts,
    consistent_masks,
    hard_step,
    integrity,
    kept_edges,
    propagate,
    unit_gates,
)

__all__ = [
    "PRESETS",
    "AttentionGCN",
    "Integrity",
    "UnitGates",
    "PrunableLayer",
    "build_model",
    "consistent_count",
    "consistent_counts",
    "consistent_masks",
    "hard_step",
    "integrity",
    "kept_edges",
    "parameter_table",
    "propagate",
    "unit_gates",
]
