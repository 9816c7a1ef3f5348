"""Skeleton data: graphs, the dataset container, SBU / FPHA loaders, the synthetic default data, features.

Imports numpy only (never Ray, Optuna or MLflow). Every loader error is a ``DataError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import difflib
from os import PathLike

from .dataset import DatasetInfo, SkeletonDataset, dataset_summary
from .errors import DataError
from .fpha import load_fpha, parse_fpha_skeleton, read_fpha_split
from .graph import FPHA_GRAPH, SBU_GRAPH, SkeletonGraph
from .sbu import load_sbu, parse_sbu_skeleton
from .synthetic import make_synthetic, write_synthetic
from .transforms import chunk_features, mean_bone_length

DATASET_NAMES = ("synthetic-sbu", "synthetic-fpha", "sbu", "fpha")

__all__ = [
    "DATASET_NAMES",
    "FPHA_GRAPH",
    "SBU_GRAPH",
    "DataError",
    "DatasetInfo",
    "SkeletonDataset",
    "SkeletonGraph",
    "chunk_features",
    "dataset_summary",
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
    """Load a dataset by config name.

    ``synthetic-sbu`` / ``synthetic-fpha``: generated in memory from ``seed`` or, when ``root`` is given, read
    from a directory written by ``mrmp data synth`` through the real loader. ``sbu`` / ``fpha``: the real
    data under ``root`` (required).
    """
    if name not in DATASET_NAMES:
        close = difflib.get_close_matches(name, DATASET_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(DATASET_NAMES)}){hint}")
    like = name.removeprefix("synthetic-")
    loader = load_sbu if like == "sbu" else load_fpha
    if name.startswith("synthetic-"):
        if root is None:
            return make_synthetic(like, seed=seed)
        return dataclasses.replace(loader(root), name=name)
    if root is None or str(root) == "":
        raise DataError(f"data.root is required for {name}")
    return loader(root, name=name)
