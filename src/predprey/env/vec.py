"""The vector environment: E worlds stepped together; finished ones reset themselves."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from predprey.env.physics import as_force, physics_step
from predprey.env.scenario import Scenario
from predprey.env.state import State


class StepResult(NamedTuple):
    obs: dict[str, np.ndarray]  # team -> [E, n_team, obs_dim] float32 (after auto-reset)
    reward: dict[str, np.ndarray]  # team -> [E, n_team] float32
    done: np.ndarray  # [E] bool = terminated | truncated
    info: dict[str, Any]  # terminated [E], truncated [E], touches [E], final_obs {team: [E, n, d]}


class VecEnv:
    def __init__(self, scenario: Scenario, num_envs: int = 1, seed: int | None = 0):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.scenario = scenario
        self.num_envs = int(num_envs)
        self.teams = scenario.teams
        self.team_sizes = dict(scenario.team_sizes)
        self.obs_dims = dict(scenario.obs_dims)
        self.act_dim = 2
        self.episode_length = scenario.episode_length
        self.bodies = scenario.bodies
        self.slices = scenario.team_slices()
        self.num_agents = scenario.num_agents
        self.rng = np.random.default_rng(seed)
        self.state = State.zeros(self.num_envs, self.num_agents, scenario.num_landmarks)
        self.reset()

    @property
    def params(self):
        return self.scenario.params

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_envs(np.arange(self.num_envs))
        return self.observe()

    def _reset_envs(self, idx: np.ndarray) -> None:
        s = self.state
        s.vel[idx] = 0.0
        s.t[idx] = 0
        s.alive[idx] = True
        self.scenario.reset(s, idx, self.rng)

    def observe(self) -> dict[str, np.ndarray]:
        return self.scenario.observe(self.state)

    def _force(self, actions: dict[str, np.ndarray]) -> np.ndarray:
        """Team action dict -> total action force [E, N, 2] float64."""
        if set(actions) != set(self.teams):
            raise ValueError(
                f"actions must be keyed by teams {list(self.teams)}, got {list(actions)}"
            )
        parts = []
        for team in self.teams:
            a = np.asarray(actions[team])
            want = (self.num_envs, self.team_sizes[team], 2)
            if a.shape != want:
                raise ValueError(f"actions['{team}'] has shape {a.shape}, expected {want}")
            parts.append(a)
        a = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return as_force(a, self.bodies.accel)

    def step(self, actions: dict[str, np.ndarray]) -> StepResult:
        s, b = self.state, self.bodies
        force = self._force(actions)  # [E, N, 2]
        physics_step(
            s.pos, s.vel, force, s.alive, b.size, b.max_speed, s.landmark_pos, b.landmark_size,
            b.dt, b.damping, b.contact_force, b.contact_margin, b.box,
        )  # fmt: skip
        s.t += 1
        out = self.scenario.outcome(s)
        terminated = out.terminated
        truncated = (
            s.t >= self.episode_length
        ) & ~terminated  # a capture on the last step is terminal
        done = terminated | truncated
        obs = self.observe()
        info = {
            "terminated": terminated,
            "truncated": truncated,
            "touches": out.touches,
            "final_obs": obs,
        }
        if done.any():
            self._reset_envs(np.flatnonzero(done))
            obs = self.observe()
        return StepResult(obs, out.rewards, done, info)
