"""Frozen, typed run configuration loaded from YAML.

A config has the sections `env`, `algo`, `buffer`, `train`, `distributed` and the optional
`population` (absent: one learner, and not written). Each section is a frozen dataclass
that checks its own ranges; `algo.name` picks the `algo` class (`OffPolicyConfig` for
maddpg | matd3, `PPOConfig` for ppo). An unknown or misspelled key is a `ConfigError` that
names it (with a suggestion); so is every value of the wrong type. `--set section.key=value`
overrides are parsed as YAML scalars and checked like the file.

The `env` section holds `scenario` and `num_envs`; every other key is a scenario parameter,
checked by that scenario's parameter class (`predprey.env.params_class`).

Modules: `base` (typed reading, ConfigError), `algo`, `sections` (env, buffer, train,
distributed), `population`, `legacy` (keys of older run directories), `run` (Config, loading).
This package imports only `predprey.env` (the scenarios' parameter classes).
"""

from predprey.config.algo import ALGOS, AlgoConfig, OffPolicyConfig, PPOConfig
from predprey.config.base import ConfigError
from predprey.config.population import PopulationConfig
from predprey.config.run import (
    Config,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
    load_yaml,
    parse_override,
    reference_sections,
)
from predprey.config.sections import BufferConfig, DistributedConfig, EnvConfig, TrainConfig

__all__ = [
    "ALGOS",
    "AlgoConfig",
    "BufferConfig",
    "Config",
    "ConfigError",
    "DistributedConfig",
    "EnvConfig",
    "OffPolicyConfig",
    "PPOConfig",
    "PopulationConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "dump_config",
    "load_config",
    "load_yaml",
    "parse_override",
    "reference_sections",
]
