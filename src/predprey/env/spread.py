"""Cooperative navigation: PettingZoo/mpe2 `simple_spread` semantics.

N agents (one team, "agent") should cover N landmarks without bumping into each other.
Every agent gets reward = (1 - local_ratio) * global + local_ratio * local, where
global = -sum over landmarks of the distance to its nearest agent, and local = -1 for each
other agent it collides with (mpe2 default local_ratio 0.5). `speed_cost: c` (not mpe2)
also charges every agent c |v|^2 per step, v its velocity after the step: moving costs a
little, so an agent with nothing left to cover does best standing still. Agents: radius 0.15,
acceleration 5, no speed limit; landmarks do not collide; 25-step episodes.
Observation `mpe`: [own vel (2), own pos (2), landmark - own pos (2L), other - own pos
(2(N-1))], i.e. mpe2's without its always-zero communication part; `local`: see
`predprey.env.observe`.

`density` (agents per unit area; default None = mpe2's world) makes the world grow with N:
the arena is a square of half-width h = 0.5 * sqrt(N / density) (density 1 at N = 4 is
mpe2's 2 x 2 square), agents and landmarks start uniformly inside it, and hard walls keep
agents in (positions clamped, outward velocity dropped; the arena is [0, 2h]^2, which the
local observation centres). Without `density` the plane is open, as in mpe2.

Each step also reports, per env (`info["metrics"]`, state after the step): `coverage`, the
fraction of landmarks with an agent centre within COVER_RADIUS, `landmark_dist`, the mean
distance from a landmark to its nearest agent, and `collisions`, colliding agent pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from predprey.env.grid import GRID_MIN, grid_alloc, grid_box, grid_build, grid_fill, grid_knn
from predprey.env.observe import (
    TARGET_FREE,
    TARGET_MATCHED,
    local_dim,
    local_layout,
    local_observe,
)
from predprey.env.scenario import Bodies, Outcome, Scenario, check_params
from predprey.env.state import State

OBS_MODES = ("mpe", "local")
COVER_RADIUS = 0.1  # a landmark is covered when an agent's centre is this close
# target_rule -> local_observe's code (0: no target slot)
TARGET_CODES = dict(none=0, free=TARGET_FREE, matched=TARGET_MATCHED)
TARGET_RULES = tuple(TARGET_CODES)


def arena_half_width(num_agents: int, density: float | None) -> float:
    """Half-width of the square arena holding `num_agents` at `density` agents per unit
    area; None: mpe2's fixed 2 x 2 square."""
    return 1.0 if density is None else 0.5 * math.sqrt(num_agents / density)


@dataclass(frozen=True)
class SpreadParams:
    obs: str = "mpe"  # observation: mpe (mpe2's) | local (egocentric, any N)
    num_agents: int = 3  # agents of the one team, "agent"
    num_landmarks: int | None = None  # None = num_agents
    episode_length: int = 25  # steps per episode before the time limit
    local_ratio: float = 0.5  # weight of each agent's own collision penalty v the shared reward
    agent_size: float = 0.15  # radius of an agent, world units
    k_agents: int | None = None  # obs local only: nearest other agents seen (default 3)
    k_landmarks: int | None = None  # obs local only: nearest landmarks seen (default 3)
    density: float | None = None  # agents per unit area: the arena grows with N (walled)
    # obs local only: false leaves the own-position feature at 0, so the observation is
    # purely egocentric (seed 004's: own velocity, nearest agents and landmarks); a policy
    # then cannot tie its moves to where it is in a world of a given size (default true)
    own_position: bool | None = None
    # obs local only: each landmark slot also holds the distance from the landmark to its
    # nearest other agent (capped at 1): whether someone else is already there, which an
    # agent seeing few agents cannot tell in a crowd (default false)
    landmark_claims: bool | None = None
    # obs local only: one more slot, a landmark of the agent's own among its 16 nearest.
    # none: no slot; free: the nearest no other agent is nearer to; matched: its landmark in
    # a greedy matching (shortest pair first) of it and its 15 nearest fellow agents (default none)
    target_rule: str | None = None
    # not mpe2: every agent also pays speed_cost x its squared speed each step (default 0)
    speed_cost: float | None = None
    # true: mpe2's discrete action space (predprey.env.vec.MOVES), as in tag
    discrete_actions: bool | None = None

    def __post_init__(self):
        lr = self.local_ratio
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 <= lr <= 1:
            raise ValueError(f"local_ratio must be a number in [0, 1], got {lr!r}")
        check_params(
            self,
            choices=dict(
                obs=("observation mode", OBS_MODES),
                target_rule=("target rule", TARGET_RULES),
            ),
            ints=dict(num_agents=1, num_landmarks=1, episode_length=1, k_agents=0, k_landmarks=0),
            positive=("agent_size", "density"),
            nonnegative=("speed_cost",),
            flags=("own_position", "landmark_claims", "discrete_actions"),
            only_for={name: ("obs", "local") for name in LOCAL_ONLY},
            settings=dict(obs=self.obs),
        )


LOCAL_ONLY = (
    "k_agents",
    "k_landmarks",
    "own_position",
    "landmark_claims",
    "target_rule",
)


class Spread(Scenario):
    name = "spread"
    teams = ("agent",)

    def __init__(self, params: SpreadParams):
        self.params = p = params
        n = p.num_agents
        self.num_landmarks = n if p.num_landmarks is None else p.num_landmarks
        self.episode_length = p.episode_length
        self.local_ratio = float(p.local_ratio)
        self.speed_cost = float(p.speed_cost or 0.0)
        self.team_sizes = {"agent": n}
        self.obs_mode = p.obs
        self.half = h = arena_half_width(n, p.density)
        walled = p.density is not None
        self.bodies = Bodies(
            size=np.full(n, float(p.agent_size)),
            accel=np.full(n, 5.0),  # mpe2's default sensitivity
            max_speed=np.full(n, np.inf),
            landmark_size=np.full(self.num_landmarks, 0.05),  # drawn only: landmarks don't collide
            landmarks_collide=False,
            box=2 * h if walled else 0.0,
            arena=(0.0, 2 * h, 0.0, 2 * h) if walled else (-1.0, 1.0, -1.0, 1.0),
        )
        self.centre = np.full(2, h if walled else 0.0)
        self.k_team = np.array([[3 if p.k_agents is None else p.k_agents]], np.int64)  # [1, 1]
        self.k_landmarks = 3 if p.k_landmarks is None else p.k_landmarks
        self.own_position = p.own_position is not False  # None: the default, true
        self.claims = bool(p.landmark_claims)
        # local_observe's target: 0 no slot, else the rule's code
        self.target = TARGET_CODES[p.target_rule or "none"]
        if p.obs == "mpe":
            self.obs_dims = {"agent": 4 + 2 * self.num_landmarks + 2 * (n - 1)}
        else:
            dim = local_dim(self.k_team[0], self.k_landmarks, self.claims, self.target > 0)
            self.obs_dims = {"agent": int(dim)}
            self.obs_layouts = {"agent": local_layout(self.teams, self.k_team[0],
                                                      self.k_landmarks, self.claims,
                                                      self.target > 0)}  # fmt: skip
        # others[i] = every agent index but i, in order: [N, N-1]
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int64)

    def reset(self, state: State, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        lo, hi = -1.0, 1.0  # mpe2
        if self.params.density is not None:  # inside the walls, where an agent can be
            lo, hi = self.params.agent_size, 2 * self.half - self.params.agent_size
        state.pos[idx] = rng.uniform(lo, hi, size=(k, self.num_agents, 2))
        state.landmark_pos[idx] = rng.uniform(lo, hi, size=(k, self.num_landmarks, 2))

    def observe(self, state: State) -> dict[str, np.ndarray]:
        pos, vel, lm = state.pos, state.vel, state.landmark_pos
        E, N = pos.shape[:2]
        if self.obs_mode == "local":
            out = np.empty((E, N, self.obs_dims["agent"]), np.float32)
            starts = np.array([0, N], np.int64)
            inv_half = 1.0 / self.half if self.own_position else 0.0
            local_observe(pos, vel, lm, state.alive, starts, self.k_team, self.k_landmarks,
                          self.centre, inv_half, self.claims, self.target, out)  # fmt: skip
            return {"agent": out}
        to_lm = lm[:, None, :, :] - pos[:, :, None, :]  # [E, N, L, 2]
        to_other = pos[:, self._others] - pos[:, :, None, :]  # [E, N, N-1, 2]
        parts = (vel, pos, to_lm.reshape(E, N, -1), to_other.reshape(E, N, -1))
        return {"agent": np.concatenate(parts, axis=-1).astype(np.float32)}

    def outcome(self, state: State) -> Outcome:
        E, N = state.pos.shape[:2]
        rew = np.empty((E, N), np.float32)
        pairs = np.empty(E, np.int64)
        coverage, landmark_dist = np.empty(E), np.empty(E)
        spread_outcome(state.pos, state.landmark_pos, self.bodies.size, self.local_ratio,
                       COVER_RADIUS, rew, pairs, coverage, landmark_dist)  # fmt: skip
        if self.speed_cost:
            rew -= np.float32(self.speed_cost) * (state.vel**2).sum(-1)  # [E, N]
        metrics = {"coverage": coverage, "landmark_dist": landmark_dist, "collisions": pairs}
        return Outcome({"agent": rew}, pairs, np.zeros(E, dtype=bool), metrics)


@njit(cache=True)
def spread_outcome(pos, landmark_pos, size, local_ratio, cover_radius, rew, pairs, coverage,
                   landmark_dist):  # fmt: skip
    """mpe2's reward: rew [E, N] = (1 - local_ratio) * -(sum over landmarks of the distance
    to the nearest agent) - local_ratio * (other agents this one overlaps). pairs [E]
    colliding pairs; coverage [E], landmark_dist [E] as in the module docstring. Nearest
    agents and overlaps come from a cell grid: O(N + L) per env."""
    E, N, L = pos.shape[0], pos.shape[1], landmark_pos.shape[1]
    xs, ys, ids, items, cell_of, start, geo = grid_alloc(1, N)
    every = np.empty(0, np.bool_)
    idx, dist = np.empty(1, np.int64), np.empty(1)
    hits = np.empty(N, np.int64)
    reach = 2.0 * size.max()
    for e in range(E):
        m = grid_fill(pos[e], every, 0, N, xs[0], ys[0], ids[0])
        grid_build(xs[0], ys[0], m, items[0], cell_of[0], start[0], geo[0])
        total, covered = 0.0, 0
        for j in range(L):
            grid_knn(landmark_pos[e, j, 0], landmark_pos[e, j, 1], -1, 1, xs[0], ys[0], ids[0],
                     m, items[0], start[0], geo[0], idx, dist)  # fmt: skip
            d = math.sqrt(dist[0])
            total += d
            if d < cover_radius:
                covered += 1
        hits[:] = 0
        n_pairs = 0
        gx = int(geo[0, 3])
        for i in range(N):
            if N < GRID_MIN:
                ix0, ix1, iy0, iy1, lo = 0, 0, 0, 0, i + 1  # all pairs (j > i)
            else:
                ix0, ix1, iy0, iy1 = grid_box(pos[e, i, 0], pos[e, i, 1], reach, geo[0])
            for iy in range(iy0, iy1 + 1):
                for ix in range(ix0, ix1 + 1):
                    if N < GRID_MIN:
                        s0, s1 = lo, N
                    else:
                        q = iy * gx + ix
                        s0, s1 = start[0, q], start[0, q + 1]
                    for s in range(s0, s1):
                        j = s if N < GRID_MIN else ids[0, items[0, s]]
                        if j <= i:
                            continue
                        dx = pos[e, i, 0] - pos[e, j, 0]
                        dy = pos[e, i, 1] - pos[e, j, 1]
                        if math.sqrt(dx * dx + dy * dy) < size[i] + size[j]:
                            hits[i] += 1
                            hits[j] += 1
                            n_pairs += 1
        for i in range(N):
            rew[e, i] = (1.0 - local_ratio) * -total - local_ratio * hits[i]
        pairs[e] = n_pairs
        coverage[e] = covered / L
        landmark_dist[e] = total / L
