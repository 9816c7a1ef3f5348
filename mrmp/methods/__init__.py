"""Pruning methods behind one interface (`PruningMethod`), found by name through the registry."""

from . import registry
from .base import Phase, PruningMethod, rank_keep_masks, register

__all__ = ["Phase", "PruningMethod", "rank_keep_masks", "register", "registry"]
