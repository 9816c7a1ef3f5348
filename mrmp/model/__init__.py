"""The attention GCN, its presets, and the unit-graph topology tools shared by every pruning method."""

from .gcn import PRESETS, AttentionGCN, PrunableLayer, build_model, parameter_table
from .topology import (
    Integrity,
    consistent_count,
    consistent_counts,
    consistent_masks,
    hard_step,
    integrity,
    propagate,
)

__all__ = [
    "PRESETS",
    "AttentionGCN",
    "Integrity",
    "PrunableLayer",
    "build_model",
    "consistent_count",
    "consistent_counts",
    "consistent_masks",
    "hard_step",
    "integrity",
    "parameter_table",
    "propagate",
]
