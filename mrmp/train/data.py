"""From a dataset to the arrays one training run needs (chunk features, labels, splits), computed once.

Three disjoint parts: train (what the weights see), validation (a stratified, seeded share of the protocol's
training split: where sweeps select), and test (the protocol's held-out fold: scored, never selected on).
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
    x_val: np.ndarray  # (N_val, V, F); N_val = 0 without a validation split
    y_val: np.ndarray
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

    @property
    def has_val(self) -> bool:
        return len(self.y_val) > 0

    def split_hash(self) -> str:
        """Identifies the exact data a run saw (features and labels of train, validation and test)."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:12]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions (into `labels`) of a validation share drawn per class: round(fraction · n_c) of each class c,
    at least one of any class with two or more members, never a whole class. Sorted; empty when fraction is 0."""
    if fraction <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(fraction * len(members)))
        k = min(max(k, 1 if len(members) >= 2 else 0), len(members) - 1)
        picked.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def prepare_data(cfg: DataConfig, dataset=None) -> PreparedData:
    """Load (unless `dataset` is given), featurise and split according to `cfg`."""
    from mrmp.data import chunk_features, get_dataset, load_dataset

    ds = dataset if dataset is not None else load_dataset(cfg.name, cfg.root, seed=cfg.seed)
    scale = cfg.scale if cfg.scale is not None else get_dataset(cfg.name).scale
    feats = chunk_features(ds, chunks=cfg.chunks, center=cfg.center, scale=scale)
    train_idx, test_idx = ds.split(cfg.fold)
    labels = np.asarray(ds.labels, dtype=np.int64)
    held = stratified_holdout(labels[train_idx], cfg.val_fraction, cfg.val_seed)
    keep = np.ones(len(train_idx), dtype=bool)
    keep[held] = False
    val_idx, train_idx = train_idx[held], train_idx[keep]
    return PreparedData(
        x_train=feats[train_idx],
        y_train=labels[train_idx],
        x_val=feats[val_idx],
        y_val=labels[val_idx],
        x_test=feats[test_idx],
        y_test=labels[test_idx],
        adjacency=np.asarray(ds.graph.adjacency(), dtype=np.float32),
        class_names=tuple(ds.class_names),
        dataset=cfg.name,
        split=f"fold{cfg.fold}",
    )
