"""What a team looks like to the learner, and the replay-buffer layout of a transition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from predprey.learn.buffer import FieldSpec


@dataclass(frozen=True)
class TeamSpec:
    name: str
    n_agents: int
    obs_dim: int
    act_dim: int = 2  # continuous: action components; discrete: the number of choices
    # discrete: actions are vectors [act_dim] whose argmax is the choice (one-hot as acted and
    # stored); the actor outputs scores (logits) instead of tanh-squashed components
    discrete: bool = False
    # obs local: the observation's entity slots (`predprey.env.observe.EntityGroup`), which
    # attention networks tokenise; empty for other observations
    entities: tuple = ()


def team_specs(env) -> tuple[TeamSpec, ...]:
    """Team specs of a `predprey.env.VecEnv` or `PettingZooVecEnv` (teams in env order)."""
    return tuple(
        TeamSpec(
            t,
            env.team_sizes[t],
            env.obs_dims[t],
            env.act_dims[t],
            t in env.discrete,
            tuple(getattr(env, "obs_layouts", {}).get(t, ())),
        )  # fmt: skip
        for t in env.teams
    )


def transition_spec(teams: Sequence[TeamSpec]) -> FieldSpec:
    """Buffer fields of one transition (one row per environment step):
    obs/{team} [n, obs_dim], act/{team} [n, act_dim] (executed action in [-1, 1]),
    rew/{team} [n], next_obs/{team} [n, obs_dim] (pre-reset final observation),
    terminated [] (1.0: no bootstrap; truncation bootstraps), version [] (policy version)."""
    spec: dict[str, tuple[tuple[int, ...], str]] = {}
    for t in teams:
        spec[f"obs/{t.name}"] = ((t.n_agents, t.obs_dim), "float32")
        spec[f"act/{t.name}"] = ((t.n_agents, t.act_dim), "float32")
        spec[f"rew/{t.name}"] = ((t.n_agents,), "float32")
        spec[f"next_obs/{t.name}"] = ((t.n_agents, t.obs_dim), "float32")
    spec["terminated"] = ((), "float32")
    spec["version"] = ((), "int64")
    return spec
