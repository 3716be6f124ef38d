"""Operator configuration: ``dialer.yaml`` read once into frozen, validated objects."""

from .load import DEFAULT_CONFIG, ConfigError, LoadedConfig, Problem, load_config, read_config
from .schema import Config, Hours

__all__ = ["DEFAULT_CONFIG", "Config", "ConfigError", "Hours", "LoadedConfig", "Problem", "load_config",
           "read_config"]
