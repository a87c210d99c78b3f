"""Single-process training: `Trainer` = the training loop (predprey.loop) with `OffPolicy`
over a `LocalSource`, plain Python calls with no Ray or HTTP imported (`algo.name: ppo`:
`OnPolicy` over a `predprey.rollout.RolloutSource` instead).

One step: act (uniform random during buffer warm-up, then the actors plus Gaussian noise)
-> step all envs -> add the whole vector step to the replay buffer -> run as many learner
updates as the update-to-data credit allows (`algo.env_steps_per_update` env steps per
update; credit carries over, so 32 envs and 100 steps/update give 8 updates per 25 vector
steps) -> the loop logs, evaluates and checkpoints on its schedules.

`Trainer(..., resume=True)` restores everything a step depends on: weights, optimizers,
replay buffer, RNG states, env state, counters and the wall-clock `time`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from predprey import checkpoint
from predprey.config import Config
from predprey.learn.buffer import ReplayBuffer
from predprey.learn.offpolicy import OffPolicy
from predprey.learn.rate_limiter import UpdateCredit
from predprey.learn.spec import transition_spec
from predprey.loop import TrainLoop, seed_sequences
from predprey.rundir import RunDir, RunDirError
from predprey.runner import Runner


class LocalSource:
    """Runner, replay buffer and learner in this process: a collect call is one vector step
    of every env, inserted at once; a learn call samples and updates in turn."""

    counts_episodes, concurrent, external_producers = True, False, False
    rows_in_flight = updates_in_flight = unpublished = 0
    max_updates_per_call = 1 << 62

    def __init__(self, config: Config, loop: TrainLoop):
        from predprey.learn.maddpg import Learner

        self.config, self.loop = config, loop
        tr, teams = config.train, loop.teams
        if set(config.algo.teams) - {t.name for t in teams}:
            raise ValueError(
                f"algo.teams {list(config.algo.teams)} names a team this scenario lacks"
            )
        seeds = seed_sequences(config)
        env_seed, learner_seed = (int(s.generate_state(1)[0]) for s in seeds[:2])
        self.rng_collect = np.random.default_rng(seeds[2])  # warm-up actions and noise
        self.rng_sample = np.random.default_rng(seeds[3])  # replay sampling
        self.learner = Learner(teams, config.algo, seed=learner_seed)
        self.runner = Runner(config, env_seed, self.learner, tr.record_envs, tr.record_every)
        self.buffer = ReplayBuffer(config.buffer.capacity, transition_spec(teams))
        self.chunk = self.runner.num_envs
        self.inserted = 0
        self.seconds = {"buffer": 0.0, "learn": 0.0}  # adds and samples; learner.update
        if loop.payload is not None:
            self._restore(loop.payload)

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

    def log_keys(self, seconds: float) -> dict[str, Any]:
        return {}

    def finish(self) -> None:
        pass

    def flush_recorded(self) -> list:
        return self.runner.recorder.flush()

    def result(self) -> dict[str, Any]:
        return {}

    # -- checkpoints -----------------------------------------------------------------
    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        payload = {
            **payload,
            **checkpoint.learner_state(self.learner),
            "env_steps": self.inserted,
            "rng": {
                "collect": self.rng_collect.bit_generator.state,
                "sample": self.rng_sample.bit_generator.state,
            },
            "runner": self.runner.state_dict(),
        }
        checkpoint.save(self.loop.run_dir, payload, self.buffer)

    def _restore(self, payload: dict[str, Any]) -> None:
        run = self.loop.run_dir
        try:
            self.learner.load_state_dict(payload["learner"])
            self.runner.load_state_dict(payload["runner"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise RunDirError(f"incompatible checkpoint in {run.path}: {e}") from None
        self.buffer = checkpoint.load_buffer(run, payload, self.config.buffer.capacity)
        self.rng_collect.bit_generator.state = payload["rng"]["collect"]
        self.rng_sample.bit_generator.state = payload["rng"]["sample"]
        self.inserted = int(payload["env_steps"])


class Trainer(TrainLoop):
    """The training loop in one process."""

    def __init__(self, config: Config, run: RunDir, *, resume: bool = False, **loop_args: Any):
        super().__init__(config, run, checkpoint.load(run) if resume else None, **loop_args)
        if config.algo.name == "ppo":  # on-policy: predprey.rollout, predprey.learn.onpolicy
            from predprey.learn.onpolicy import OnPolicy
            from predprey.rollout import RolloutSource

            self.attach(OnPolicy(config), RolloutSource(config, self))
            return
        a, E = config.algo, config.env.num_envs
        pace = UpdateCredit(a.env_steps_per_update, a.batch_size, config.buffer.warmup, E)
        self.attach(OffPolicy(config, pace), LocalSource(config, self))

    @property
    def learner(self):
        return self.source.learner
