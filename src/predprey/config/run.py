"""The whole run configuration: its sections, the checks between them, loading from YAML
with `--set section.key=value` overrides, and writing it back."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from predprey.config import legacy
from predprey.config.algo import ALGOS, AlgoConfig, OffPolicyConfig, PPOConfig, other_keys
from predprey.config.base import ConfigError, build_dataclass, coerce, mapping, show, suggest
from predprey.config.population import PopulationConfig
from predprey.config.sections import BufferConfig, DistributedConfig, EnvConfig, TrainConfig


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: OffPolicyConfig | PPOConfig = field(default_factory=OffPolicyConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    population: PopulationConfig | None = None  # None: one learner

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            sec = getattr(self, f.name)
            if sec is None or (f.name == "buffer" and isinstance(self.algo, PPOConfig)):
                continue  # an optional section left out; ppo keeps no replay buffer
            if f.name == "env":  # params is a read-only mapping: asdict cannot copy it
                section = {"scenario": sec.scenario, "num_envs": sec.num_envs, **sec.params}
            else:
                section = dataclasses.asdict(sec)
            out[f.name] = _plain(section)
        return out

    def replace(self, **sections: Any) -> Config:
        return dataclasses.replace(self, **sections)

    def at_stage(self, stage: int) -> Config:
        """This config at curriculum stage `stage` (`population.curriculum`): spread with that
        many agents and landmarks; itself at stage 0 or without a curriculum."""
        sizes = self.population.curriculum if self.population is not None else ()
        if stage == 0 or not sizes:
            return self
        n = sizes[stage]
        params = types.MappingProxyType({**self.env.params, "num_agents": n, "num_landmarks": n})
        return self.replace(env=dataclasses.replace(self.env, params=params))


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def validate(cfg: Config) -> None:
    """Checks between sections (each section checks its own ranges)."""
    a, t = cfg.algo, cfg.train
    if cfg.population is not None and isinstance(a, PPOConfig):
        raise ConfigError(POPULATION_PPO)
    if isinstance(a, PPOConfig):
        if cfg.buffer != BufferConfig():
            raise ConfigError("buffer: ppo keeps no replay buffer; remove the buffer section")
        if t.scripted_fraction >= 1 and (not a.teams or t.scripted_team in a.teams):
            raise ConfigError(
                "train.scripted_fraction: ppo learns on-policy, from its own actions only; with "
                "every env scripted the scripted team has none (< 1, or leave it out of algo.teams)"
            )
        if a.minibatches > a.rollout_steps * cfg.env.num_envs:
            raise ConfigError(
                "algo.minibatches must be <= algo.rollout_steps * env.num_envs (rows per rollout)"
            )
    elif cfg.buffer.capacity < a.batch_size:
        raise ConfigError("buffer.capacity must be >= algo.batch_size")
    elif a.n_step > 1 and cfg.distributed.runners > 0:
        raise ConfigError(
            "algo.n_step > 1 forms its rows where one process collects and learns; "
            "Ray runners send one-step rows (set n_step: 1, or drop --runners)"
        )
    teams = _scenario_teams(cfg.env.scenario, cfg.env.params)
    if t.scripted_fraction > 0 and t.scripted_team not in teams:
        raise ConfigError(
            f"train.scripted_team: {t.scripted_team!r} is not a team of {cfg.env.scenario} "
            f"{list(teams)}"
        )
    for key, named in (("teams", a.teams), ("team_gamma", getattr(a, "team_gamma", {}))):
        unknown = [team for team in named if team not in teams]
        if unknown:
            raise ConfigError(
                f"algo.{key}: {unknown[0]!r} is not a team of {cfg.env.scenario} {list(teams)}"
            )
    pop = cfg.population
    if pop is not None and pop.curriculum:
        _check_curriculum(cfg)
    if pop is not None and "hidden" in pop.hyperparameters and len(set(a.hidden)) != 1:
        raise ConfigError(
            f"population: a member's hidden is the width of every hidden layer; "
            f"algo.hidden {list(a.hidden)} has layers of different widths"
        )


def _check_curriculum(cfg: Config) -> None:
    """A curriculum over N needs networks whose input widths do not depend on N."""
    env, a, p = cfg.env, cfg.algo, cfg.env.params
    if env.scenario != "spread":
        raise ConfigError(f"population.curriculum: grows spread's agents and landmarks; "
                          f"env.scenario is {env.scenario!r}")  # fmt: skip
    if p.get("obs") != "local":
        raise ConfigError("population.curriculum: needs env.obs: local (mpe observations "
                          "grow with the number of agents)")  # fmt: skip
    if not a.share_params:
        raise ConfigError("population.curriculum: needs algo.share_params: true (one actor "
                          "and critic for any number of agents)")  # fmt: skip
    if a.critic == "central" and a.network != "attention":
        raise ConfigError("population.curriculum: the MLP algo.critic: central reads all N "
                          "agents, its input width changes with N; set algo.critic: local, or "
                          "algo.network: attention (a critic of N tokens)")  # fmt: skip


def _scenario_teams(scenario: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """Our worlds' teams are fixed; a world from outside (pettingzoo) has the teams its
    parameters describe."""
    from predprey.env import SCENARIOS, make_scenario

    if scenario not in SCENARIOS:
        raise ConfigError(f"env.scenario: unknown scenario {scenario!r}; choose one of "
                          f"{sorted(SCENARIOS)}")  # fmt: skip
    teams = getattr(SCENARIOS[scenario][1], "teams", None)
    if isinstance(teams, tuple):
        return teams
    return tuple(make_scenario(scenario, **dict(params)).teams)


POPULATION_PPO = "population: members are off-policy learners (algo.name maddpg | matd3), not ppo"
SECTIONS = ("env", "algo", "buffer", "train", "distributed", "population")


def _env_section(data: Any) -> EnvConfig:
    from predprey.env import params_class

    data = dict(mapping(data, "env"))
    scenario = coerce(data.pop("scenario", EnvConfig.scenario), str, "env.scenario")
    num_envs = coerce(data.pop("num_envs", EnvConfig.num_envs), int, "env.num_envs")
    try:
        pcls = params_class(scenario)
    except ValueError as e:
        raise ConfigError(f"env.scenario: {e}") from None
    data = legacy.drop_removed("env", data, scenario)
    if scenario == "spread":
        data = legacy.landmark_target(data)
    build_dataclass(pcls, data, "env")  # validates names, types and ranges
    return EnvConfig(scenario=scenario, num_envs=num_envs, params=types.MappingProxyType(data))


def _algo_section(data: Any, scenario: str) -> AlgoConfig:
    data = mapping(data, "algo")
    # ppo spends no replay warmup of a foreign world's dear steps, and on mpe2's worlds it
    # learned in fewer env steps than maddpg's defaults (docs/guides/your-own-world.md)
    default = "ppo" if scenario == "pettingzoo" else AlgoConfig.name
    name = coerce(data.get("name", default), str, "algo.name")
    if name not in ALGOS:
        raise ConfigError(f"algo.name: unknown algorithm {name!r}; choose one of {tuple(ALGOS)}")
    cls = ALGOS[name]
    return build_dataclass(cls, legacy.flat_algo(data, name), "algo", other_keys(cls))


def config_from_dict(data: Any) -> Config:
    data = mapping(data, "config")
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"unknown section {show(k)}{suggest(k, SECTIONS)}")
    algo = mapping(data.get("algo"), "algo")
    if data.get("population") is not None and algo.get("name") == "ppo":  # before ppo's keys
        raise ConfigError(POPULATION_PPO)
    env = _env_section(data.get("env"))
    sections: dict[str, Any] = {"env": env, "algo": _algo_section(algo, env.scenario)}
    for name, cls in (("buffer", BufferConfig), ("distributed", DistributedConfig)):
        sections[name] = build_dataclass(cls, data.get(name), name)
    sections["train"] = build_dataclass(
        TrainConfig, legacy.drop_removed("train", mapping(data.get("train"), "train")), "train"
    )
    if data.get("population") is not None:
        sections["population"] = build_dataclass(PopulationConfig, data["population"], "population")
    return Config(**sections)


def reference_sections() -> list[tuple[str, type]]:
    """(section title, dataclass) of every section, for the generated config reference: each
    learner's `algo` class and each scenario's `env` parameters."""
    from predprey.env import SCENARIOS

    return [
        ("env", EnvConfig),
        *((f"env (scenario {name})", pcls) for name, (pcls, _) in SCENARIOS.items()),
        ("algo (shared by every learner)", AlgoConfig),
        ("algo (name: maddpg | matd3)", OffPolicyConfig),
        ("algo (name: ppo)", PPOConfig),
        ("buffer", BufferConfig),
        ("train", TrainConfig),
        ("distributed", DistributedConfig),
        ("population", PopulationConfig),
    ]


def parse_override(text: str) -> tuple[str, str, Any]:
    """'section.key=value' -> (section, key, parsed YAML value)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    lhs, rhs = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = yaml.safe_load(rhs) if rhs.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {lhs}: cannot parse value {rhs!r}: {_yaml_problem(e)}") from None
    return section, key, value


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem:
        mark = e.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{e.problem}{where}"
    return " ".join(str(e).split())


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """`data` with each `section.key=value` set; sections that are not mappings are left for
    `config_from_dict` to report, unless an override writes into one."""
    out = dict(mapping(data, "config"))
    for text in overrides:
        section, key, value = parse_override(text)
        out[section] = {**mapping(out.get(section), section), key: value}
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return dict(data or {})


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    data = load_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(data, overrides))


def dump_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
