"""The `algo` section: one class per kind of learner, chosen by `algo.name`.

`maddpg` and `matd3` read `OffPolicyConfig` (matd3 is a label: the twin-critic, delay and
target-noise keys define it), `ppo` reads `PPOConfig`; both hold `AlgoConfig`'s shared keys.
A key of the other learner is an unknown key. Each class checks its own ranges.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from predprey.config.base import ConfigError, check

CRITICS = ("central", "local")
NETWORKS = ("mlp", "attention")
LEVELS = ("agent", "group", "team")


@dataclass(frozen=True)
class AlgoConfig:
    """Keys every learner reads."""

    NAMES: ClassVar[tuple[str, ...]] = ()

    # the learner: maddpg | matd3 (off-policy) or ppo; left out: ppo in a pettingzoo world
    name: str = "maddpg"
    hidden: tuple[int, ...] = (64, 64)  # widths of the hidden layers of actors and critics
    actor_lr: float = 1e-3  # Adam learning rate of the actors
    critic_lr: float = 1e-3  # Adam learning rate of the critics (values under ppo)
    gamma: float = 0.95  # discount factor
    grad_clip: float = 0.5  # gradient-norm clip of each network; 0 = no clipping
    share_params: bool = False  # one actor and one critic per team instead of one per agent
    # central: critics see every agent's observation (MADDPG, MAPPO); local: their own (IPPO)
    critic: str = "central"
    teams: tuple[str, ...] = ()  # teams to train; empty = every team of the scenario
    # mlp: MLPs of the flat observation; attention: entity attention over obs local's slots
    # (predprey.learn.attention), runs with any number of slots in view
    network: str = "mlp"
    attention_dim: int = 32  # network attention: width of the entity tokens and attention
    attention_heads: int = 2  # network attention: attention heads

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.name not in self.NAMES:
            raise ConfigError(f"algo.name: {self.name!r} is not one of {self.NAMES}")
        check(
            "algo",
            [
                (len(self.hidden) >= 1 and min(self.hidden) >= 1, "hidden must list sizes >= 1"),
                (self.actor_lr > 0, f"actor_lr must be > 0, got {self.actor_lr}"),
                (self.critic_lr > 0, f"critic_lr must be > 0, got {self.critic_lr}"),
                (0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
                (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = none), got {self.grad_clip}"),
                (len(set(self.teams)) == len(self.teams), "teams lists a team twice"),
            ],
        )
        if self.network not in NETWORKS:
            raise ConfigError(
                f"algo.network: unknown network {self.network!r}; choose one of {NETWORKS}"
            )
        if self.network == "attention":
            check(
                "algo",
                [
                    (self.share_params, "network attention shares one network per team: set "
                     "share_params: true"),
                    (self.attention_dim >= 1, "attention_dim must be >= 1"),
                    (self.attention_heads >= 1, "attention_heads must be >= 1"),
                ],
            )  # fmt: skip
        if self.critic not in CRITICS:
            raise ConfigError(
                f"algo.critic: unknown critic {self.critic!r}; choose one of {CRITICS}"
            )


@dataclass(frozen=True)
class OffPolicyConfig(AlgoConfig):
    """MADDPG and MATD3: off-policy learners on a replay buffer."""

    NAMES: ClassVar[tuple[str, ...]] = ("maddpg", "matd3")

    tau: float = 0.01  # soft target update rate
    batch_size: int = 1024  # rows sampled from the replay buffer per update
    exploration_noise: float = 0.1  # std of the Gaussian noise added to actions in [-1, 1]
    actor_reg: float = 1e-4  # weight of mean(pre-tanh action^2) in the actor loss
    twin_critics: bool = False  # MATD3: clipped double-Q (two critics, the smaller target)
    policy_delay: int = 1  # MATD3: actor and target updates once every this many critic updates
    target_noise: float = 0.0  # MATD3: std of the noise on the target policy's actions
    target_noise_clip: float = 0.5  # MATD3: bound of that noise
    env_steps_per_update: int = 100  # update-to-data ratio: one update per this many env steps
    n_step: int = 1  # returns over this many steps (fewer where an episode ends) per buffer row
    # discount factors of single teams, {team: gamma}; the teams not named discount by gamma
    team_gamma: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        super().validate()
        check(
            "algo",
            [
                (0 < self.tau <= 1, f"tau must be in (0, 1], got {self.tau}"),
                (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
                (self.exploration_noise >= 0, "exploration_noise must be >= 0"),
                (self.actor_reg >= 0, f"actor_reg must be >= 0, got {self.actor_reg}"),
                (self.policy_delay >= 1, f"policy_delay must be >= 1, got {self.policy_delay}"),
                (self.target_noise >= 0, f"target_noise must be >= 0, got {self.target_noise}"),
                (self.target_noise_clip >= 0, "target_noise_clip must be >= 0"),
                (self.env_steps_per_update >= 1, "env_steps_per_update must be >= 1"),
                (self.n_step >= 1, f"n_step must be >= 1, got {self.n_step}"),
                *((0 < g <= 1, f"team_gamma.{t} must be in (0, 1], got {g}")
                  for t, g in self.team_gamma.items()),
            ],
        )  # fmt: skip

    def gamma_of(self, team: str) -> float:
        """The discount factor of `team`'s returns (`team_gamma`, else `gamma`)."""
        return self.team_gamma.get(team, self.gamma)


@dataclass(frozen=True)
class PPOConfig(AlgoConfig):
    """PPO (IPPO with `critic: local`, MAPPO with `central`): on-policy, no replay buffer."""

    NAMES: ClassVar[tuple[str, ...]] = ("ppo",)

    name: str = "ppo"  # the learner: ppo
    rollout_steps: int = 32  # vector steps from every env per iteration
    epochs: int = 4  # passes over each rollout
    minibatches: int = 4  # gradient steps per pass
    clip: float = 0.2  # epsilon of the clipped surrogate objective
    vf_clip: float = 0.0  # clip of the value change per iteration; 0 = unclipped value loss
    ent_coef: float = 0.0  # weight of the entropy bonus
    vf_coef: float = 0.5  # weight of the value loss
    gae_lambda: float = 0.95  # lambda of generalised advantage estimation
    log_std_init: float = -0.5  # initial log-std of the Gaussian policy (learned, state-free)
    value_norm: bool = False  # critics regress returns scaled by a running mean and std per team
    anneal_lr: bool = False  # learning rates fall linearly to 0 over the run's budget
    # at a time limit the value target bootstraps from V(final observation); false: it ends
    bootstrap_time_limit: bool = True
    # level of reward, value and advantage: agent | group | team (one entry sets all three)
    separation: tuple[str, ...] = ("agent",)
    group_size: int = 0  # agents per group at separation level group; 0 = the whole team

    def validate(self) -> None:
        super().validate()
        sep = self.separation
        if len(sep) not in (1, 3) or any(v not in LEVELS for v in sep):
            raise ConfigError(
                f"algo.separation: give one level or three [reward, value, advantage], each one "
                f"of {LEVELS}; got {list(sep)}"
            )
        check(
            "algo",
            [
                (self.rollout_steps >= 1, f"rollout_steps must be >= 1, got {self.rollout_steps}"),
                (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
                (self.minibatches >= 1, f"minibatches must be >= 1, got {self.minibatches}"),
                (self.clip > 0, f"clip must be > 0, got {self.clip}"),
                (self.vf_clip >= 0, "vf_clip must be >= 0 (0 = unclipped)"),
                (self.ent_coef >= 0, f"ent_coef must be >= 0, got {self.ent_coef}"),
                (self.vf_coef >= 0, f"vf_coef must be >= 0, got {self.vf_coef}"),
                (0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}"),
                (-20 <= self.log_std_init <= 2, "log_std_init must be in [-20, 2]"),
                (self.group_size >= 0, "group_size must be >= 0 (0 = the whole team)"),
            ],
        )

    def separation_levels(self) -> tuple[str, str, str]:
        """The (reward, value, advantage) levels of `separation`."""
        sep = self.separation
        return (sep[0],) * 3 if len(sep) == 1 else tuple(sep)  # type: ignore[return-value]


ALGOS: dict[str, type[AlgoConfig]] = {
    name: cls for cls in (OffPolicyConfig, PPOConfig) for name in cls.NAMES
}


def other_keys(cls: type[AlgoConfig]) -> dict[str, str]:
    """Keys of the other learners' classes that `cls` lacks -> a hint naming their learner."""
    own = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for other in dict.fromkeys(ALGOS.values()):
        if other is not cls:
            names = " | ".join(other.NAMES)
            for f in dataclasses.fields(other):
                if f.name not in own:
                    out[f.name] = f"a key of algo.name {names}, not of {' | '.join(cls.NAMES)}"
    return out
