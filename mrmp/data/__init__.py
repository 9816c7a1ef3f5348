"""Skeleton data: graphs, the dataset container, SBU / FPHA loaders, the synthetic default data, features.

Imports numpy only (never Ray, Optuna or MLflow). Every loader error is a ``DataError`` naming the file.
"""

from __future__ import annotations

from os import PathLike

from .dataset import DatasetInfo, SkeletonDataset, dataset_summary
from .errors import DataError
from .fpha import load_fpha, parse_fpha_skeleton, read_fpha_split
from .graph import FPHA_GRAPH, SBU_GRAPH, SkeletonGraph
from .registry import DATASETS, DatasetEntry, dataset_names, get_dataset
from .sbu import load_sbu, parse_sbu_skeleton
from .synthetic import make_synthetic, write_synthetic
from .transforms import chunk_features, mean_bone_length

DATASET_NAMES = tuple(DATASETS)

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetEntry",
    "FPHA_GRAPH",
    "SBU_GRAPH",
    "DataError",
    "DatasetInfo",
    "SkeletonDataset",
    "SkeletonGraph",
    "chunk_features",
    "dataset_names",
    "dataset_summary",
    "get_dataset",
    "load_dataset",
    "load_fpha",
    "load_sbu",
    "make_synthetic",
    "mean_bone_length",
    "parse_fpha_skeleton",
    "parse_sbu_skeleton",
    "read_fpha_split",
    "write_synthetic",
]


def load_dataset(name: str, root: str | PathLike[str] | None = None, seed: int = 0) -> SkeletonDataset:
    """Load a dataset by config name (see `registry.DATASETS`).

    ``synthetic-sbu`` / ``synthetic-fpha``: generated in memory from ``seed`` or, when ``root`` is given, read
    from a directory written by ``mrmp data synth`` through the real loader. ``sbu`` / ``fpha``: the real
    data under ``root`` (required).
    """
    return get_dataset(name).load(root, seed)
