"""Single-process off-policy training: `LocalSource`, the source the training loop
(predprey.loop) runs `OffPolicy` over, plain Python calls with no Ray or HTTP imported
(`algo.name: ppo`: `OnPolicy` over a `predprey.rollout.RolloutSource` instead;
`predprey.build` chooses).

One step: act (uniform random during buffer warm-up, then the actors plus Gaussian noise)
-> step all envs -> add the whole vector step to the replay buffer -> run as many learner
updates as the update-to-data credit allows (`algo.env_steps_per_update` env steps per
update; credit carries over, so 32 envs and 100 steps/update give 8 updates per 25 vector
steps) -> the loop logs, evaluates and checkpoints on its schedules.

A resumed run restores everything a step depends on: weights, optimizers, replay buffer,
RNG states, env state, counters and the wall-clock `time`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from predprey import checkpoint, seeding
from predprey.config import Config
from predprey.learn.buffer import ReplayBuffer
from predprey.loop import SourceBase
from predprey.runner import Runner


class LocalSource(SourceBase):
    """Runner, replay buffer and learner in this process: a collect call is one vector step
    of every env, inserted at once; a learn call samples and updates in turn."""

    external_producers = False
    rows_in_flight = updates_in_flight = unpublished = 0
    max_updates_per_call = 1 << 62

    def __init__(self, config: Config, loop: Any):
        """`loop` takes the episodes, losses and recordings (the `TrainLoop`, or a
        population member's hooks)."""
        from predprey.learn.maddpg import Learner

        self.config, self.loop = config, loop
        tr, teams = config.train, loop.teams
        if set(config.algo.teams) - {t.name for t in teams}:
            raise ValueError(
                f"algo.teams {list(config.algo.teams)} names a team this scenario lacks"
            )
        seeds = seeding.streams(config.train.seed)
        self.rng_collect = np.random.default_rng(seeds.collect)  # warm-up actions and noise
        self.rng_sample = np.random.default_rng(seeds.sample)  # replay sampling
        self.learner = Learner(teams, config.algo, seed=seeds.learner)
        self.runner = Runner(config, seeds.env, self.learner, tr.record_envs, tr.record_every)
        self.buffer = ReplayBuffer(config.buffer.capacity, self.runner.spec)
        self.chunk = self.runner.num_envs
        self.inserted = 0
        self.seconds = {"buffer": 0.0, "learn": 0.0}  # adds and samples; learner.update

    @property
    def updates(self) -> int:
        return self.learner.version

    def idle_runners(self) -> list[Runner]:
        return [self.runner]

    def collect(self, runner: Runner, noise: float, warm: bool, env_steps_before: int) -> None:
        runner.version = self.learner.version
        res = runner.collect(1, noise, self.rng_collect, warm, env_steps_before)
        t0 = time.perf_counter()
        self.buffer.add(res.transitions)
        self.seconds["buffer"] += time.perf_counter() - t0
        self.inserted += res.env_steps
        self.loop.add_episodes(res.episodes)
        self.loop.add_recorded(res.recorded)

    def may_learn(self) -> bool:
        return True

    def learn(self, n_updates: int, publish: bool) -> None:
        """`publish` needs nothing here: the runner acts with the learner's live weights."""
        B = self.config.algo.batch_size
        for _ in range(n_updates):
            t0 = time.perf_counter()
            batch = self.buffer.sample(B, self.rng_sample)
            t1 = time.perf_counter()
            self.loop.add_losses(self.learner.update(batch))
            self.seconds["buffer"] += t1 - t0
            self.seconds["learn"] += time.perf_counter() - t1

    def wait(self) -> None:
        pass

    # -- what the loop asks ----------------------------------------------------------
    def timers(self) -> dict[str, float]:
        return {"env": self.runner.timers.env, "act": self.runner.timers.act, **self.seconds}

    def actors(self):
        return self.learner

    def buffer_size(self) -> int:
        return len(self.buffer)

    def flush_recorded(self) -> list:
        return self.runner.recorder.flush()

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **checkpoint.learner_state(self.learner),
            "env_steps": self.inserted,
            "rng": {
                "collect": self.rng_collect.bit_generator.state,
                "sample": self.rng_sample.bit_generator.state,
            },
            "runner": self.runner.state_dict(),
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.learner.load_state_dict(payload["learner"])
        self.runner.load_state_dict(payload["runner"])
        self.rng_collect.bit_generator.state = payload["rng"]["collect"]
        self.rng_sample.bit_generator.state = payload["rng"]["sample"]
        self.inserted = int(payload["env_steps"])
        if "buffer_file" in payload:  # a member's state holds no buffer: the population's does
            capacity = self.config.buffer.capacity
            self.buffer = checkpoint.load_buffer(self.run_dir, payload, capacity)

    def replay_buffers(self) -> dict[str, Any]:
        return {"": self.buffer}
