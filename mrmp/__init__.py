"""mrmp: pruning graph convolutional networks for skeleton-based action recognition."""

__version__ = "0.1.0"
