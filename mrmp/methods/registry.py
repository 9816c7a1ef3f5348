"""Methods by name: importing this module registers every built-in method."""

from . import dense, mp, mrmp, random, srmp, tcmp  # noqa: F401  (registration side effects)
from .base import create, get, names, register

__all__ = ["create", "get", "names", "register"]
