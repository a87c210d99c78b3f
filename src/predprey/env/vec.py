"""The vector environment: E worlds stepped together; finished ones reset themselves.

Two ways through a step, with the same results:
- fused: a scenario whose `fused_step` attribute is a callable `(state, team_actions) -> StepOut`
  does force, physics, outcome, time limit and observation in one kernel call (tag's mpe preset);
  this keeps the per-step Python and dispatch overhead small, which is what counts at small E.
- generic: `physics_step`, then the scenario's `outcome` and `observe` (every other scenario,
  or `VecEnv(..., fused=False)`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from predprey.env.grid import GRID_MIN
from predprey.env.physics import grid_contacts, physics_step
from predprey.env.scenario import Scenario
from predprey.env.state import State, StepOut

# mpe2's discrete action space, Discrete(5): the force of each choice (a full push along one
# axis, as mpe2's discrete actions set u = +-1 there)
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float64)  # [5, 2]


def forces_to_choices(forces: np.ndarray) -> np.ndarray:
    """Forces [..., 2] -> one-hot [..., 5] of the move closest in direction (no-op for a
    zero force): what a scripted policy does in the discrete action space."""
    scores = np.concatenate([np.full((*forces.shape[:-1], 1), 1e-9), forces @ MOVES[1:].T], -1)
    return np.eye(len(MOVES), dtype=np.float32)[scores.argmax(-1)]


class StepResult(NamedTuple):
    obs: dict[str, np.ndarray]  # team -> [E, n_team, obs_dim] float32 (after auto-reset)
    reward: dict[str, np.ndarray]  # team -> [E, n_team] float32
    done: np.ndarray  # [E] bool = terminated | truncated
    # terminated [E], truncated [E], touches [E], final_obs {team: [E, n, d]} (before the reset),
    # final_pos [E, N, 2] and final_alive [E, N] (after this step, before the reset), metrics
    # {name: [E]} the scenario's per-step task measures (after this step, before the reset)
    info: dict[str, Any]


class VecEnv:
    def __init__(
        self, scenario: Scenario, num_envs: int = 1, seed: int | None = 0, fused: bool = True
    ):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.scenario = scenario
        self.num_envs = int(num_envs)
        self.teams = scenario.teams
        self.team_sizes = dict(scenario.team_sizes)
        self.obs_dims = dict(scenario.obs_dims)
        self.act_dim = 2
        # forces in [-1, 1]^2, or with `discrete_actions` scores of mpe2's 5 MOVES
        discrete = bool(getattr(scenario.params, "discrete_actions", None))
        self.act_dims = {t: len(MOVES) if discrete else 2 for t in self.teams}
        self.discrete = frozenset(self.teams if discrete else ())  # teams acting discretely
        self.episode_length = scenario.episode_length
        self.bodies = scenario.bodies
        self.slices = scenario.team_slices()
        self.num_agents = scenario.num_agents
        self._act_shapes = [
            (t, (self.num_envs, self.team_sizes[t], self.act_dims[t])) for t in self.teams
        ]
        self._fused = getattr(scenario, "fused_step", None) if fused else None
        self.rng = np.random.default_rng(seed)
        self.state = State.zeros(self.num_envs, self.num_agents, scenario.num_landmarks)
        self.reset()

    @property
    def params(self):
        return self.scenario.params

    @property
    def fused(self) -> bool:
        """Whether steps take the scenario's fused one-kernel path."""
        return self._fused is not None

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

    def _team_actions(self, actions: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Team action dict -> per-team float64 C-ordered arrays [E, n_team, 2], in team order
        (one array type, so the kernels are compiled once); discrete: the argmax's MOVES."""
        try:
            keys_ok = actions.keys() == self.team_sizes.keys()
        except AttributeError:
            keys_ok = False
        if not keys_ok:
            raise ValueError(
                f"actions must be a dict keyed by teams {list(self.teams)}, got {actions!r:.80}"
            )
        out = []
        for team, want in self._act_shapes:
            a = np.ascontiguousarray(actions[team], dtype=np.float64)
            if a.shape != want:
                raise ValueError(f"actions['{team}'] has shape {a.shape}, expected {want}")
            out.append(MOVES[a.argmax(-1)] if self.discrete else a)
        return out

    def _step_generic(self, actions: list[np.ndarray]) -> StepOut:
        s, b = self.state, self.bodies
        force = np.empty_like(s.pos)  # [E, N, 2] clipped action times acceleration
        for (team, _), a in zip(self._act_shapes, actions, strict=True):  # a: [E, n, 2]
            np.clip(a, -1.0, 1.0, out=force[:, self.slices[team]])
        force *= b.accel[None, :, None]
        lm, lm_size = s.landmark_pos, b.landmark_size  # [E, L, 2], [L]
        if not b.landmarks_collide:  # e.g. spread's targets: physics sees no landmarks
            lm, lm_size = lm[:, :0], lm_size[:0]
        many = self.num_agents >= GRID_MIN  # agent-agent contacts from a grid, not all pairs
        if many:
            grid_contacts(s.pos, s.alive, b.size, b.contact_force, b.contact_margin, force)
        physics_step(
            s.pos, s.vel, force, s.alive, b.size, b.max_speed, lm, lm_size,
            b.dt, b.damping, b.contact_force, b.contact_margin, b.box, not many,
        )  # fmt: skip
        s.t += 1
        out = self.scenario.outcome(s)
        terminated = out.terminated
        # a capture on the last step is terminal, not a truncation
        truncated = (s.t >= self.episode_length) & ~terminated
        done = terminated | truncated
        return StepOut(
            self.observe(), out.rewards, out.touches, terminated, truncated, done,
            int(np.count_nonzero(done)), out.metrics,
        )  # fmt: skip

    def step(self, actions: dict[str, np.ndarray]) -> StepResult:
        acts = self._team_actions(actions)
        s = self.state
        out = self._fused(s, acts) if self._fused is not None else self._step_generic(acts)
        info = {
            "terminated": out.terminated,
            "truncated": out.truncated,
            "touches": out.touches,
            "final_obs": out.obs,
            # positions after this step, before any auto-reset (for recording trajectories)
            "final_pos": s.pos.copy(),  # [E, N, 2]
            "final_alive": s.alive.copy(),  # [E, N]
            "metrics": out.metrics or {},
        }
        obs = out.obs
        if out.num_done:
            self._reset_envs(np.flatnonzero(out.done))
            obs = self.observe()
        return StepResult(obs, out.rewards, out.done, info)
