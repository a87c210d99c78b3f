"""On-policy training in one process: `RolloutSource` is the source the training loop
(predprey.loop) runs `OnPolicy` (predprey.learn.onpolicy) over. Plain calls, no Ray or HTTP.

One iteration: the runner steps all E envs T = `algo.rollout_steps` times with actions
sampled from the PPO policy (NumPy end to end: the rollout is the runner's transition
arrays, rows [T * E] time-major, plus `done`) -> `PPOLearner.learn` (GAE, epochs of
minibatch steps) -> the loop logs, evaluates and checkpoints on its schedules. Nothing is
published: the runner acts with the learner's live weights.

Checkpoints fall between iterations, so they hold no rollout: weights, optimizers, the
action and minibatch RNG states, env state and counters. `--resume` continues exactly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from predprey import checkpoint, seeding
from predprey.config import Config
from predprey.learn.ppo import PPOLearner
from predprey.loop import SourceBase, TrainLoop
from predprey.runner import Runner


class Sampler:
    """What the runner acts with during collection: Gaussian samples around the mean. Their
    log-probabilities go into the rollout as extra fields `logp/{team}` [n] per row
    (`extra_spec`, `extras`), so the learner need not recompute them."""

    def __init__(self, learner: PPOLearner):
        self.learner = learner
        self.logp: dict[str, np.ndarray] = {}

    def act(self, obs, noise_std: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
        act, self.logp = self.learner.sample(obs, rng)
        return act

    def extra_spec(self) -> dict[str, tuple]:
        return {f"logp/{t.name}": ((t.n_agents,), "float32") for t in self.learner.trained}

    def extras(self) -> dict[str, np.ndarray]:
        """The latest `act`'s per-row fields: {"logp/{team}": [E, n]}."""
        return {f"logp/{k}": v for k, v in self.logp.items()}

    def load_actor_state(self, state) -> None:
        self.learner.load_actor_state(state)


class RolloutSource(SourceBase):
    def __init__(self, config: Config, loop: TrainLoop):
        self.config, self.loop = config, loop
        tr = config.train
        seeds = seeding.streams(tr.seed)
        self.rng_collect = np.random.default_rng(seeds.collect)  # action samples
        self.rng_sample = np.random.default_rng(seeds.sample)  # minibatch permutations
        self.learner = PPOLearner(loop.teams, config.algo, seed=seeds.learner)
        self.runner = Runner(
            config, seeds.env, Sampler(self.learner), tr.record_envs, tr.record_every,
            with_done=True,
        )  # fmt: skip
        self.inserted = self.iterations = 0
        self.rollout: dict[str, np.ndarray] | None = None
        self.seconds = {"learn": 0.0}

    @property
    def updates(self) -> int:
        return self.learner.version

    def collect(self, steps: int) -> None:
        res = self.runner.collect(steps, 0.0, self.rng_collect, False, self.inserted)
        self.rollout, self.rollout_steps = res.transitions, steps
        self.inserted += res.env_steps
        self.loop.add_episodes(res.episodes)
        self.loop.add_recorded(res.recorded)

    def learn(self) -> None:
        learn_rollout(self, self.runner.num_envs)

    # -- what the loop asks ----------------------------------------------------------
    def timers(self) -> dict[str, float]:
        return {"env": self.runner.timers.env, "act": self.runner.timers.act, **self.seconds}

    def actors(self):
        return self.learner

    def buffer_size(self) -> int:
        return self.config.algo.rollout_steps * self.runner.num_envs  # rows per rollout

    def log_keys(self, seconds: float) -> dict[str, Any]:
        return {"iterations": self.iterations}

    def flush_recorded(self) -> list:
        return self.runner.recorder.flush()

    def result(self) -> dict[str, Any]:
        return {"iterations": self.iterations}

    # -- checkpoints: between iterations, so no rollout --------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **checkpoint.learner_state(self.learner),
            "env_steps": self.inserted,
            "iterations": self.iterations,
            "rng": {
                "collect": self.rng_collect.bit_generator.state,
                "sample": self.rng_sample.bit_generator.state,
            },
            "runner": self.runner.state_dict(),
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.learner.load_state_dict(payload["learner"])
        if "runner" in payload:  # a Ray run's checkpoint has no env state: fresh envs
            self.runner.load_state_dict(payload["runner"])
            self.rng_collect.bit_generator.state = payload["rng"]["collect"]
            self.rng_sample.bit_generator.state = payload["rng"]["sample"]
        self.inserted = int(payload["env_steps"])
        self.iterations = int(payload.get("iterations", 0))


def learn_rollout(src: Any, envs: int) -> None:
    """One learner iteration on the rollout `src` holds ([T, envs] rows): its losses go to
    the loop; the rollout is spent. The same for the in-process and the Ray source."""
    t0 = time.perf_counter()
    if src.config.algo.anneal_lr:  # the fraction spent before this rollout (CleanRL's)
        before = src.inserted - src.rollout_steps * envs
        src.learner.set_lr_scale(1.0 - src.loop.fraction_done(before))
    for metrics in src.learner.learn(src.rollout, src.rollout_steps, envs, src.rng_sample):
        src.loop.add_losses(metrics)
    src.rollout = None
    src.iterations += 1
    src.seconds["learn"] += time.perf_counter() - t0
