"""A tiny, fast, learnable PreparedData for core tests that need no dataset on disk."""

from __future__ import annotations

import numpy as np

from mrmp.train import PreparedData


def toy_data(
    n_train: int = 96, n_test: int = 48, classes: int = 4, nodes: int = 10, seed: int = 0, n_val: int = 24
) -> PreparedData:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, nodes, 12))
    y = rng.integers(0, classes, n_train + n_test + n_val)
    x = (centers[y] + rng.normal(scale=1.5, size=(len(y), nodes, 12))).astype(np.float32)
    adj = np.zeros((nodes, nodes), np.float32)
    for i in range(nodes - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1
    test = slice(n_train, n_train + n_test)
    val = slice(n_train + n_test, None)
    return PreparedData(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[val],
        y_val=y[val],
        x_test=x[test],
        y_test=y[test],
        adjacency=adj,
        class_names=tuple(f"c{i}" for i in range(classes)),
        dataset="toy",
        split="fold1",
    )
