"""Typed configs, YAML loading with line numbers, dotted overrides; errors gathered at once."""

from mrmp.validation import ConfigError, Issue, Reporter, apply_overrides, parse_overrides, read_yaml, spec

from .loading import config_from_dict, dump_config, load_config
from .schema import DataConfig, EvalConfig, MethodConfig, ModelConfig, RunConfig, TrainConfig, default_rates

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "Issue",
    "MethodConfig",
    "ModelConfig",
    "Reporter",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "default_rates",
    "dump_config",
    "load_config",
    "parse_overrides",
    "read_yaml",
    "spec",
]
