"""Which learner `algo.name` picks, the `algo` keys only one learner reads, and the checks
of the PPO keys (called by `predprey.config.validate`)."""

from __future__ import annotations

from predprey.config import AlgoConfig, BufferConfig, Config, ConfigError

ALGOS = ("maddpg", "matd3", "ppo")
LEVELS = ("agent", "group", "team")
PPO_KEYS = ("rollout_steps", "epochs", "minibatches", "clip", "vf_clip", "ent_coef", "vf_coef",
            "gae_lambda", "log_std_init", "value_norm", "separation", "group_size",
            "bootstrap_time_limit", "anneal_lr")  # fmt: skip
OFFPOLICY_KEYS = ("tau", "batch_size", "exploration_noise", "actor_reg", "twin_critics",
                  "policy_delay", "target_noise", "target_noise_clip",
                  "env_steps_per_update")  # fmt: skip


def separation_levels(a: AlgoConfig) -> tuple[str, str, str]:
    """The (reward, value, advantage) levels of `algo.separation`."""
    sep = a.separation
    return (sep[0],) * 3 if len(sep) == 1 else tuple(sep)  # type: ignore[return-value]


def validate_algo(cfg: Config) -> None:
    """algo.name picks the learner; a key of the other learner set away from its default is
    an error (it would be silently ignored)."""
    a = cfg.algo
    if a.name not in ALGOS:
        raise ConfigError(f"algo.name: unknown algorithm {a.name!r}; choose one of {ALGOS}")
    default = AlgoConfig()
    ppo = a.name == "ppo"
    for key in OFFPOLICY_KEYS if ppo else PPO_KEYS:
        if getattr(a, key) != getattr(default, key):
            owner = "maddpg/matd3" if ppo else "ppo"
            raise ConfigError(
                f"algo.{key} applies only to algo.name {owner}, not {a.name!r}; remove it"
            )
    if not ppo:
        return
    if cfg.buffer != BufferConfig():
        raise ConfigError("buffer: ppo keeps no replay buffer; remove the buffer section")
    if cfg.train.scripted_fraction >= 1 and (
        not a.teams or cfg.train.scripted_team in a.teams
    ):  # fmt: skip
        raise ConfigError(
            "train.scripted_fraction: ppo learns on-policy, from its own actions only; with "
            "every env scripted the scripted team has none (< 1, or leave it out of algo.teams)"
        )
    if len(a.separation) not in (1, 3) or any(v not in LEVELS for v in a.separation):
        raise ConfigError(
            f"algo.separation: give one level or three [reward, value, advantage], each one "
            f"of {LEVELS}; got {list(a.separation)}"
        )
    checks = [
        (a.rollout_steps >= 1, "algo.rollout_steps must be >= 1"),
        (a.epochs >= 1, "algo.epochs must be >= 1"),
        (a.minibatches >= 1, "algo.minibatches must be >= 1"),
        (a.clip > 0, "algo.clip must be > 0"),
        (a.vf_clip >= 0, "algo.vf_clip must be >= 0 (0 = unclipped)"),
        (a.ent_coef >= 0, "algo.ent_coef must be >= 0"),
        (a.vf_coef >= 0, "algo.vf_coef must be >= 0"),
        (0 <= a.gae_lambda <= 1, "algo.gae_lambda must be in [0, 1]"),
        (a.group_size >= 0, "algo.group_size must be >= 0 (0 = the whole team)"),
        (
            a.minibatches <= a.rollout_steps * cfg.env.num_envs,
            "algo.minibatches must be <= algo.rollout_steps * env.num_envs (rows per rollout)",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
