"""`predprey train --runners K` for PPO: `RayRolloutSource`, the source the training loop
(predprey.loop) runs `OnPolicy` over.

Each iteration every runner actor steps its own envs T = `algo.rollout_steps` times with
this iteration's weights (actor means and log-stds, sent with the call when they changed)
and returns its rollout as NumPy arrays; the driver joins them along the env axis, and the
learner (`PPOLearner`, in the driver: on-policy learning waits for the rollout anyway)
runs GAE and its epochs. A runner that dies is replaced (fresh envs, the latest weights)
and its share of the rollout collected again; `distributed.max_restarts` bounds that.

Checkpoints hold the learner, counters and the minibatch RNG; a resumed run starts fresh
runners (new env seeds per session), as the off-policy Ray path does.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import ray

from predprey import checkpoint, seeding
from predprey.config import Config
from predprey.distributed.actors import ActorBase, CollectInfo, _threads
from predprey.distributed.fleet import _kill, check_restarts
from predprey.learn.ppo import PPOLearner
from predprey.loop import SourceBase, TrainLoop
from predprey.rollout import learn_rollout

START_TIMEOUT = 300.0  # seconds for a new actor to come up (imports torch, compiles kernels)


@ray.remote(num_cpus=1, max_restarts=0)
class RolloutActor(ActorBase):
    """One `Runner` whose actions are sampled from a copy of the PPO policy."""

    def __init__(self, config: Config, seed: int, record: bool, torch_threads: int):
        from predprey.learn.spec import team_specs
        from predprey.rollout import Sampler
        from predprey.runner import Runner
        from predprey.seeding import seed_streams

        _threads(torch_threads)
        tr = config.train
        env_seed, self.rng = seed_streams(seed)
        self.policy = PPOLearner(team_specs(config.env.make(num_envs=1)), config.algo)
        envs = tr.record_envs if record else ()
        self.runner = Runner(config, env_seed, Sampler(self.policy), envs, tr.record_every,
                             with_done=True)  # fmt: skip

    @ray.method(num_returns=2)
    def collect(self, steps: int, env_steps_before: int, weights, version: int):
        if weights is not None:
            self.policy.load_policy_state(weights)
            self.runner.version = version
        t0 = time.perf_counter()
        res = self.runner.collect(steps, 0.0, self.rng, False, env_steps_before)
        info = CollectInfo(res.env_steps, self.runner.version, res.episodes, res.recorded,
                           time.perf_counter() - t0)  # fmt: skip
        return res.transitions, info

    def flush_recorded(self) -> list:
        return self.runner.recorder.flush()


class RayRolloutSource(SourceBase):
    def __init__(self, config: Config, loop: TrainLoop, runners: int):
        self.config, self.loop = config, loop
        payload = loop.payload or {}  # the session and restarts seed this session's actors
        state = payload.get("distributed", {})
        self.restarts = int(state.get("restarts", {}).get("runner", 0))
        self.session = int(state.get("sessions", 0)) + bool(payload)
        seed = config.train.seed
        self.learner = PPOLearner(loop.teams, config.algo, seed=seeding.learner_seed(seed))
        seq = seeding.session_seed(seed, self.session, seeding.PPO_SAMPLE)
        self.rng_sample = np.random.default_rng(seq)  # minibatch permutations
        self.inserted = self.iterations = 0
        envs = config.distributed.envs_per_runner or config.env.num_envs
        self.runner_config = config.replace(env=dataclasses.replace(config.env, num_envs=envs))
        self.threads = config.train.torch_threads or 1
        self.seconds = {"collect": 0.0, "learn": 0.0}
        handles = [self._start(i, 0) for i in range(runners)]
        self.slots: list[dict[str, Any]] = []
        try:
            for i, h in enumerate(handles):
                self.slots.append(self._up(i, 0, h))
        except BaseException:
            self.shutdown(handles)
            raise

    # -- runners -----------------------------------------------------------------------
    def _start(self, index: int, incarnation: int):
        seed = seeding.session_seed(
            self.config.train.seed, self.session, seeding.RUNNER, index, incarnation
        )
        return RolloutActor.options(scheduling_strategy="SPREAD").remote(
            self.runner_config, seed, index == 0, self.threads
        )

    def _up(self, index: int, incarnation: int, handle) -> dict[str, Any]:
        ray.get(handle.hello.remote(), timeout=START_TIMEOUT)
        return {"handle": handle, "incarnation": incarnation, "version": -1}

    def _replace(self, index: int) -> None:
        """A fresh runner for slot `index`; one that dies while starting is one more
        restart, and replaced in turn (as the off-policy fleet does)."""
        while True:
            self.restarts += 1
            check_restarts("runner", self.restarts, self.config.distributed.max_restarts)
            old = self.slots[index]
            _kill(old["handle"])
            inc = old["incarnation"] + 1
            try:
                self.slots[index] = self._up(index, inc, self._start(index, inc))
                break
            except ray.exceptions.RayActorError:
                self.slots[index] = {**old, "incarnation": inc}
        self.loop.write_event({"dist/restarts": self.restarts})

    # -- what OnPolicy asks ------------------------------------------------------------
    @property
    def updates(self) -> int:
        return self.learner.version

    def collect(self, steps: int) -> None:
        """Every runner: `steps` vector steps with this iteration's weights; the rollouts
        joined along the env axis, rows [T * E] time-major as in one process."""
        t0 = time.perf_counter()
        version = self.learner.version
        weights = ray.put(self.learner.policy_state())
        done: dict[int, tuple] = {}
        pending = dict(self._call(i, steps, weights, version) for i in range(len(self.slots)))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, trans = pending.pop(ready[0])
            try:
                done[i] = (ray.get(trans), ray.get(ready[0]))
            except ray.exceptions.RayActorError:
                self._replace(i)  # its share is collected again by a fresh runner
                info, call = self._call(i, steps, weights, version)
                pending[info] = call
        parts = [done[i] for i in range(len(self.slots))]
        self.rollout = _join([t for t, _ in parts], steps)
        self.rollout_steps, self.rollout_envs = steps, len(self.rollout["terminated"]) // steps
        for _, info in parts:
            self.inserted += info.env_steps
            self.loop.add_episodes(info.episodes)
            self.loop.add_recorded(info.recorded)
        self.seconds["collect"] += time.perf_counter() - t0

    def _call(self, i: int, steps: int, weights, version: int):
        """Start runner i's collect call: (info ref, (i, transitions ref))."""
        slot = self.slots[i]
        send = weights if slot["version"] != version else None  # fresh runners get them
        slot["version"] = version
        trans, info = slot["handle"].collect.remote(steps, self.inserted, send, version)
        return info, (i, trans)

    def learn(self) -> None:
        learn_rollout(self, self.rollout_envs)

    # -- what the loop asks ------------------------------------------------------------
    def timers(self) -> dict[str, float]:
        return dict(self.seconds)

    def actors(self):
        return self.learner

    def buffer_size(self) -> int:
        return self.config.algo.rollout_steps * self.runner_config.env.num_envs * len(self.slots)

    def log_keys(self, seconds: float) -> dict[str, Any]:
        return {"iterations": self.iterations, "dist/restarts": self.restarts}

    def flush_recorded(self) -> list:
        try:
            return ray.get(self.slots[0]["handle"].flush_recorded.remote(), timeout=60)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return []

    def result(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "restarts": {"runner": self.restarts}}

    def state_dict(self) -> dict[str, Any]:
        return {
            **checkpoint.learner_state(self.learner),
            "env_steps": self.inserted,
            "iterations": self.iterations,
            "distributed": {"restarts": {"runner": self.restarts}, "sessions": self.session},
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.learner.load_state_dict(payload["learner"])
        self.inserted = int(payload["env_steps"])
        self.iterations = int(payload.get("iterations", 0))

    def close(self) -> None:
        self.shutdown()

    def shutdown(self, handles=()) -> None:
        for h in (*handles, *(s["handle"] for s in getattr(self, "slots", []))):
            _kill(h)


def _join(parts: list[dict[str, np.ndarray]], T: int) -> dict[str, np.ndarray]:
    """Runners' rollouts {field: [T * E_k, ...]} -> one {field: [T * sum E_k, ...]}, each
    time step's rows together (the layout `PPOLearner.learn` reads)."""
    out = {}
    for k in parts[0]:
        arrays = [p[k].reshape(T, -1, *p[k].shape[1:]) for p in parts]  # [T, E_k, ...]
        joined = np.concatenate(arrays, axis=1)
        out[k] = joined.reshape(-1, *joined.shape[2:])
    return out
