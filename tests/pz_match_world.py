"""A deterministic toy PettingZoo ParallelEnv whose optimal policy is obvious: each agent sees
a one-hot cue of K and is rewarded 1 for choosing that cue's index (`Discrete(K)`), else 0.
Two teams (`caller`, `guesser`), the cues drawn from the seed; random play earns 1/K a step,
the optimal policy 1. `box=True`: `Box(-1, 1, (K,))` actions whose argmax is the choice."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class Match(ParallelEnv):
    metadata = {"name": "match_v0", "is_parallelizable": True}

    def __init__(self, k=3, max_cycles=5, box=False):
        self.k, self.max_cycles, self.box = k, max_cycles, box
        self.possible_agents = ["caller_0", "caller_1", "guesser_0"]
        self.agents: list[str] = []
        self.rng = np.random.default_rng(0)

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (self.k,), np.float32)

    def action_space(self, agent):
        if self.box:
            return spaces.Box(-1.0, 1.0, (self.k,), np.float32)
        return spaces.Discrete(self.k)

    def _cues(self):
        self.cue = {a: int(self.rng.integers(self.k)) for a in self.agents}
        return {a: np.eye(self.k, dtype=np.float32)[c] for a, c in self.cue.items()}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents, self.t = list(self.possible_agents), 0
        return self._cues(), {a: {} for a in self.agents}

    def step(self, actions):
        choice = {a: int(np.argmax(x)) if self.box else int(x) for a, x in actions.items()}
        rew = {a: float(choice[a] == self.cue[a]) for a in self.agents}
        self.t += 1
        trunc = {a: self.t >= self.max_cycles for a in self.agents}
        term = {a: False for a in self.agents}
        obs = self._cues()
        if self.t >= self.max_cycles:
            self.agents = []
        return obs, rew, term, trunc, {a: {} for a in obs}


def parallel_env(**kwargs):
    return Match(**kwargs)
