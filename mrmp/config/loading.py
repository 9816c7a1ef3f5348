"""Run configs from YAML files or mappings: validated into `RunConfig`, every problem gathered at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mrmp.validation import ConfigError, Issue, Reporter, apply_overrides, parse_overrides, read_yaml

from .schema import RunConfig, build_run_config


def config_from_dict(raw: Any, source: str = "<config>", lines: dict[str, int] | None = None) -> RunConfig:
    """Validate an in-memory mapping (e.g. a sweep trial's config); raises ConfigError with every issue."""
    rep = Reporter(source, lines)
    cfg = build_run_config(raw, rep)
    if rep.issues:
        raise ConfigError(rep.issues)
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load and validate a run config (defaults when `path` is None) with `--set` overrides applied."""
    raw: Any = {}
    lines: dict[str, int] = {}
    source = "<defaults>"
    if path is not None:
        raw, lines = read_yaml(path)
        source = str(path)
    if raw is not None and not isinstance(raw, dict):
        kind = type(raw).__name__
        raise ConfigError(
            [Issue(source, "", f"a run config is a mapping of sections (data, model, ...), got a {kind}")]
        )
    sets, issues = parse_overrides(overrides)
    if issues:
        raise ConfigError(issues)
    merged = apply_overrides(raw, sets)
    # Keys that came from --set are reported against --set, not the file's line.
    for key in sets:
        lines.pop(key, None)
    rep = Reporter(source, lines)
    cfg = build_run_config(merged, rep)

    def from_set(key: str) -> bool:
        return any(k == key or k.startswith(key + ".") for k in sets)

    fixed = [Issue("--set", i.key, i.message) if i.key and from_set(i.key) else i for i in rep.issues]
    if fixed:
        raise ConfigError(fixed)
    return cfg


def dump_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    tmp.replace(path)
