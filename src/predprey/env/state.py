"""Batched world state: every array has the environment index first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass
class State:
    pos: np.ndarray  # [E, N, 2] float64, predators first, then prey
    vel: np.ndarray  # [E, N, 2] float64
    landmark_pos: np.ndarray  # [E, L, 2] float64
    t: np.ndarray  # [E] int64, steps taken in the current episode
    alive: np.ndarray  # [E, N] bool; False for prey that were captured and left the world

    @classmethod
    def zeros(cls, num_envs: int, num_agents: int, num_landmarks: int) -> State:
        return cls(
            pos=np.zeros((num_envs, num_agents, 2)),
            vel=np.zeros((num_envs, num_agents, 2)),
            landmark_pos=np.zeros((num_envs, num_landmarks, 2)),
            t=np.zeros(num_envs, dtype=np.int64),
            alive=np.ones((num_envs, num_agents), dtype=bool),
        )

    def copy(self) -> State:
        return State(
            *(a.copy() for a in (self.pos, self.vel, self.landmark_pos, self.t, self.alive))
        )


class StepOut(NamedTuple):
    """What one step of all environments produced, before finished ones are reset."""

    obs: dict[str, np.ndarray]  # team -> [E, n_team, obs_dim] float32
    rewards: dict[str, np.ndarray]  # team -> [E, n_team] float32
    touches: np.ndarray  # [E] int64
    terminated: np.ndarray  # [E] bool
    truncated: np.ndarray  # [E] bool
    done: np.ndarray  # [E] bool = terminated | truncated
    num_done: int  # done.sum(), so the caller skips the reset when it is 0
    metrics: dict[str, np.ndarray] | None = None  # name -> [E] (e.g. spread's coverage)
