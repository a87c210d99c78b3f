"""A Runner steps a vector environment with the current actors and returns transitions.

It is self-contained and built from `(config, seed)` alone, so the single-process trainer
and a remote (Ray) runner use the same code. Transitions follow
`predprey.learn.spec.transition_spec`: `next_obs` is the pre-reset final observation and
`terminated` excludes time-limit truncation, so the learner bootstraps correctly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from predprey.config import Config
from predprey.env import scripted
from predprey.learn import packing
from predprey.learn.nstep import NStepWindow
from predprey.learn.spec import team_specs, transition_spec
from predprey.recorder import Episode, Recorder


@dataclass
class EpisodeStats:
    """Episodes that finished during one `collect` call (k of them)."""

    returns: dict[str, np.ndarray]  # team -> [k], episode reward summed, mean over team agents
    touches: np.ndarray  # [k] touching predator-prey pairs summed over the episode
    lengths: np.ndarray  # [k] steps

    @property
    def count(self) -> int:
        return len(self.lengths)


class CollectResult(NamedTuple):
    transitions: dict[str, np.ndarray]  # transition_spec fields, [steps * E, ...]
    episodes: EpisodeStats
    recorded: list[Episode]  # trajectories due for writing
    env_steps: int  # steps * E


@dataclass
class Timers:
    act: float = 0.0  # seconds spent choosing actions
    env: float = 0.0  # seconds spent stepping the environments


class Runner:
    """Owns a VecEnv and the actors that drive it.

    `actors` defaults to a fresh `ActorSet`; the single-process trainer passes its
    `Learner` instead so acting always uses the live weights without copying them.
    `training=False` (simulate) leaves out what only training does: the scripted opponents
    of `train.scripted_fraction`.
    """

    def __init__(
        self,
        config: Config,
        seed: int,
        actors: Any = None,
        record_envs: tuple[int, ...] = (),
        record_every: int = 0,
        with_done: bool = False,
        training: bool = True,
    ):
        self.config = config
        self.env = config.env.make(seed=seed)
        self.teams = team_specs(self.env)
        self.spec = transition_spec(self.teams)
        if with_done:  # on-policy rollouts: where episodes end, to cut the GAE trace
            self.spec["done"] = ((), "float32")
        n_step = getattr(config.algo, "n_step", 1)
        # n-step rows (algo.n_step > 1): each row n - 1 vector steps late, with its discount
        self.nstep = None
        if n_step > 1 and training:
            gammas = {t.name: config.algo.gamma_of(t.name) for t in self.teams}
            self.nstep = NStepWindow(n_step, gammas)
            self.spec.update({k: ((), "float32") for k in self.nstep.discounts})
        if actors is None:
            from predprey.learn.attention import build_actors

            actors = build_actors(self.teams, config.algo)
        self.actors = actors
        # fields the actors report for each step they act in (PPO: log-probabilities; in
        # opponent-mixing envs they are the overwritten sample's, rows PPO's `own` mask drops)
        self.extra = hasattr(actors, "extras")
        if self.extra:
            self.spec.update(actors.extra_spec())
        self.version = 0
        self.recorder = Recorder(self.env, record_envs, record_every)
        self._packed: dict[str, np.ndarray] | None = None  # collect(packed=True)'s arrays
        self.timers = Timers()
        E = self.env.num_envs
        self.obs = self.env.observe()
        self.ep_return = {t.name: np.zeros((E, t.n_agents)) for t in self.teams}  # [E, n]
        self.ep_touches = np.zeros(E, np.int64)
        self.ep_length = np.zeros(E, np.int64)
        tr = config.train
        # opponent mixing is training's: simulate shows the learned teams in every env
        self.scripted_envs = int(round(tr.scripted_fraction * E)) if training else 0  # the last
        self.scripted_rows: dict[str, np.ndarray] = {}  # field -> [E]: constant per env
        if with_done and self.scripted_envs:  # on-policy: the rows no policy acted in
            mask = np.zeros(E, np.float32)
            mask[E - self.scripted_envs :] = 1.0
            self.scripted_rows[f"scripted/{tr.scripted_team}"] = mask
            self.spec.update({k: ((), "float32") for k in self.scripted_rows})

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    def set_weights(self, state: dict, version: int) -> None:
        self.actors.load_actor_state(state)
        self.version = int(version)

    def act(
        self, noise_std: float, rng: np.random.Generator, random_actions: bool
    ) -> dict[str, np.ndarray]:
        E = self.env.num_envs
        if random_actions:  # buffer warm-up: uniform random forces
            return {
                t.name: rng.uniform(-1.0, 1.0, (E, t.n_agents, t.act_dim)).astype(np.float32)
                for t in self.teams
            }
        act = self.actors.act(self.obs, noise_std, rng)  # Gaussian noise, clipped
        if self.scripted_envs:  # opponent mixing (train.scripted_*)
            tr, k = self.config.train, self.scripted_envs
            forces = scripted.act(tr.scripted_policy, self.env, tr.scripted_team, rng)
            act[tr.scripted_team][E - k :] = forces[E - k :]  # [k, n_team, 2]
        return act

    def collect(
        self,
        num_vector_steps: int,
        noise_std: float,
        rng: np.random.Generator,
        random_actions: bool = False,
        env_steps_before: int = 0,
        packed: bool = False,
    ) -> CollectResult:
        """Step all envs `num_vector_steps` times; `env_steps_before` only labels recordings.

        `packed=True` (a remote runner): the transitions packed (predprey.learn.packing:
        each observation once), as views of arrays this runner reuses on its next call
        (fresh arrays would cost a page fault per 4 KiB written, every call): serialize or
        copy them before calling again."""
        if packed:
            if self.nstep is not None:
                raise ValueError("algo.n_step > 1 rows are formed unpacked, in the process "
                                 "that trains (not with Ray runners)")  # fmt: skip
            return self._collect_packed(
                num_vector_steps, noise_std, rng, random_actions, env_steps_before
            )
        S, E = int(num_vector_steps), self.env.num_envs
        out = {k: np.empty((S, E, *shape), dt) for k, (shape, dt) in self.spec.items()}
        if self.nstep is None:
            return self._collect(S, noise_std, rng, random_actions, env_steps_before, out, None)
        dones = np.empty((S, E), bool)
        res = self._collect(S, noise_std, rng, random_actions, env_steps_before, out, None, dones)
        rows = [self.nstep.push({k: v[s] for k, v in out.items() if k not in self.nstep.discounts},
                                dones[s]) for s in range(S)]  # fmt: skip
        rows = [r for r in rows if r is not None]  # [E] fields each; none while filling
        transitions = {
            k: np.concatenate([r[k] for r in rows]) if rows else np.empty((0, *shape), dt)
            for k, (shape, dt) in self.spec.items()
        }
        return res._replace(transitions=transitions)

    def _collect_packed(self, S, noise_std, rng, random_actions, env_steps_before):
        S, E = int(S), self.env.num_envs
        if self._packed is None or len(self._packed["terminated"]) != S:
            spec = packing.packed_spec(self.spec, S, E)
            self._packed = {k: np.empty(shape, dt) for k, (shape, dt) in spec.items()}
        finals: list[tuple[int, dict[str, np.ndarray]]] = []  # (row, {team: next_obs})
        res = self._collect(
            S, noise_std, rng, random_actions, env_steps_before, self._packed, finals
        )
        out = dict(res.transitions)
        for t in self.teams:
            out[f"obs/{t.name}"][-E:] = self.obs[t.name]  # the observation after step S
            rows = [f[t.name] for _, f in finals]
            shape = self.spec[f"next_obs/{t.name}"][0]
            out[packing.FINAL + t.name] = np.stack(rows) if rows else np.zeros((0, *shape), "f4")
        out[packing.ROWS] = np.array([row for row, _ in finals], np.int64)
        return res._replace(transitions=out)

    def _collect(
        self, S, noise_std, rng, random_actions, env_steps_before, out, finals, dones=None
    ):
        """Fill `out` ([S, E, ...] per field; observations [S + 1, E, ...] when `finals` is a
        list, which then receives the rows whose next_obs is not the next row's obs) and
        `dones` [S, E] where given."""
        E = self.env.num_envs
        out["version"][:S] = self.version
        for k, mask in self.scripted_rows.items():
            out[k][:S] = mask
        finished_returns = {t.name: [] for t in self.teams}
        finished_touches, finished_lengths, recorded = [], [], []
        for s in range(S):
            t0 = time.perf_counter()
            act = self.act(noise_std, rng, random_actions)
            if self.extra and not random_actions:
                for k, v in self.actors.extras().items():
                    out[k][s] = v
            t1 = time.perf_counter()
            res = self.env.step(act)
            t2 = time.perf_counter()
            self.timers.act += t1 - t0
            self.timers.env += t2 - t1
            final_obs = res.info["final_obs"]
            for t in self.teams:
                out[f"obs/{t.name}"][s] = self.obs[t.name]
                out[f"act/{t.name}"][s] = act[t.name]
                out[f"rew/{t.name}"][s] = res.reward[t.name]
                if t.may_leave:
                    out[f"alive/{t.name}"][s] = res.info["alive"][t.name]
                if finals is None:
                    out[f"next_obs/{t.name}"][s] = final_obs[t.name]
                self.ep_return[t.name] += res.reward[t.name]
            out["terminated"][s] = res.info["terminated"]
            if "done" in out:
                out["done"][s] = res.done
            if dones is not None:
                dones[s] = res.done
            self.ep_touches += res.info["touches"]
            self.ep_length += 1
            if res.done.any():
                if finals is not None:
                    finals += _differing_rows(s * E, final_obs, res.obs)
                idx = np.flatnonzero(res.done)
                for t in self.teams:
                    finished_returns[t.name].append(self.ep_return[t.name][idx].mean(axis=1))
                    self.ep_return[t.name][idx] = 0.0
                finished_touches.append(self.ep_touches[idx].copy())
                finished_lengths.append(self.ep_length[idx].copy())
                self.ep_touches[idx] = 0
                self.ep_length[idx] = 0
            if self.recorder.env_indices:
                steps_now = env_steps_before + (s + 1) * E
                recorded += self.recorder.step(res.info, res.done, steps_now)
            self.obs = res.obs
        stats = EpisodeStats(
            returns={k: _cat(v, np.float64) for k, v in finished_returns.items()},
            touches=_cat(finished_touches, np.int64),
            lengths=_cat(finished_lengths, np.int64),
        )
        transitions = {k: v.reshape(-1, *v.shape[2:]) for k, v in out.items()}
        return CollectResult(transitions, stats, recorded, S * E)

    # -- checkpointing -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Env state, env RNG and per-episode accumulators (torch.save-able, weights_only)."""
        s = self.env.state
        arrays = {
            "pos": s.pos, "vel": s.vel, "landmark_pos": s.landmark_pos, "t": s.t,
            "alive": s.alive, "ep_touches": self.ep_touches, "ep_length": self.ep_length,
            **{f"ep_return/{k}": v for k, v in self.ep_return.items()},
        }  # fmt: skip
        return {
            "arrays": {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()},
            "env_rng": self.env.rng.bit_generator.state,
            "version": self.version,
            "record_episode": dict(self.recorder.episode),
            **({"nstep": self._nstep_state()} if self.nstep is not None else {}),
        }

    def _nstep_state(self) -> list[dict[str, torch.Tensor]]:
        return [{k: torch.from_numpy(v) for k, v in p.items()} for p in self.nstep.state_dict()]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        a = {k: v.numpy() for k, v in state["arrays"].items()}
        s = self.env.state
        for name in ("pos", "vel", "landmark_pos", "t", "alive"):
            if a[name].shape != getattr(s, name).shape:
                raise ValueError(
                    f"runner state '{name}' has shape {a[name].shape}, "
                    f"this environment needs {getattr(s, name).shape}"
                )
            getattr(s, name)[...] = a[name]
        self.ep_touches[:] = a["ep_touches"]
        self.ep_length[:] = a["ep_length"]
        for k in self.ep_return:
            self.ep_return[k][:] = a[f"ep_return/{k}"]
        self.env.rng.bit_generator.state = state["env_rng"]
        self.version = int(state["version"])
        self.recorder.restart({int(k): v for k, v in state["record_episode"].items()})
        if self.nstep is not None:  # rows still gathering rewards (none in an older state)
            self.nstep.load_state_dict([{k: v.numpy() for k, v in p.items()}
                                        for p in state.get("nstep", [])])  # fmt: skip
        self.obs = self.env.observe()


def _differing_rows(first_row: int, final_obs: dict, next_obs: dict) -> list:
    """(row, {team: final obs}) for each env whose pre-reset final observation differs from
    the observation it continues with (the envs that reset, compared value by value)."""
    E = len(next(iter(next_obs.values())))
    differs = np.zeros(E, bool)
    for k, v in final_obs.items():
        differs |= (v != next_obs[k]).reshape(E, -1).any(axis=1)
    rows = np.flatnonzero(differs)
    return [(first_row + e, {k: v[e].copy() for k, v in final_obs.items()}) for e in rows]


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
