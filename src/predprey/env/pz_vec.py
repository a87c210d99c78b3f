"""E copies of a foreign PettingZoo world stepped in worker processes, with the interface of
`predprey.env.vec.VecEnv`: team dicts of arrays [E, n, ...], auto-reset with the final
observation in `info`, terminated apart from truncated.

The process pool is gymnasium's `AsyncVectorEnv` (one per worker process, each running a
`WorldCopies` of a few copies), so a worker that dies is found alone: its copies' episodes end
there (truncated), the worker is started again with fresh seeds from `rng`, and the restart
is logged and counted (`restarts`, `info["worker_restarts"]`). Copy i is seeded `seed + i`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os

import numpy as np
from gymnasium.vector import AsyncVectorEnv

from predprey.env.pz_world import World, WorldCopies
from predprey.env.state import State
from predprey.env.vec import StepResult

log = logging.getLogger(__name__)
MAX_RESTARTS = 100  # a world that kills its worker every time is an error, not bad luck
DEAD = (EOFError, ConnectionError, BrokenPipeError)  # what a dead worker's pipe raises


class PettingZooVecEnv:
    def __init__(self, world: World, num_envs: int = 1, seed: int | None = 0):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.scenario = world
        self.num_envs = E = int(num_envs)
        self.teams = world.teams
        self.team_sizes = world.team_sizes
        self.obs_dims = world.obs_dims
        self.act_dims = world.act_dims
        self.discrete = world.discrete
        self.episode_length = world.episode_length
        self.bodies = world.bodies
        self.num_agents = world.num_agents
        self.slices, first = {}, 0
        for t in self.teams:
            self.slices[t] = slice(first, first + self.team_sizes[t])
            first += self.team_sizes[t]
        self.has_positions = world.has_positions
        self.agents_may_leave = True  # info["alive"] masks the agents that left (learners)
        self.rng = np.random.default_rng(seed)
        self.state = State.zeros(E, self.num_agents, world.num_landmarks)  # positions, t
        workers = world.params.workers or min(E, os.cpu_count() or 1)
        self.copies = np.array_split(np.arange(E), min(workers, E))  # worker -> copy indices
        self.pools: list[AsyncVectorEnv | None] = [None] * len(self.copies)
        self.restarts = 0
        self._obs: dict[str, np.ndarray] = {}
        self.reset(seed=seed)

    @property
    def params(self):
        return self.scenario.params

    def _start(self, w: int) -> AsyncVectorEnv:
        fn = functools.partial(WorldCopies, self.scenario, len(self.copies[w]))
        return AsyncVectorEnv([fn])  # the platform default: fork on Linux

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset every copy (copy i with seed `seed + i` when a seed is given)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        for w, idx in enumerate(self.copies):
            if self.pools[w] is None:
                self.pools[w] = self._start(w)
            s = None if seed is None else int(seed) + int(idx[0])
            out, _ = self.pools[w].reset(seed=s)
            self._store(idx, out)
        self.state.t[:] = 0
        self.state.alive[:] = True
        return self.observe()

    def observe(self) -> dict[str, np.ndarray]:
        return {t: self._obs[t].copy() for t in self.teams}

    def _store(self, idx: np.ndarray, out: dict[str, np.ndarray]) -> None:
        """Keep a worker's observations after a reset or step (out: [1, k, ...] each)."""
        if not self._obs:
            self._obs = {
                t: np.zeros((self.num_envs, n, self.obs_dims[t]), np.float32)
                for t, n in self.team_sizes.items()
            }
        for t in self.teams:
            self._obs[t][idx] = out[f"obs/{t}"][0]
        self.state.pos[idx] = out["pos"][0]
        self.state.landmark_pos[idx] = out["landmark_pos"][0]

    def step(self, actions: dict[str, np.ndarray]) -> StepResult:
        E = self.num_envs
        if not isinstance(actions, dict) or set(actions) != set(self.teams):
            raise ValueError(f"actions must be a dict keyed by teams {list(self.teams)}")
        for t in self.teams:
            want = (E, self.team_sizes[t], self.act_dims[t])
            if np.shape(actions[t]) != want:
                raise ValueError(
                    f"actions['{t}'] has shape {np.shape(actions[t])}, expected {want}"
                )
        before = {t: self._obs[t].copy() for t in self.teams}  # final obs of a dead worker's copies
        dead = []
        for w, idx in enumerate(self.copies):
            act = {t: np.asarray(actions[t][idx], np.float32)[None] for t in self.teams}
            try:
                self.pools[w].step_async(act)
            except DEAD:
                dead.append(w)
        parts = {}
        for w in range(len(self.copies)):
            if w in dead:
                continue
            try:
                parts[w] = self.pools[w].step_wait()[0]
            except DEAD:
                dead.append(w)
        final = {t: np.empty_like(v) for t, v in before.items()}
        rew = {t: np.zeros((E, n), np.float32) for t, n in self.team_sizes.items()}
        alive = {t: np.zeros((E, n), np.float32) for t, n in self.team_sizes.items()}
        terminated, truncated = np.zeros(E, bool), np.zeros(E, bool)
        final_pos = self.state.pos.copy()
        for w, out in parts.items():
            idx = self.copies[w]
            for t in self.teams:
                final[t][idx] = out[f"final/{t}"][0]
                rew[t][idx] = out[f"rew/{t}"][0]
                alive[t][idx] = out[f"alive/{t}"][0]
            terminated[idx] = out["terminated"][0] > 0
            truncated[idx] = out["truncated"][0] > 0
            final_pos[idx] = out["final_pos"][0]
            self._store(idx, out)
        for w in dead:  # the copies' episodes end here, cut short: truncated
            idx = self.copies[w]
            for t in self.teams:
                final[t][idx] = before[t][idx]
            truncated[idx] = True
            self._restart(w)
        done = terminated | truncated
        final_alive = np.concatenate([alive[t] > 0 for t in self.teams], 1)  # [E, N]
        self.state.t += 1
        self.state.t[done] = 0
        self.state.alive[:] = final_alive
        self.state.alive[done] = True
        info = {
            "terminated": terminated,
            "truncated": truncated,
            "touches": self._touches(final_pos, final_alive),
            "final_obs": final,
            "final_pos": final_pos,  # [E, N, 2] zeros where the world has no positions
            "final_alive": final_alive,
            "alive": alive,  # team -> [E, n] 1 where the agent took part in the step
            "metrics": {},
            "worker_restarts": len(dead),
        }
        return StepResult(self.observe(), rew, done, info)

    def _touches(self, pos: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """[E] touching predator-prey pairs (bodies overlapping, as tag counts them) where the
        world has positions and teams `predator` and `prey`; zeros elsewhere."""
        if not self.has_positions or not {"predator", "prey"} <= set(self.teams):
            return np.zeros(self.num_envs, np.int64)
        p, q = self.slices["predator"], self.slices["prey"]
        gap = pos[:, p, None, :] - pos[:, None, q, :]  # [E, n_pred, n_prey, 2]
        reach = self.bodies.size[p][:, None] + self.bodies.size[q][None, :]  # [n_pred, n_prey]
        dist = np.sqrt(np.einsum("epqd,epqd->epq", gap, gap))  # as mpe2's is_collision
        touch = (dist < reach) & alive[:, None, q]
        return touch.sum((1, 2)).astype(np.int64)

    def _restart(self, w: int) -> None:
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise RuntimeError(f"env workers died {self.restarts} times; giving up")
        idx = self.copies[w]
        log.warning(
            "env worker %d (copies %d-%d) died; restarting it (restart %d)",
            w, idx[0], idx[-1], self.restarts,
        )  # fmt: skip
        with contextlib.suppress(Exception):  # the pool of a dead worker may fail to close
            self.pools[w].close(terminate=True)
        self.pools[w] = self._start(w)
        out, _ = self.pools[w].reset(seed=int(self.rng.integers(2**31)))
        self._store(idx, out)

    def worker_pids(self) -> list[int]:
        """The process id of each worker (tests kill one)."""
        return [p.processes[0].pid for p in self.pools]

    def close(self) -> None:
        for p in self.pools:
            if p is not None:  # ask the workers to close their worlds and exit
                p.close()
        self.pools = [None] * len(self.copies)

    def __del__(self):
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
