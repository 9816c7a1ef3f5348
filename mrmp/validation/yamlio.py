"""Read YAML safely (safe_load semantics), remember each key's line, apply `--set key=value` overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Issue


def _key_lines(node: yaml.Node, prefix: str = "", out: dict[str, int] | None = None) -> dict[str, int]:
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}.{k.value}" if prefix else str(k.value)
            out[key] = k.start_mark.line + 1
            _key_lines(v, key, out)
    return out


def read_yaml(path: str | Path) -> tuple[Any, dict[str, int]]:
    """Parse a YAML file with the safe loader; return (data, dotted key -> 1-based line).

    Raises ConfigError (naming the file and line) for a missing file or malformed YAML.
    """
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Issue(path, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([Issue(path, "", f"cannot read: {e}")]) from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([Issue(path, "", f"malformed YAML: {problem}", line)]) from None
    return data, (_key_lines(node) if node is not None else {})


def parse_overrides(pairs: list[str] | None, source: str = "--set") -> tuple[dict[str, Any], list[Issue]]:
    """`['train.lr=0.1', 'eval.rates=[0.5, 0.9]']` -> {'train.lr': 0.1, ...}; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    issues: list[Issue] = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or "." not in key:
            issues.append(Issue(source, pair, "expected section.key=value, e.g. train.epochs=50"))
            continue
        try:
            out[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            issues.append(Issue(source, key, f"cannot parse value {value!r}"))
    return out, issues


def apply_overrides(raw: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw) if isinstance(raw, dict) else {}
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[leaf] = value
    return raw
