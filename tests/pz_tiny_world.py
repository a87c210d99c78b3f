"""A tiny PettingZoo ParallelEnv for the pettingzoo-scenario tests: two hunters chase a runner
on a plane; the runner leaves the episode after `leave_at` steps (it is caught), the episode
is truncated after `max_cycles` steps, or ends for everyone (terminated) after `end_at`."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float64) * 0.1  # mpe2's order


class TinyChase(ParallelEnv):
    metadata = {"name": "tiny_chase_v0", "is_parallelizable": True}

    def __init__(self, discrete=False, mixed=False, leave_at=3, end_at=None, max_cycles=8):
        self.possible_agents = ["hunter_0", "hunter_1", "runner_0"]
        self.discrete, self.mixed = discrete, mixed
        self.leave_at, self.end_at, self.max_cycles = leave_at, end_at, max_cycles
        self.rng = np.random.default_rng()
        self.agents: list[str] = []

    def observation_space(self, agent):
        wide = self.mixed and agent == "hunter_1"
        return spaces.Box(-np.inf, np.inf, (7 if wide else 6,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(5) if self.discrete else spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self, agent):
        others = [self.pos[a] - self.pos[agent] for a in self.possible_agents if a != agent]
        width = self.observation_space(agent).shape[0]
        return np.resize(np.concatenate([self.pos[agent], *others]), width).astype(np.float32)

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.t = 0
        self.pos = {a: self.rng.uniform(-1, 1, 2) for a in self.agents}
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        for a, act in actions.items():
            move = MOVES[act] if self.discrete else 0.1 * np.clip(act, -1, 1)
            self.pos[a] = self.pos[a] + move
        self.t += 1
        gap = {a: float(np.linalg.norm(self.pos[a] - self.pos["runner_0"])) for a in self.agents}
        nearest = min(gap[a] for a in self.agents if a.startswith("hunter"))
        rew = {a: -gap[a] if a.startswith("hunter") else nearest for a in self.agents}
        ends = self.end_at is not None and self.t >= self.end_at
        term = {a: ends or (a == "runner_0" and self.t >= self.leave_at) for a in self.agents}
        trunc = {a: self.t >= self.max_cycles for a in self.agents}
        obs = {a: self._obs(a) for a in self.agents}
        infos = {a: {} for a in self.agents}
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rew, term, trunc, infos

    def positions(self):
        return {a: self.pos[a] for a in self.possible_agents}


def parallel_env(**kwargs):
    return TinyChase(**kwargs)


class BlindChase(TinyChase):
    """The same world without a positions() hook: nothing for animate or the viewer to draw."""

    positions = None


def blind_env(**kwargs):
    return BlindChase(**kwargs)
