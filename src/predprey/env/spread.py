"""Cooperative navigation: PettingZoo/mpe2 `simple_spread` semantics.

N agents (one team, "agent") should cover N landmarks without bumping into each other.
Every agent gets reward = (1 - local_ratio) * global + local_ratio * local, where
global = -sum over landmarks of the distance to its nearest agent, and local = -1 for each
other agent it collides with (mpe2 default local_ratio 0.5). Agents: radius 0.15,
acceleration 5, no speed limit; landmarks do not collide; 25-step episodes.
Observation `mpe`: [own vel (2), own pos (2), landmark - own pos (2L), other - own pos
(2(N-1))], i.e. mpe2's without its always-zero communication part; `local`: see
`predprey.env.observe`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from predprey.env.observe import local_dim, local_observe
from predprey.env.scenario import Bodies, Outcome, Scenario
from predprey.env.state import State

OBS_MODES = ("mpe", "local")


@dataclass(frozen=True)
class SpreadParams:
    obs: str = "mpe"
    num_agents: int = 3
    num_landmarks: int | None = None  # None = num_agents
    episode_length: int = 25
    local_ratio: float = 0.5
    agent_size: float = 0.15
    k_agents: int | None = None  # obs local only: nearest other agents seen (default 3)
    k_landmarks: int | None = None  # obs local only: nearest landmarks seen (default 3)

    def __post_init__(self):
        if self.obs not in OBS_MODES:
            raise ValueError(
                f"obs: unknown observation mode {self.obs!r}; choose one of {OBS_MODES}"
            )
        for name, low in (("num_agents", 1), ("num_landmarks", 1), ("episode_length", 1),
                          ("k_agents", 0), ("k_landmarks", 0)):  # fmt: skip
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        lr = self.local_ratio
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 <= lr <= 1:
            raise ValueError(f"local_ratio must be a number in [0, 1], got {lr!r}")
        a = self.agent_size
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 < a < np.inf:
            raise ValueError(f"agent_size must be a positive number, got {a!r}")
        for name in ("k_agents", "k_landmarks"):
            if getattr(self, name) is not None and self.obs != "local":
                raise ValueError(f"{name} applies only to obs 'local', not {self.obs!r}")


class Spread(Scenario):
    name = "spread"

    def __init__(self, params: SpreadParams):
        self.params = p = params
        n = p.num_agents
        self.num_landmarks = n if p.num_landmarks is None else p.num_landmarks
        self.episode_length = p.episode_length
        self.local_ratio = float(p.local_ratio)
        self.teams = ("agent",)
        self.team_sizes = {"agent": n}
        self.obs_mode = p.obs
        self.bodies = Bodies(
            size=np.full(n, float(p.agent_size)),
            accel=np.full(n, 5.0),  # mpe2's default sensitivity
            max_speed=np.full(n, np.inf),
            landmark_size=np.full(self.num_landmarks, 0.05),  # drawn only: landmarks don't collide
            landmarks_collide=False,
        )
        self.k_team = np.array([3 if p.k_agents is None else p.k_agents], np.int64)
        self.k_landmarks = 3 if p.k_landmarks is None else p.k_landmarks
        if p.obs == "mpe":
            self.obs_dims = {"agent": 4 + 2 * self.num_landmarks + 2 * (n - 1)}
        else:
            self.obs_dims = {"agent": int(local_dim(tuple(self.k_team), self.k_landmarks))}
        # others[i] = every agent index but i, in order: [N, N-1]
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int64)

    def reset(self, state: State, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        state.pos[idx] = rng.uniform(-1.0, 1.0, size=(k, self.num_agents, 2))
        state.landmark_pos[idx] = rng.uniform(-1.0, 1.0, size=(k, self.num_landmarks, 2))

    def observe(self, state: State) -> dict[str, np.ndarray]:
        pos, vel, lm = state.pos, state.vel, state.landmark_pos
        E, N = pos.shape[:2]
        if self.obs_mode == "local":
            out = np.empty((E, N, self.obs_dims["agent"]), np.float32)
            starts = np.array([0, N], np.int64)
            local_observe(pos, vel, lm, state.alive, starts, self.k_team, self.k_landmarks, out)
            return {"agent": out}
        to_lm = lm[:, None, :, :] - pos[:, :, None, :]  # [E, N, L, 2]
        to_other = pos[:, self._others] - pos[:, :, None, :]  # [E, N, N-1, 2]
        parts = (vel, pos, to_lm.reshape(E, N, -1), to_other.reshape(E, N, -1))
        return {"agent": np.concatenate(parts, axis=-1).astype(np.float32)}

    def outcome(self, state: State) -> Outcome:
        pos, lm = state.pos, state.landmark_pos
        E, N = pos.shape[:2]
        d_lm = np.linalg.norm(lm[:, :, None, :] - pos[:, None, :, :], axis=-1)  # [E, L, N]
        global_r = -d_lm.min(axis=2).sum(axis=1)  # [E]
        d = np.linalg.norm(pos[:, :, None, :] - pos[:, None, :, :], axis=-1)  # [E, N, N]
        size = self.bodies.size
        hit = d < size[:, None] + size[None, :]
        hit[:, np.arange(N), np.arange(N)] = False
        collisions = hit.sum(axis=2)  # [E, N] other agents each agent touches
        r = (1 - self.local_ratio) * global_r[:, None] - self.local_ratio * collisions
        touches = hit.sum(axis=(1, 2)) // 2  # colliding pairs
        terminated = np.zeros(E, dtype=bool)
        return Outcome({"agent": r.astype(np.float32)}, touches.astype(np.int64), terminated)
