"""Trajectory recording for a few chosen environment indices of a `VecEnv`.

The recorder keeps the positions of the current episode of each recorded env and hands
back finished episodes as plain arrays in the run-directory episode format (see
`predprey.rundir`); writing them is the caller's job, so a remote runner can record too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Episode:
    env_index: int
    episode: int  # per-env episode number, counted from 0
    arrays: dict[str, Any]  # pos, alive, landmark_pos, agent_size, ..., meta (dict)


class Recorder:
    """Record every `every`-th episode of envs `env_indices` (`every` = 0: keep only the
    latest finished episode, for `flush`)."""

    def __init__(self, env, env_indices: Sequence[int], every: int = 0):
        self.env = env
        self.env_indices = [int(i) for i in env_indices if 0 <= int(i) < env.num_envs]
        self.every = int(every)
        self.episode = {e: 0 for e in self.env_indices}  # episode number now running
        self.partial = {e: False for e in self.env_indices}  # started before a restore
        self.last: dict[int, Episode] = {}  # latest finished episode, not yet handed out
        self._start_all()

    def _start(self, e: int) -> None:
        s = self.env.state
        self.pos[e] = [s.pos[e].astype(np.float32)]
        self.alive[e] = [s.alive[e].copy()]
        self.touches[e] = []
        self.landmarks[e] = s.landmark_pos[e].astype(np.float32)

    def _start_all(self) -> None:
        self.pos: dict[int, list] = {}
        self.alive: dict[int, list] = {}
        self.touches: dict[int, list] = {}
        self.landmarks: dict[int, np.ndarray] = {}
        for e in self.env_indices:
            self._start(e)

    def restart(self, episode_numbers: dict[int, int]) -> None:
        """After restoring env state: the running episodes were not seen from their start,
        so they are not recorded; numbering continues from `episode_numbers`."""
        for e in self.env_indices:
            self.episode[e] = int(episode_numbers.get(e, 0))
            self.partial[e] = True
        self._start_all()

    def step(self, info: dict[str, Any], done: np.ndarray, env_steps: int) -> list[Episode]:
        """Call after every `env.step`; returns the episodes due for writing."""
        due = []
        for e in self.env_indices:
            self.pos[e].append(info["final_pos"][e].astype(np.float32))
            self.alive[e].append(info["final_alive"][e].copy())
            self.touches[e].append(int(info["touches"][e]))
            if not done[e]:
                continue
            if not self.partial[e]:
                ep = self._finish(e, env_steps)
                if self.every > 0 and ep.episode % self.every == 0:
                    due.append(ep)
                    self.last.pop(e, None)
                else:
                    self.last[e] = ep
            self.partial[e] = False
            self.episode[e] += 1
            self._start(e)
        return due

    def flush(self) -> list[Episode]:
        """The latest finished episode of each env that was not handed out yet."""
        out = [self.last[e] for e in sorted(self.last)]
        self.last.clear()
        return out

    def _finish(self, e: int, env_steps: int) -> Episode:
        env, b = self.env, self.env.bodies
        meta = {
            "scenario": env.scenario.name,
            "teams": list(env.teams),
            "team_sizes": [int(env.team_sizes[t]) for t in env.teams],
            "arena": [float(x) for x in b.arena],
            "env_steps": int(env_steps),
        }
        if env.scenario.name == "pettingzoo":  # a foreign world: which, and can it be drawn
            meta.update(world=env.params.make, positions=bool(env.has_positions))
        arrays = {
            "pos": np.stack(self.pos[e]),  # [T+1, N, 2]
            "alive": np.stack(self.alive[e]),  # [T+1, N]
            "landmark_pos": self.landmarks[e],  # [L, 2]
            "agent_size": np.asarray(b.size, np.float32),
            "landmark_size": np.asarray(b.landmark_size, np.float32),
            "team_sizes": np.array(meta["team_sizes"], np.int64),
            "touches": np.array(self.touches[e], np.int64),  # [T]
            "meta": meta,
        }
        return Episode(e, self.episode[e], arrays)


def write_episodes(run, source: str, episodes: Sequence[Episode]) -> list:
    """Write recorded episodes into run directory `run` (a `RunDir`); returns the paths."""
    return [run.write_episode(source, ep.episode, ep.env_index, **ep.arrays) for ep in episodes]
