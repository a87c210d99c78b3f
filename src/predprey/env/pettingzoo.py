"""PettingZoo ParallelEnv over ONE environment of any predprey scenario.

    env = predprey.env.pettingzoo.parallel_env("tag", seed=0, preset="seed")
    obs, infos = env.reset()
    obs, rewards, terminations, truncations, infos = env.step({a: ... for a in env.agents})

Agents are named `{team}_{i}` (`predator_0`, ..., `prey_0`, ...; spread: `agent_0`, ...).
Actions are Box([-1, 1]^2) forces; observations Box float32 of the team's obs_dim. An agent
missing from the actions dict gets zero force. Prey that are caught and leave
(`remove_caught`) are terminated and drop out of `agents`; the episode ends for everyone on
capture / time limit, after which `agents` is empty until the next `reset`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from predprey.env import make


def parallel_env(name: str = "tag", seed: int | None = 0, **params: Any) -> PredPreyParallelEnv:
    return PredPreyParallelEnv(name, seed=seed, **params)


class PredPreyParallelEnv(ParallelEnv):
    metadata = {"render_modes": [], "name": "predprey"}
    render_mode = None

    def __init__(self, name: str = "tag", seed: int | None = 0, **params: Any):
        self.vec = make(name, num_envs=1, seed=seed, **params)
        self.metadata = {"render_modes": [], "name": f"predprey_{name}"}
        # (name, team, index within team, index along the agent axis)
        self._ids = [
            (f"{t}_{i}", t, i, self.vec.slices[t].start + i)
            for t in self.vec.teams
            for i in range(self.vec.team_sizes[t])
        ]
        self.possible_agents = [n for n, *_ in self._ids]
        self.agents: list[str] = []

    @functools.cache  # noqa: B019 - one space object per agent, as the API asks
    def observation_space(self, agent: str) -> spaces.Box:
        dim = self.vec.obs_dims[self._team(agent)]
        return spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, shape=(self.vec.act_dim,), dtype=np.float32)

    def _team(self, agent: str) -> str:
        return agent.rsplit("_", 1)[0]

    def _split(self, team_arrays: dict[str, np.ndarray], names) -> dict[str, np.ndarray]:
        """{team: [1, n_team, ...]} -> {agent name: [...]} for the given names."""
        keep = set(names)
        return {n: team_arrays[t][0, i] for n, t, i, _ in self._ids if n in keep}

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs = self.vec.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._split(obs, self.agents), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise ValueError("step() after the episode ended: call reset() first")
        unknown = sorted(set(actions) - set(self.possible_agents))
        if unknown:
            raise ValueError(f"actions for unknown agents {unknown}; agents: {self.agents}")
        team_act = {t: np.zeros((1, n, 2)) for t, n in self.vec.team_sizes.items()}
        for name, team, i, _ in self._ids:
            if name in actions:
                a = np.asarray(actions[name], dtype=np.float64)
                if a.shape != (2,):
                    raise ValueError(f"action of {name} has shape {a.shape}, expected (2,)")
                team_act[team][0, i] = a
        res = self.vec.step(team_act)
        live = self.agents
        obs = self._split(res.info["final_obs"], live)
        rew = {n: float(r) for n, r in self._split(res.reward, live).items()}
        done = bool(res.done[0])
        alive = res.info["final_alive"][0]
        index = {n: k for n, _, _, k in self._ids}
        term = {n: bool(res.info["terminated"][0]) or not alive[index[n]] for n in live}
        trunc = {n: bool(res.info["truncated"][0]) for n in live}
        infos = {n: {} for n in live}
        self.agents = [] if done else [n for n in live if alive[index[n]]]
        return obs, rew, term, trunc, infos

    def state(self) -> np.ndarray:
        s = self.vec.state
        return np.concatenate([s.pos[0].ravel(), s.vel[0].ravel(), s.landmark_pos[0].ravel()])
