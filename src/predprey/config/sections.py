"""The `env`, `buffer`, `train` and `distributed` sections. Each checks its own ranges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from predprey.config.base import ConfigError, check


@dataclass(frozen=True)
class EnvConfig:
    """The world. Every key but these two is a parameter of the scenario (its own section
    of the reference), checked by the scenario's parameter class."""

    scenario: str = "tag"  # the world: tag | spread
    num_envs: int = 32  # environments stepped together (one vector step = this many env steps)
    # the scenario's parameters (preset, obs, num_predators, ...), as the config gives them
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check("env", [(self.num_envs >= 1, f"num_envs must be >= 1, got {self.num_envs}")])

    def make(self, num_envs: int | None = None, seed: int = 0):
        from predprey.env import make

        n = self.num_envs if num_envs is None else num_envs
        return make(self.scenario, num_envs=n, seed=seed, **dict(self.params))


@dataclass(frozen=True)
class BufferConfig:
    """The replay buffer of the off-policy learners (ppo keeps none)."""

    capacity: int = 1_000_000  # rows (env steps) kept; the oldest are overwritten
    warmup: int = 25_600  # env steps of uniform random actions before the first update

    def __post_init__(self):
        check(
            "buffer",
            [
                (self.capacity >= 1, f"capacity must be >= 1, got {self.capacity}"),
                (self.warmup >= 0, f"warmup must be >= 0, got {self.warmup}"),
            ],
        )


@dataclass(frozen=True)
class TrainConfig:
    """The run: its budget, evaluations, logging, checkpoints and training-only worlds."""

    seed: int = 0  # seeds the environments, the networks and the noise
    total_env_steps: int = 10_000_000  # env steps after which the run stops
    time_budget: float = 0.0  # seconds of wall clock after which the run stops; 0 = no limit
    eval_every: int = 100_000  # env steps between evaluations (and best-policy snapshots)
    eval_episodes: int = 100  # episodes per evaluation
    eval_prey: str = "evader"  # scripted prey the learned predators are evaluated against
    eval_predators: str = "chaser"  # scripted predators the learned prey are evaluated against
    log_every: int = 10_000  # env steps between metrics lines
    checkpoint_every: float = 120.0  # seconds of wall clock between checkpoints
    record_every: int = 200  # record one in this many episodes of each recorded env; 0 = none
    record_envs: tuple[int, ...] = (0, 1, 2, 3)  # indices of the environments recorded
    torch_threads: int = 0  # threads torch computes with; 0 = torch's default
    # opponent mixing: in the last scripted_fraction of the envs this team follows ...
    scripted_team: str = "prey"
    scripted_policy: str = "random"  # ... this scripted policy instead of its actors
    scripted_fraction: float = 0.0  # fraction of the training envs with that team scripted

    def __post_init__(self):
        from predprey.env.scripted import SCRIPTED

        check(
            "train",
            [
                (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
                (self.total_env_steps >= 1, "total_env_steps must be >= 1"),
                (self.time_budget >= 0, f"time_budget must be >= 0, got {self.time_budget}"),
                (self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}"),
                (self.eval_episodes >= 1, f"eval_episodes must be >= 1, got {self.eval_episodes}"),
                (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
                (self.checkpoint_every > 0, "checkpoint_every must be > 0 seconds"),
                (self.record_every >= 0, f"record_every must be >= 0, got {self.record_every}"),
                (min(self.record_envs, default=0) >= 0, "record_envs must be indices >= 0"),
                (self.torch_threads >= 0, f"torch_threads must be >= 0, got {self.torch_threads}"),
                (0 <= self.scripted_fraction <= 1, "scripted_fraction must be in [0, 1]"),
            ],
        )
        for key in ("eval_prey", "eval_predators", "scripted_policy"):
            if getattr(self, key) not in SCRIPTED:
                raise ConfigError(
                    f"train.{key}: unknown policy {getattr(self, key)!r}; choose one of {SCRIPTED}"
                )


@dataclass(frozen=True)
class DistributedConfig:
    """Training on Ray: runner actors, a buffer actor and a learner."""

    runners: int = 0  # Ray runner actors; 0 = one process (`--runners K` sets it)
    address: str = ""  # Ray cluster to join; empty = start a local one
    # learner rows sampled per row inserted; 0 = algo.batch_size / algo.env_steps_per_update
    samples_per_insert: float = 0.0
    insert_slack: int = 0  # env steps runners may run ahead of that ratio; 0 = 2 calls each
    weight_sync_every: int = 1  # learner updates between weight publishes to the runners
    envs_per_runner: int = 0  # environments each runner steps; 0 = env.num_envs
    steps_per_call: int = 100  # vector steps per runner call (rows per call: this x envs)
    max_restarts: int = 10  # restarts allowed per role (runner, buffer, learner) before giving up
    wal: bool = True  # write-ahead log: every acknowledged insert is fsynced to the run dir

    def __post_init__(self):
        check(
            "distributed",
            [
                (self.runners >= 0, f"runners must be >= 0, got {self.runners}"),
                (self.samples_per_insert >= 0, "samples_per_insert must be >= 0"),
                (self.insert_slack >= 0, f"insert_slack must be >= 0, got {self.insert_slack}"),
                (self.weight_sync_every >= 1, "weight_sync_every must be >= 1"),
                (self.envs_per_runner >= 0, "envs_per_runner must be >= 0"),
                (self.steps_per_call >= 1, "steps_per_call must be >= 1"),
                (self.max_restarts >= 0, "max_restarts must be >= 0"),
            ],
        )
