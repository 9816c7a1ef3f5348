"""Input transforms: temporal-chunk averaging, the GCN's node features (methods.md, "The GCN backbone")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .dataset import SkeletonDataset
from .graph import SkeletonGraph


def _chunk_means(seq: np.ndarray, chunks: int) -> np.ndarray:
    """(T, V, 3) -> (chunks, V, 3) float64 chunk means; see chunk_features for the rule."""
    t = seq.shape[0]
    x = seq.astype(np.float64, copy=False)
    if t >= chunks:
        # frame i belongs to chunk floor(i * M / T); every chunk is non-empty when T >= M
        starts = np.searchsorted((np.arange(t) * chunks) // t, np.arange(chunks))
        counts = np.diff(np.append(starts, t))
        return np.add.reduceat(x, starts, axis=0) / counts[:, None, None]
    # fewer frames than chunks: sample the piecewise-linear trajectory at each chunk's centre time
    centre = np.clip((np.arange(chunks) + 0.5) * t / chunks - 0.5, 0.0, t - 1.0)
    lo = np.floor(centre).astype(np.int64)
    hi = np.minimum(lo + 1, t - 1)
    w = (centre - lo)[:, None, None]
    return (1.0 - w) * x[lo] + w * x[hi]


def mean_bone_length(sequences: Sequence[np.ndarray], graph: SkeletonGraph) -> float:
    """Mean length of all bones over all frames and persons of ``sequences``: a per-dataset unit of scale."""
    e = graph.node_edges()
    total, count = 0.0, 0
    for s in sequences:
        d = np.linalg.norm(s[:, e[:, 0]].astype(np.float64) - s[:, e[:, 1]], axis=-1)
        total += float(d.sum())
        count += d.size
    return total / max(count, 1)


def chunk_features(
    data: SkeletonDataset | Sequence[np.ndarray],
    chunks: int = 4,
    center: bool = True,
    scale: bool | float = False,
    graph: SkeletonGraph | None = None,
) -> np.ndarray:
    """Per-node temporal-chunk means: float32 ``(N, V, 3 * chunks)``, chunk-major ``x1, y1, z1, x2, ...``.

    Each trajectory of T frames is cut by time stamp into ``chunks`` (M) equal chunks, frame t going to chunk
    ``floor(t * M / T)``, and each chunk is averaged. A sequence shorter than M frames is read as a
    piecewise-linear trajectory sampled at each chunk's centre time ``(m + 0.5) * T / M - 0.5`` (clipped
    to the frame range), so a 1-frame sequence repeats its frame and T == M gives the frames themselves.

    ``center``: subtract the first frame's reference joint (``graph.center_joint`` of person A: SBU torso,
    FPHA wrist) from every node, removing the sequence's absolute position.
    ``scale``: ``True`` divides by the mean bone length of ``data`` (all sequences, frames, persons), making
    features unit-free; a float divides by that value instead (e.g. one computed on the training set).
    ``graph`` is needed for ``center`` / ``scale=True`` when ``data`` is a plain list of sequences.
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    if isinstance(data, SkeletonDataset):
        sequences, graph = data.sequences, graph or data.graph
    else:
        sequences = list(data)
    if graph is None and (center or scale is True):
        raise ValueError("chunk_features: pass graph= to centre or scale a plain list of sequences")
    if not sequences:
        return np.zeros((0, graph.num_nodes if graph else 0, 3 * chunks), dtype=np.float32)
    if scale is True:
        divisor = mean_bone_length(sequences, graph)
    elif scale is False:
        divisor = 1.0
    else:
        divisor = float(scale)
    if not divisor > 0:
        raise ValueError(f"chunk_features: scale must be positive, got {divisor}")
    out = []
    for s in sequences:
        if s.ndim != 3 or s.shape[-1] != 3 or s.shape[0] < 1:
            raise ValueError(f"chunk_features: expected (T>=1, V, 3) sequences, got {s.shape}")
        m = _chunk_means(s, chunks)
        if center:
            m = m - s[0, graph.center_joint].astype(np.float64)
        out.append(m.transpose(1, 0, 2).reshape(s.shape[1], 3 * chunks))
    feats = np.stack(out)
    if divisor != 1.0:
        feats = feats / divisor
    return feats.astype(np.float32)
