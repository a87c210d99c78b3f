"""The checkpoint format every learner shares (MADDPG/MATD3 and PPO): which teams it has and
trains, per-team module states, the optimizers, the update count and the RNG. Each learner
lists its own modules; these functions write and check the rest in one way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from predprey.learn import optim
from predprey.learn.networks import load_module_state


def trained_teams(teams: tuple, algo: Any) -> tuple:
    """The teams `algo.teams` trains (empty: all); a name the scenario lacks is an error."""
    names = [t.name for t in teams]
    unknown = [t for t in algo.teams if t not in names]
    if unknown:
        raise ValueError(f"algo.teams names unknown team {unknown[0]!r}; teams are {names}")
    return tuple(t for t in teams if not algo.teams or t.name in algo.teams)


def cpu_state(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in sd.items()}


def team_states(modules: Mapping[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {k: cpu_state(m.state_dict()) for k, m in modules.items()}


def save(learner: Any, modules: Mapping[str, Any]) -> dict[str, Any]:
    """`learner`'s state: `modules` (key -> team states or tensors) plus the shared parts;
    torch.save-able with weights_only=True."""
    return {
        "teams": [[t.name, t.n_agents, t.obs_dim, t.act_dim] for t in learner.teams],
        "trained": [t.name for t in learner.trained],
        **modules,
        "actor_opt": optim.state_dict(learner.actor_opt),
        "critic_opt": optim.state_dict(learner.critic_opt),
        "version": int(learner.version),
        "generator": learner.generator.get_state(),
    }


def check(learner: Any, state: Mapping, keys: tuple[str, ...], hint: str = "") -> None:
    """ValueError unless `state` has `keys` and the learner's teams and trained teams."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"learner checkpoint lacks {missing}{hint}")
    want = [[t.name, t.n_agents, t.obs_dim, t.act_dim] for t in learner.teams]
    have = [list(t) for t in state.get("teams", [])]
    if have != want:
        raise ValueError(f"checkpoint teams {have} do not match this learner's teams {want}")
    trained = [t.name for t in learner.trained]
    if list(state.get("trained", [])) != trained:
        raise ValueError(
            f"checkpoint trains teams {state.get('trained')}, this learner trains {trained}"
        )


def load_teams(state: Mapping, key: str, modules: Mapping[str, nn.Module]) -> None:
    for name, module in modules.items():
        if name not in state[key]:
            raise ValueError(f"learner checkpoint has no {key} for team {name!r}")
        load_module_state(module, state[key][name], f"{key} {name!r}")


def load_rest(learner: Any, state: Mapping) -> None:
    """The optimizers, the update count and the RNG (after the modules are loaded)."""
    try:
        learner.actor_opt.load_state_dict(state["actor_opt"])
        learner.critic_opt.load_state_dict(state["critic_opt"])
    except (ValueError, KeyError) as e:
        raise ValueError(f"checkpoint optimizer state does not fit: {e}") from None
    learner.version = int(state["version"])
    learner.generator.set_state(state["generator"])
