"""The vector environment: E worlds stepped together; finished ones reset themselves.

Two ways through a step, with the same results:
- fused: a scenario whose `fused_step` attribute is a callable
  `(state, team_actions, tile) -> StepOut` does force, physics, outcome, time limit and
  observation in one kernel call (tag's mpe preset); this keeps the per-step Python and
  dispatch overhead small, which is what counts at small E.
- generic: `physics_step`, then the scenario's `outcome` and `observe` (every other scenario,
  or `VecEnv(..., fused=False)`).

Large batches allocate megabytes of outputs every step. glibc's malloc hands such blocks back
to the kernel when freed (above its mmap or trim threshold), so the next step page-faults
them in again: at E = 8,192 that was up to ~700 minor faults per step, over 40% of the step's
CPU time in the kernel, half the per-env rate of E = 1,024 (docs/benchmarks-update-env.md). A VecEnv
therefore sets both thresholds once per process (`keep_freed_memory`): freed blocks stay in
the heap for the next step (setting only one of the two is worse: it also stops glibc's own
adjustment of the other).

Both run the envs in tiles of `tile` envs (default TILE_ENVS): every phase of the step runs
on one tile before the next, so a tile's state, scratch and outputs can stay in cache between
phases when the whole batch's would not. Envs are independent, so the results do not depend
on the tile size (tests/test_env_tiles.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
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


# Envs per tile. Measured here (docs/benchmarks-update-env.md, CPU time, envs taking turns):
# with freed memory kept (below), tiles of 128-1,024 envs are 0-10% slower than none up to
# E = 8,192 (7 MB of state and outputs, within this CPU's 32 MB L3) and equal at 65,536;
# batches above 8,192 envs are still cut into 8,192-env tiles (7 MB each).
TILE_ENVS = 8192
# glibc mallopt: blocks below MMAP_THRESHOLD come from the heap; freed heap memory above
# TRIM_THRESHOLD at its top goes back to the kernel (so at most this much is kept)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD, MMAP_THRESHOLD = 256 << 20, 32 << 20  # 32 MiB: glibc's largest mmap threshold
_kept = False


def keep_freed_memory() -> bool:
    """Once per process on glibc: keep freed blocks of up to 32 MiB in the heap (see the
    module docstring). Returns whether the thresholds are set."""
    global _kept
    if not _kept and sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            _kept = bool(ok and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept


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
        self,
        scenario: Scenario,
        num_envs: int = 1,
        seed: int | None = 0,
        fused: bool = True,
        tile: int = TILE_ENVS,
    ):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if int(tile) != tile or tile < 1:
            raise ValueError(f"tile must be a positive integer, got {tile!r}")
        self.tile = int(tile)  # envs per tile; >= num_envs: the whole batch at once
        keep_freed_memory()
        self.scenario = scenario
        self.num_envs = int(num_envs)
        self.teams = scenario.teams
        self.team_sizes = dict(scenario.team_sizes)
        self.obs_dims = dict(scenario.obs_dims)
        self.obs_layouts = dict(scenario.obs_layouts)  # team -> entity slots (obs local)
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

    @property
    def scratch_bytes_per_env(self) -> int | None:
        """Bytes of scratch the fused kernel keeps per env of a tile; None on the generic path
        (NumPy temporaries: `predprey bench env` measures them as peak_alloc_bytes_per_env)."""
        return getattr(self._fused, "scratch_bytes_per_env", None)

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
        return self._by_tiles(lambda s, sl: self.scenario.observe(s))

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
        """Physics, outcome and observation a tile of envs at a time."""
        out = self._by_tiles(lambda s, sl: self._step_tile(s, [a[sl] for a in actions]))
        return out._replace(num_done=int(np.count_nonzero(out.done)))

    def _by_tiles(self, fn):
        """fn(state, rows) on each tile's state (views of rows `rows` of every array), its
        outputs (arrays [tile, ...], in dicts and tuples) gathered into arrays [E, ...]; a
        single tile when tile >= E (fn's arrays as they come)."""
        E, tile, s = self.num_envs, self.tile, self.state
        if tile >= E:
            return fn(s, slice(None))
        full = None
        for e0 in range(0, E, tile):
            sl = slice(e0, min(e0 + tile, E))
            out = fn(State(s.pos[sl], s.vel[sl], s.landmark_pos[sl], s.t[sl], s.alive[sl]), sl)
            if full is None:  # outputs for all E envs, shaped like the first tile's
                full = _empty_like_rows(out, E)
            for dst, src in zip(_arrays(full), _arrays(out), strict=True):
                dst[sl] = src
        return full

    def _step_tile(self, s: State, actions: list[np.ndarray]) -> StepOut:
        """One step of the envs of `s` (all of them, or a tile's views) with their actions."""
        b = self.bodies
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
            self.scenario.observe(s), out.rewards, out.touches, terminated, truncated, done,
            int(np.count_nonzero(done)), out.metrics,
        )  # fmt: skip

    def step(self, actions: dict[str, np.ndarray]) -> StepResult:
        acts = self._team_actions(actions)
        s = self.state
        if self._fused is not None:
            out = self._fused(s, acts, self.tile)
        else:
            out = self._step_generic(acts)
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


def _arrays(x) -> list[np.ndarray]:
    """The arrays in x (an array, or dicts and tuples of them), in a fixed order."""
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, dict | tuple):
        return [a for v in (x.values() if isinstance(x, dict) else x) for a in _arrays(v)]
    return []


def _empty_like_rows(x, rows: int):
    """x with every array replaced by an empty one of `rows` rows (envs)."""
    if isinstance(x, np.ndarray):
        return np.empty((rows, *x.shape[1:]), x.dtype)
    if isinstance(x, dict):
        return {k: _empty_like_rows(v, rows) for k, v in x.items()}
    if isinstance(x, tuple):
        parts = [_empty_like_rows(v, rows) for v in x]
        return type(x)(*parts) if hasattr(x, "_fields") else tuple(parts)
    return x
