"""From a dataset to the arrays one training run needs (chunk features, labels, split), computed once.

`PreparedData` is plain numpy, small (SBU: ~40 kB of features), picklable: a sweep puts it in Ray's object
store once and every trial reads it from there instead of re-reading the dataset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from mrmp.config import DataConfig


@dataclass(frozen=True)
class PreparedData:
    x_train: np.ndarray  # (N_train, V, F) float32
    y_train: np.ndarray  # (N_train,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    adjacency: np.ndarray  # (V, V) 0/1
    class_names: tuple[str, ...]
    dataset: str
    split: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_nodes(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[2])

    def split_hash(self) -> str:
        """Identifies the exact data a run saw (features and labels of both sides of the split)."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:12]


def prepare_data(cfg: DataConfig, dataset=None) -> PreparedData:
    """Load (unless `dataset` is given), featurise and split according to `cfg`."""
    from mrmp.data import chunk_features, load_dataset

    ds = dataset if dataset is not None else load_dataset(cfg.name, cfg.root, seed=cfg.seed)
    scale = cfg.scale if cfg.scale is not None else cfg.name in ("fpha", "synthetic-fpha")
    feats = chunk_features(ds, chunks=cfg.chunks, center=cfg.center, scale=scale)
    train_idx, test_idx = ds.split(cfg.fold)
    labels = np.asarray(ds.labels, dtype=np.int64)
    return PreparedData(
        x_train=feats[train_idx],
        y_train=labels[train_idx],
        x_test=feats[test_idx],
        y_test=labels[test_idx],
        adjacency=np.asarray(ds.graph.adjacency(), dtype=np.float32),
        class_names=tuple(ds.class_names),
        dataset=cfg.name,
        split=f"fold{cfg.fold}",
    )
