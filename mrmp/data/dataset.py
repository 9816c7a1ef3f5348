"""The in-memory dataset every loader and generator returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError
from .graph import SkeletonGraph


@dataclass(frozen=True)
class DatasetInfo:
    """What a model builder or a summary needs to know about a dataset, without the data."""

    name: str
    num_sequences: int
    num_classes: int
    num_nodes: int
    joints: int
    persons: int
    channels: int
    frames_min: int
    frames_max: int
    class_names: tuple[str, ...]
    split_names: tuple[str, ...]


@dataclass
class SkeletonDataset:
    """Variable-length skeleton sequences with labels, a graph and named train/test splits.

    ``sequences[i]`` is float32 ``(T_i, V, 3)`` with ``V = graph.num_nodes`` (person-major nodes);
    ``splits`` maps ``fold1``..``fold5`` (SBU-like) or ``official`` (FPHA-like) to sorted int64
    ``(train_idx, test_idx)``; ``ids`` are the sequences' relative ids (e.g. ``s01s02/01/001``).
    """

    name: str
    sequences: list[np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    graph: SkeletonGraph
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.sequences)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != n:
            raise ValueError(f"{self.name}: {n} sequences but {len(self.labels)} labels")
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        if len(self.ids) != n:
            raise ValueError(f"{self.name}: {n} sequences but {len(self.ids)} ids")
        v = self.graph.num_nodes
        for i, s in enumerate(self.sequences):
            if s.dtype != np.float32 or s.ndim != 3 or s.shape[1:] != (v, 3) or s.shape[0] < 1:
                raise ValueError(
                    f"{self.name}: sequence {self.ids[i]} must be float32 (T>=1, {v}, 3), "
                    f"got {s.dtype} {s.shape}"
                )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"{self.name}: labels outside 0..{len(self.class_names) - 1}")
        for key, (tr, te) in list(self.splits.items()):
            tr = np.asarray(tr, dtype=np.int64)
            te = np.asarray(te, dtype=np.int64)
            if np.intersect1d(tr, te).size or (tr.size and (tr.min() < 0 or tr.max() >= n)):
                raise ValueError(f"{self.name}: split {key} overlaps or is out of range")
            if te.size and (te.min() < 0 or te.max() >= n):
                raise ValueError(f"{self.name}: split {key} out of range")
            self.splits[key] = (tr, te)

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per sequence, int64 (N,)."""
        return np.asarray([s.shape[0] for s in self.sequences], dtype=np.int64)

    def split(self, fold: int | str = 1) -> tuple[np.ndarray, np.ndarray]:
        """Resolve ``data.fold`` to ``(train_idx, test_idx)``.

        SBU-like datasets: fold k in 1..5 tests on fold k's sets and trains on the others. FPHA-like datasets
        (a single ``official`` split): only fold 1. A split name (``"fold3"``, ``"official"``) also works.
        """
        if isinstance(fold, str):
            if fold in self.splits:
                return self.splits[fold]
            raise DataError(
                f"{self.name}: no split named {fold!r}; known: {', '.join(self.splits) or 'none'}"
            )
        if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)):
            raise DataError(f"{self.name}: fold must be an integer, got {fold!r}")
        folds = sorted(int(k[4:]) for k in self.splits if k.startswith("fold") and k[4:].isdigit())
        if folds:
            if int(fold) in folds:
                return self.splits[f"fold{int(fold)}"]
            raise DataError(f"{self.name}: fold must be one of {folds[0]}..{folds[-1]}, got {fold}")
        if "official" in self.splits:
            if int(fold) == 1:
                return self.splits["official"]
            raise DataError(f"{self.name}: has only the official split, so fold must be 1, got {fold}")
        raise DataError(f"{self.name}: has no train/test splits")

    def info(self) -> DatasetInfo:
        """Sizes and names, for summaries and for building a model."""
        lengths = self.lengths
        return DatasetInfo(
            name=self.name,
            num_sequences=len(self),
            num_classes=self.num_classes,
            num_nodes=self.graph.num_nodes,
            joints=self.graph.joints,
            persons=self.graph.persons,
            channels=3,
            frames_min=int(lengths.min()) if len(lengths) else 0,
            frames_max=int(lengths.max()) if len(lengths) else 0,
            class_names=tuple(self.class_names),
            split_names=tuple(self.splits),
        )


def dataset_summary(ds: SkeletonDataset) -> dict:
    """A JSON-ready summary: sizes, frame range, and the train/test counts of every split."""
    info = ds.info()
    return {
        "dataset": info.name,
        "sequences": info.num_sequences,
        "classes": info.num_classes,
        "joints": info.joints,
        "persons": info.persons,
        "frames_min": info.frames_min,
        "frames_max": info.frames_max,
        "splits": {k: {"train": int(len(tr)), "test": int(len(te))} for k, (tr, te) in ds.splits.items()},
    }
