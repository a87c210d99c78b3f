"""Predator-prey tag. Preset `mpe` is PettingZoo/mpe2 `simple_tag` exactly.

Agents are ordered predators first, then prey. mpe2's continuous action (5 values)
corresponds to our force `(a[2] - a[1], a[4] - a[3])`, scaled by the agent's acceleration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from predprey.env.physics import touching_pairs
from predprey.env.scenario import Bodies, Outcome, Scenario
from predprey.env.state import State

PRESETS = ("mpe", "seed")
OBS_MODES = ("mpe", "local", "rays")


@dataclass(frozen=True)
class TagParams:
    preset: str = "mpe"
    obs: str | None = None  # None = the preset's own mode (mpe: "mpe", seed: "rays")
    num_predators: int | None = None  # None = preset default (mpe 3, seed 5)
    num_prey: int | None = None  # (mpe 1, seed 5)
    num_obstacles: int | None = None  # (mpe 2, seed 0)
    episode_length: int | None = None  # (mpe 25, seed 200)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"preset: unknown preset {self.preset!r}; choose one of {PRESETS}")
        if self.obs is not None and self.obs not in OBS_MODES:
            raise ValueError(
                f"obs: unknown observation mode {self.obs!r}; choose one of {OBS_MODES}"
            )
        for name, low in (("num_predators", 1), ("num_prey", 1), ("num_obstacles", 0),
                          ("episode_length", 1)):  # fmt: skip
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")


MPE_DEFAULTS = dict(obs="mpe", num_predators=3, num_prey=1, num_obstacles=2, episode_length=25)


def resolve(params: TagParams, defaults: dict) -> dict:
    """The preset's defaults overridden by whatever the user set."""
    out = dict(defaults)
    for k in defaults:
        v = getattr(params, k)
        if v is not None:
            out[k] = v
    return out


class Tag(Scenario):
    name = "tag"

    def __init__(self, params: TagParams):
        self.params = params
        if params.preset != "mpe":
            raise ValueError(f"preset {params.preset!r} is not available")
        r = resolve(params, MPE_DEFAULTS)
        self.obs_mode = r["obs"]
        self.n_pred, self.n_prey = r["num_predators"], r["num_prey"]
        self.num_landmarks = r["num_obstacles"]
        self.episode_length = r["episode_length"]
        self.teams = ("predator", "prey")
        self.team_sizes = {"predator": self.n_pred, "prey": self.n_prey}
        pred = np.arange(self.n_pred + self.n_prey) < self.n_pred
        self.bodies = Bodies(
            size=np.where(pred, 0.075, 0.05),
            accel=np.where(pred, 3.0, 4.0),
            max_speed=np.where(pred, 1.0, 1.3),
            landmark_size=np.full(self.num_landmarks, 0.2),
        )
        n, L = self.n_pred + self.n_prey, self.num_landmarks
        base = 4 + 2 * L + 2 * (n - 1)
        self.obs_dims = {"predator": base + 2 * self.n_prey, "prey": base + 2 * (self.n_prey - 1)}

    def reset(self, state: State, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        state.pos[idx] = rng.uniform(-1.0, 1.0, size=(k, self.num_agents, 2))
        state.landmark_pos[idx] = rng.uniform(-0.9, 0.9, size=(k, self.num_landmarks, 2))

    def observe(self, state: State) -> dict[str, np.ndarray]:
        E = state.pos.shape[0]
        pred = np.empty((E, self.n_pred, self.obs_dims["predator"]), np.float32)
        prey = np.empty((E, self.n_prey, self.obs_dims["prey"]), np.float32)
        mpe_observe(state.pos, state.vel, state.landmark_pos, self.n_pred, pred, prey)
        return {"predator": pred, "prey": prey}

    def outcome(self, state: State) -> Outcome:
        touches, per_agent = touching_pairs(state.pos, state.alive, self.bodies.size, self.n_pred)
        pred_r, prey_r = mpe_rewards(state.pos, per_agent, touches, self.n_pred)
        terminated = np.zeros(state.pos.shape[0], dtype=bool)
        return Outcome({"predator": pred_r, "prey": prey_r}, touches, terminated)


@njit(cache=True)
def mpe_observe(pos, vel, landmark_pos, n_pred, out_pred, out_prey):
    """simple_tag observation of every agent:
    [own vel (2), own pos (2), landmark - own pos (2L), other - own pos (2(N-1)),
     velocity of every other prey (2 each)]
    """
    E, N = pos.shape[0], pos.shape[1]
    L = landmark_pos.shape[1]
    for e in range(E):
        for i in range(N):
            out = out_pred[e, i] if i < n_pred else out_prey[e, i - n_pred]
            out[0] = vel[e, i, 0]
            out[1] = vel[e, i, 1]
            out[2] = pos[e, i, 0]
            out[3] = pos[e, i, 1]
            k = 4
            for j in range(L):
                out[k] = landmark_pos[e, j, 0] - pos[e, i, 0]
                out[k + 1] = landmark_pos[e, j, 1] - pos[e, i, 1]
                k += 2
            for j in range(N):
                if j != i:
                    out[k] = pos[e, j, 0] - pos[e, i, 0]
                    out[k + 1] = pos[e, j, 1] - pos[e, i, 1]
                    k += 2
            for j in range(n_pred, N):
                if j != i:
                    out[k] = vel[e, j, 0]
                    out[k + 1] = vel[e, j, 1]
                    k += 2


@njit(cache=True, inline="always")
def _bound(x):
    # mpe2's penalty for prey leaving the screen, per coordinate of |pos|
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10.0
    return min(math.exp(2.0 * x - 2.0), 10.0)


@njit(cache=True)
def mpe_rewards(pos, per_agent, touches, n_pred):
    """Predators: +10 per touching pair (shared by all). Prey: -10 per touching predator - bound."""
    E, N = pos.shape[0], pos.shape[1]
    pred = np.empty((E, n_pred), np.float32)
    prey = np.empty((E, N - n_pred), np.float32)
    for e in range(E):
        for i in range(n_pred):
            pred[e, i] = 10.0 * touches[e]
        for j in range(n_pred, N):
            prey[e, j - n_pred] = (
                -10.0 * per_agent[e, j] - _bound(abs(pos[e, j, 0])) - _bound(abs(pos[e, j, 1]))
            )
    return pred, prey
