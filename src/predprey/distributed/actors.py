"""Ray actors: thin shells around the plain `Runner`, `DurableBuffer` and `Learner`.

Each actor holds one plain object and forwards to it; the only logic here is what a
remote call needs (splitting stacked batches, measuring time, returning small named
results separately from bulky arrays). Every actor answers `pid()` and `node_id()`,
which the fault-tolerance tests and the driver's placement report use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import ray

from predprey.config import Config, OffPolicyConfig
from predprey.learn.spec import TeamSpec
from predprey.learn.widths import fit_actors, with_hidden
from predprey.population.member import add_weight_noise, load_team_state, team_state
from predprey.population.resize import learner_widths, with_hp
from predprey.recorder import Episode
from predprey.runner import EpisodeStats
from predprey.threads import limit_threads


class ActorBase:
    def hello(self) -> tuple[str, str]:
        """(actor id, node id): answered once the actor is up."""
        ctx = ray.get_runtime_context()
        return ctx.get_actor_id(), ctx.get_node_id()

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def cpu_seconds(self) -> float:
        """CPU time of this actor's process so far (all its threads, Ray's included)."""
        return time.process_time()


def weights_to_numpy(state: Mapping) -> dict[str, dict[str, np.ndarray]]:
    """Actor weights as NumPy arrays: Ray serializes those in a fraction of the time torch
    tensors take (the learner publishes after every update)."""
    return {
        team: {k: v.detach().cpu().numpy() for k, v in sd.items()} for team, sd in state.items()
    }


def weights_to_torch(state: Mapping) -> dict:
    """Torch copies of `weights_to_numpy`'s arrays: those from the object store are read-only,
    which torch.from_numpy warns about (a few KB per team, so copying costs nothing)."""
    import torch

    return {team: {k: torch.tensor(v) for k, v in sd.items()} for team, sd in state.items()}


def _threads(n: int) -> None:
    limit_threads(max(1, n))


class CollectInfo(NamedTuple):
    env_steps: int
    version: int  # policy version that produced these transitions
    episodes: EpisodeStats
    recorded: list[Episode]
    seconds: float  # time inside collect (acting + env stepping)


@ray.remote(num_cpus=1, max_restarts=0)
class RunnerActor(ActorBase):
    """One `predprey.runner.Runner`: its own batch of environments and a copy of the actors."""

    def __init__(self, config: Config, seed: int, record: bool, torch_threads: int):
        from predprey.runner import Runner
        from predprey.seeding import seed_streams

        _threads(torch_threads)
        tr = config.train
        envs = tr.record_envs if record else ()
        env_seed, self.rng = seed_streams(seed)
        self.runner = Runner(config, env_seed, record_envs=envs, record_every=tr.record_every)
        self.algo = config.algo

    def _load(self, weights: Mapping, version: int) -> None:
        """Load actor weights, of whatever width they have (a population member's may
        change: predprey.population.resize)."""
        r = self.runner
        r.actors = fit_actors(r.actors, r.teams, self.algo, weights_to_torch(weights))
        r.version = int(version)

    @ray.method(num_returns=2)
    def collect(
        self,
        vector_steps: int,
        noise_std: float,
        random_actions: bool,
        env_steps_before: int,
        weights: Mapping | None = None,
        version: int = -1,
    ) -> tuple[dict[str, np.ndarray], CollectInfo]:
        """Step the envs `vector_steps` times (after loading `weights` if given). Returns the
        transitions, `pack`ed (each observation once), and a small `CollectInfo` as two
        objects, so the transitions can go straight to the buffer without passing through
        the driver."""

        if weights is not None:
            self._load(weights, version)
        t0 = time.perf_counter()
        res = self.runner.collect(
            vector_steps, noise_std, self.rng, random_actions, env_steps_before, packed=True
        )
        info = CollectInfo(
            res.env_steps, self.runner.version, res.episodes, res.recorded,
            time.perf_counter() - t0,
        )  # fmt: skip
        return res.transitions, info  # Ray copies them out before the next call

    def set_weights(self, weights: Mapping, version: int) -> float:
        """Load actor weights (Ray has fetched them by then); returns the load seconds."""
        t0 = time.perf_counter()
        self._load(weights, version)
        return time.perf_counter() - t0

    def flush_recorded(self) -> list[Episode]:
        return self.runner.recorder.flush()


@ray.remote(num_cpus=0, max_restarts=0)
class BufferActor(ActorBase):
    """One `DurableBuffer` (replay buffer + write-ahead log) in the run directory."""

    def __init__(self, run_path: str, capacity: int, spec, seed: int, wal: bool, restore: bool):
        from predprey.distributed.durable import DurableBuffer
        from predprey.rundir import RunDir

        self.core = DurableBuffer(RunDir(run_path), capacity, spec, seed, wal, restore)

    def add(self, insert_ids: Sequence[int], *batches: Mapping[str, np.ndarray]):
        """Insert the batches (Ray fetched them: top-level arguments) with one fsync;
        returns their Acks."""
        return self.core.add_many(list(zip(insert_ids, batches, strict=True)))

    def sample(self, n_batches: int, batch_size: int) -> dict[str, np.ndarray]:
        return self.core.sample(n_batches, batch_size)

    def checkpoint(self, payload: Mapping[str, Any], learner: Mapping[str, Any]) -> dict:
        return self.core.checkpoint(payload, learner)

    def stats(self):
        return self.core.stats()


class TrainInfo(NamedTuple):
    version: int  # learner version after these updates
    updates: int
    metrics: list[dict[str, float]]  # one dict per update (losses, q values)
    policy_lag: float  # mean over updates of (learner version - version of the sampled rows)
    seconds: float


@ray.remote(num_cpus=1, max_restarts=0)
class LearnerActor(ActorBase):
    """One `predprey.learn.maddpg.Learner`."""

    def __init__(
        self,
        teams: Sequence[TeamSpec],
        algo: OffPolicyConfig,
        seed: int,
        torch_threads: int,
        state: Mapping | None = None,
    ):
        from predprey.learn.maddpg import Learner

        _threads(torch_threads)
        if state is None:
            self.learner = Learner(teams, algo, seed)
        else:  # the state's widths, then `algo`'s (a population member's may be newer)
            self.learner = Learner(teams, with_hidden(algo, learner_widths(state)), seed)
            self.learner.load_state_dict(state)
            self.learner = with_hp(self.learner, algo)

    def version(self) -> int:
        return self.learner.version

    # -- a population member's network operations (predprey.population.member) ------
    def set_hp(self, algo: OffPolicyConfig) -> None:
        self.learner = with_hp(self.learner, algo)

    def team_state(self, team: str, parts: Sequence[str]) -> dict:
        return team_state(self.learner, team, parts)

    def load_team_state(self, team: str, state: Mapping) -> None:
        load_team_state(self.learner, team, state)

    def add_weight_noise(self, team: str, relative_std: float, seed: int) -> None:
        add_weight_noise(self.learner.actors.actors[team], relative_std, seed)

    def weights(self) -> dict:
        return weights_to_numpy(self.learner.actor_state())

    @ray.method(num_returns=2)
    def train(
        self, batches: Mapping[str, np.ndarray], n_updates: int, publish: bool
    ) -> tuple[TrainInfo, dict | None]:
        """`n_updates` updates on consecutive slices of the stacked `batches`; returns a
        `TrainInfo` and, if `publish`, the new actor weights (a second object, which the
        driver hands to runners by reference)."""
        t0 = time.perf_counter()
        rows = len(batches["terminated"]) // n_updates
        metrics, lags = [], []
        for i in range(n_updates):
            batch = {k: v[i * rows : (i + 1) * rows] for k, v in batches.items()}
            lags.append(self.learner.version - float(batch["version"].mean()))
            metrics.append(self.learner.update(batch))
        info = TrainInfo(
            self.learner.version, n_updates, metrics, float(np.mean(lags)),
            time.perf_counter() - t0,
        )  # fmt: skip
        return info, (weights_to_numpy(self.learner.actor_state()) if publish else None)

    def checkpoint_state(self) -> dict:
        """The learner's part of a checkpoint payload (same keys as the single-process one)."""
        from predprey.checkpoint import learner_state

        return learner_state(self.learner)
