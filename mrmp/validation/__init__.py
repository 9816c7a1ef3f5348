"""Typed validation shared by every config in mrmp: dataclass fields with bounds and choices, YAML with line
numbers, `--set` overrides, and errors gathered at once (`file:line: key: message`, with a did-you-mean).

A leaf package (PyYAML and the standard library only): the run config, the method parameters and the sweep
schema all build on it, so none of them needs to import another to validate.
"""

from .errors import ConfigError, Issue
from .fields import Reporter, build, coerce, describe, spec, suggest
from .yamlio import apply_overrides, parse_overrides, read_yaml

__all__ = [
    "ConfigError",
    "Issue",
    "Reporter",
    "apply_overrides",
    "build",
    "coerce",
    "describe",
    "parse_overrides",
    "read_yaml",
    "spec",
    "suggest",
]
