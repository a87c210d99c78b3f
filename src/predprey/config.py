"""Frozen, typed run configuration loaded from YAML.

A config has four sections (`env`, `algo`, `buffer`, `train`) and optional
`distributed` and `population` ones (`population` absent: one learner, and not written).
Each section is a frozen dataclass; an unknown or misspelled key is a `ConfigError`
that names it (with a suggestion). `--set section.key=value` overrides are parsed as
YAML scalars and type-checked like the file.

The `env` section holds `scenario` and `num_envs`; every other key is a scenario
parameter and is validated by that scenario's own parameter class (see
`predprey.env.params_class`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from predprey.population.params import PopulationConfig


class ConfigError(ValueError):
    """A user-facing configuration problem; the message names the offending key."""


@dataclass(frozen=True)
class EnvConfig:
    scenario: str = "tag"
    num_envs: int = 32
    # Scenario parameters (preset, obs, num_predators, ...), validated by the scenario.
    params: Mapping[str, Any] = field(default_factory=dict)

    def make(self, num_envs: int | None = None, seed: int = 0):
        from predprey.env import make

        n = self.num_envs if num_envs is None else num_envs
        return make(self.scenario, num_envs=n, seed=seed, **dict(self.params))


@dataclass(frozen=True)
class AlgoConfig:
    name: str = "maddpg"  # maddpg | matd3 (labels: the flags below define them) | ppo
    hidden: tuple[int, ...] = (64, 64)
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    gamma: float = 0.95
    tau: float = 0.01
    batch_size: int = 1024
    grad_clip: float = 0.5
    exploration_noise: float = 0.1
    actor_reg: float = 1e-4  # weight of mean(pre-tanh action^2) in the actor loss
    share_params: bool = False  # one actor/critic per team instead of per agent
    # central: each critic sees every agent's observation and action (MADDPG); local: only its
    # own agent's (DDPG per agent, seed 004's learners; its size does not depend on N)
    critic: str = "central"
    twin_critics: bool = False  # MATD3: clipped double-Q
    policy_delay: int = 1  # MATD3: actor + target update every d critic updates
    target_noise: float = 0.0  # MATD3: target policy smoothing std
    target_noise_clip: float = 0.5
    env_steps_per_update: int = 100  # update-to-data ratio: one update per this many env steps
    teams: tuple[str, ...] = ()  # teams to train; empty = all teams of the scenario
    # --- PPO only (name: ppo; predprey.learn.ppo). Shared with MADDPG: hidden, actor_lr,
    # critic_lr, gamma, grad_clip, share_params, teams and `critic` (central = MAPPO: the
    # value sees every agent's observation; local = IPPO: its own). The MADDPG-only keys
    # above (tau, batch_size, exploration_noise, actor_reg, twin_critics, policy_delay,
    # target_*, env_steps_per_update) and the buffer section are errors under ppo unless
    # left at their defaults, and the keys below under maddpg/matd3 (predprey.algos).
    rollout_steps: int = 32  # T: vector steps from every env per iteration
    epochs: int = 4  # passes over each rollout
    minibatches: int = 4  # gradient steps per pass
    clip: float = 0.2  # epsilon of the clipped surrogate
    vf_clip: float = 0.0  # clip of the value change per iteration; 0 = unclipped value loss
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    gae_lambda: float = 0.95
    log_std_init: float = -0.5  # Gaussian log-std (state-independent, learned)
    # Critics regress returns scaled by a running mean and std per team (MAPPO's value
    # normalisation): teams whose returns differ 10x in scale fit at one learning rate
    value_norm: bool = False
    # Learning rates fall linearly from actor_lr / critic_lr to 0 over the run's budget
    # (env steps or --time-budget, whichever ends it first; a resumed run anneals over the
    # budget it is given), as CleanRL's PPO does: the last policy is a settled one
    anneal_lr: bool = False
    # At a time limit the value target bootstraps from V(final observation) (true), or the
    # limit ends the return (false, as JaxMARL's IPPO and MAPPO do). Final observations are
    # never regressed on, so where they leave the states the critic trains on (tag: agents
    # drift outwards) bootstrapping fed its extrapolation back until it diverged.
    bootstrap_time_limit: bool = True
    # Trajectory separation (seed 003): the level of the reward, the value and the advantage,
    # each agent | group | team; one entry sets all three. team x3 = single brain.
    separation: tuple[str, ...] = ("agent",)
    group_size: int = 0  # agents per group (level group); 0 = the whole team


CRITICS = ("central", "local")


@dataclass(frozen=True)
class BufferConfig:
    capacity: int = 1_000_000
    warmup: int = 25_600  # env steps of (random) data before the first update


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    total_env_steps: int = 10_000_000
    time_budget: float = 0.0  # seconds of wall clock; 0 = no limit
    eval_every: int = 100_000  # env steps between evaluations
    eval_episodes: int = 100
    eval_prey: str = "evader"  # scripted prey the learned predators are evaluated against
    eval_predators: str = "chaser"  # scripted predators the learned prey are evaluated against
    log_every: int = 10_000  # env steps between metrics lines
    checkpoint_every: float = 120.0  # seconds of wall clock between checkpoints
    record_every: int = 200  # episodes (per env) between recorded trajectories
    record_envs: tuple[int, ...] = (0, 1, 2, 3)
    torch_threads: int = 0  # 0 = torch default
    # Opponent mixing: in the last `scripted_fraction` of the environments the team
    # `scripted_team` follows the scripted policy `scripted_policy` instead of its actors
    # (e.g. prey acting at random), so the other team also learns against opponents unlike
    # its co-learning rival. The executed actions are stored: MADDPG is off-policy.
    scripted_team: str = "prey"
    scripted_policy: str = "random"
    scripted_fraction: float = 0.0
    # Spread only: in the first `spare_fraction` of the training environments one landmark
    # lies on another in every episode, so one agent has nothing to cover, as most agents
    # in a crowd that outnumbers the landmarks they see. Evaluation and `simulate` never
    # do this (training-episode metrics do include those envs); it teaches a policy trained
    # on few agents what to do when every landmark in sight is taken (README, train on 4).
    spare_fraction: float = 0.0


@dataclass(frozen=True)
class DistributedConfig:
    runners: int = 0
    address: str = ""
    # Rate limit: sampled rows per inserted row; 0 = algo.batch_size / algo.env_steps_per_update
    # (the single-process update-to-data ratio).
    samples_per_insert: float = 0.0
    insert_slack: int = 0  # env steps runners may run ahead of that ratio; 0 = 2 calls per runner
    weight_sync_every: int = 1  # learner updates between weight publishes
    envs_per_runner: int = 0  # environments each runner steps; 0 = env.num_envs
    steps_per_call: int = 100  # vector steps per runner call (rows per call: this * envs)
    max_restarts: int = 10  # restarts allowed per role (runner, buffer, learner) before giving up
    wal: bool = True  # write-ahead log: every acknowledged insert is fsynced to the run dir


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    buffer: BufferConfig = field(default_factory=BufferConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    population: PopulationConfig | None = None  # None: one learner

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            sec = getattr(self, f.name)
            if sec is None:  # an optional section left out
                continue
            if f.name == "env":  # params is a read-only mapping: asdict cannot copy it
                section = {"scenario": sec.scenario, "num_envs": sec.num_envs, **sec.params}
            else:
                section = dataclasses.asdict(sec)
            out[f.name] = _plain(section)
        return out

    def replace(self, **sections: Any) -> Config:
        return dataclasses.replace(self, **sections)


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _suggest(key: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert a YAML value to the annotated type, naming `where` on failure."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        if isinstance(value, int | float | str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (elem, *_rest) = typing.get_args(tp)
        return tuple(_coerce(v, elem, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float) and isinstance(value, str):
        value = _yaml_exponent(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _yaml_exponent(text: str) -> Any:
    """PyYAML (YAML 1.1) reads a number with an exponent but no dot, such as `1e-4` or
    `1e6`, as a string; a user writing one means the number."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number if "e" in text.lower() and math.isfinite(number) else text


def build_dataclass(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Construct frozen dataclass `cls` from `data`; unknown keys and bad types are errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown key '{where}.{key}'{_suggest(key, names)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ValueError as e:  # range checks in __post_init__ (e.g. scenario parameters)
        raise ConfigError(f"{where}: {e}") from None


def _env_section(data: Mapping[str, Any]) -> EnvConfig:
    from predprey.env import params_class

    if not isinstance(data, Mapping):
        raise ConfigError(f"env: expected a mapping, got {data!r}")
    data = dict(data)
    scenario = _coerce(data.pop("scenario", "tag"), str, "env.scenario")
    num_envs = _coerce(data.pop("num_envs", EnvConfig.num_envs), int, "env.num_envs")
    if num_envs < 1:
        raise ConfigError(f"env.num_envs must be >= 1, got {num_envs}")
    try:
        pcls = params_class(scenario)
    except ValueError as e:
        raise ConfigError(f"env.scenario: {e}") from None
    build_dataclass(pcls, data, "env")  # validates names, types and ranges
    return EnvConfig(scenario=scenario, num_envs=num_envs, params=types.MappingProxyType(data))


SECTIONS = {
    "algo": AlgoConfig,
    "buffer": BufferConfig,
    "train": TrainConfig,
    "distributed": DistributedConfig,
}
OPTIONAL_SECTIONS = {"population": PopulationConfig}  # absent: None


def config_from_dict(data: Mapping[str, Any] | None) -> Config:
    data = dict(data or {})
    known = ["env", *SECTIONS, *OPTIONAL_SECTIONS]
    unknown = [k for k in data if k not in known]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"unknown section '{k}'{_suggest(k, known)}")
    kwargs: dict[str, Any] = {"env": _env_section(data.get("env", {}))}
    for name, cls in SECTIONS.items():
        kwargs[name] = build_dataclass(cls, data.get(name) or {}, name)
    for name, cls in OPTIONAL_SECTIONS.items():
        if data.get(name) is not None:
            kwargs[name] = build_dataclass(cls, data[name], name)
    cfg = Config(**kwargs)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    a, b, t, d = cfg.algo, cfg.buffer, cfg.train, cfg.distributed
    from predprey.algos import validate_algo  # first: the learner decides which keys count

    if cfg.population is not None and cfg.algo.name == "ppo":  # before ppo's key checks
        raise ConfigError("population: members are off-policy learners (algo.name maddpg | "
                          "matd3), not ppo")  # fmt: skip
    validate_algo(cfg)
    checks = [
        (a.batch_size >= 1, "algo.batch_size must be >= 1"),
        (0 < a.gamma <= 1, "algo.gamma must be in (0, 1]"),
        (0 < a.tau <= 1, "algo.tau must be in (0, 1]"),
        (a.policy_delay >= 1, "algo.policy_delay must be >= 1"),
        (a.actor_reg >= 0, "algo.actor_reg must be >= 0"),
        (a.env_steps_per_update >= 1, "algo.env_steps_per_update must be >= 1"),
        (len(a.hidden) >= 1 and min(a.hidden) >= 1, "algo.hidden must list positive sizes"),
        (b.capacity >= a.batch_size, "buffer.capacity must be >= algo.batch_size"),
        (b.warmup >= 0, "buffer.warmup must be >= 0"),
        (t.total_env_steps >= 1, "train.total_env_steps must be >= 1"),
        (t.time_budget >= 0, "train.time_budget must be >= 0"),
        (0 <= t.scripted_fraction <= 1, "train.scripted_fraction must be in [0, 1]"),
        (0 <= t.spare_fraction <= 1, "train.spare_fraction must be in [0, 1]"),
        (d.runners >= 0, "distributed.runners must be >= 0"),
        (d.samples_per_insert >= 0, "distributed.samples_per_insert must be >= 0"),
        (d.insert_slack >= 0, "distributed.insert_slack must be >= 0"),
        (d.weight_sync_every >= 1, "distributed.weight_sync_every must be >= 1"),
        (d.envs_per_runner >= 0, "distributed.envs_per_runner must be >= 0"),
        (d.steps_per_call >= 1, "distributed.steps_per_call must be >= 1"),
        (d.max_restarts >= 0, "distributed.max_restarts must be >= 0"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    if a.critic not in CRITICS:
        raise ConfigError(f"algo.critic: unknown critic {a.critic!r}; choose one of {CRITICS}")
    pop = cfg.population
    if pop is not None and "hidden" in pop.hyperparameters and len(set(a.hidden)) != 1:
        raise ConfigError(
            f"population: a member's hidden is the width of every hidden layer; "
            f"algo.hidden {list(a.hidden)} has layers of different widths"
        )
    if t.spare_fraction > 0 and cfg.env.scenario != "spread":
        raise ConfigError(
            f"train.spare_fraction applies only to scenario spread, not {cfg.env.scenario!r}"
        )
    if t.scripted_fraction > 0:
        from predprey.env.scripted import SCRIPTED

        if t.scripted_policy not in SCRIPTED:
            raise ConfigError(
                f"train.scripted_policy: unknown policy {t.scripted_policy!r}; "
                f"choose one of {SCRIPTED}"
            )


def parse_override(text: str) -> tuple[str, str, Any]:
    """'section.key=value' -> (section, key, parsed YAML value)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    lhs, rhs = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = yaml.safe_load(rhs) if rhs.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {lhs}: cannot parse value {rhs!r}: {e}") from None
    return section, key, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = {k: dict(v or {}) for k, v in dict(data).items()}
    for text in overrides:
        section, key, value = parse_override(text)
        out.setdefault(section, {})[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return dict(data or {})


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    data = load_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(data, overrides))


def dump_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
