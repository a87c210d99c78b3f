"""The single-process training loop.

One iteration: act (uniform random during buffer warm-up, then the actors plus Gaussian
noise) -> step all envs -> add the whole vector step to the replay buffer -> run as many
learner updates as the update-to-data credit allows (`algo.env_steps_per_update` env steps
per update; credit carries over, so 32 envs and 100 steps/update give 8 updates per 25
vector steps) -> log, evaluate and checkpoint on their schedules.

Everything the loop depends on is restored by `Trainer(..., resume=True)`: weights,
optimizers, replay buffer, RNG states, env state, counters and the wall-clock `time`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from predprey import checkpoint
from predprey.best import BestPolicies, scheduled_evaluation
from predprey.config import Config
from predprey.evaluate import check_choices
from predprey.learn.buffer import ReplayBuffer
from predprey.learn.spec import team_specs, transition_spec
from predprey.recorder import write_episodes
from predprey.rundir import RunDir, RunDirError
from predprey.runner import EpisodeStats, Runner
from predprey.trainlog import TrainLog, truncate_metrics


@dataclass
class Profile:
    """Seconds spent per part of the loop, counted from the first learner update on."""

    env: float = 0.0
    act: float = 0.0
    buffer: float = 0.0  # adds and samples
    learn: float = 0.0  # learner.update
    wall: float = 0.0
    env_steps: int = 0
    updates: int = 0

    def to_dict(self) -> dict[str, Any]:
        w = max(self.wall, 1e-9)
        parts = {k: getattr(self, k) for k in ("env", "act", "buffer", "learn")}
        parts["other"] = max(0.0, w - sum(parts.values()))
        return {
            "env_steps_per_s": self.env_steps / w,
            "updates_per_s": self.updates / w,
            "seconds": self.wall,
            "env_steps": self.env_steps,
            "updates": self.updates,
            "time_split": {k: v / w for k, v in parts.items()},
            "ms_per_update": 1e3 * self.learn / max(self.updates, 1),
        }


class TrainResult(dict):
    """Final counters and the steady-state profile (a dict, printed as JSON by callers)."""


class Trainer:
    def __init__(
        self,
        config: Config,
        run: RunDir,
        *,
        resume: bool = False,
        time_budget: float | None = None,
        progress: bool = False,
        checkpoints: bool = True,
        evals: bool = True,
    ):
        from predprey.learn.maddpg import Learner

        self.config, self.run_dir = config, run
        self.time_budget = config.train.time_budget if time_budget is None else time_budget
        self.progress, self.checkpoints, self.evals = progress, checkpoints, evals
        tr = config.train
        seeds = np.random.SeedSequence(tr.seed).spawn(4)
        env_seed, learner_seed = (int(s.generate_state(1)[0]) for s in seeds[:2])
        self.rng_collect = np.random.default_rng(seeds[2])  # warm-up actions and noise
        self.rng_sample = np.random.default_rng(seeds[3])  # replay sampling
        self.teams = team_specs(config.env.make(num_envs=1, seed=0))
        if set(config.algo.teams) - {t.name for t in self.teams}:
            raise ValueError(
                f"algo.teams {list(config.algo.teams)} names a team this scenario lacks"
            )
        names = [t.name for t in self.teams]
        if set(names) == {"predator", "prey"}:
            check_choices(names, {"predator": tr.eval_predators, "prey": tr.eval_prey})
        self.learner = Learner(self.teams, config.algo, seed=learner_seed)
        self.runner = Runner(config, env_seed, self.learner, tr.record_envs, tr.record_every)
        self.buffer = ReplayBuffer(config.buffer.capacity, transition_spec(self.teams))
        self.env_steps = self.episodes = self.credit = self.eval_index = 0
        self.log = TrainLog(run)
        self.next_log, self.next_eval = tr.log_every, tr.eval_every
        self.last_eval: dict[str, float] = {}
        self.last_eval_steps = 0
        self.best = BestPolicies(run, save=checkpoints)
        if resume:
            self._restore()
        self.profile = Profile()

    # -- the loop ------------------------------------------------------------------
    def run(self) -> TrainResult:
        from predprey.progress import Progress

        tr = self.config.train
        self.log.start(self.env_steps, self.learner.version)
        start = time.perf_counter()
        deadline = start + self.time_budget if self.time_budget > 0 else math.inf
        last_ckpt = start
        bar = Progress(tr.total_env_steps, self.env_steps, self.time_budget, enabled=self.progress)
        try:
            while self.env_steps < tr.total_env_steps and time.perf_counter() < deadline:
                self._iteration()
                if self.env_steps >= self.next_log:
                    self._log()
                if self.evals and self.env_steps >= self.next_eval:
                    self._evaluate()
                now = time.perf_counter()
                if self.checkpoints and now - last_ckpt >= tr.checkpoint_every:
                    self.save_checkpoint()
                    last_ckpt = time.perf_counter()
                bar.update(self.env_steps, self.learner.version, self.last_eval)
        finally:
            bar.close()
        self._finish()
        return TrainResult(
            env_steps=self.env_steps,
            updates=self.learner.version,
            episodes=self.episodes,
            time=self.log.elapsed(),
            eval=self.last_eval,
            profile=self.profile.to_dict(),
        )

    def _iteration(self) -> None:
        cfg, p = self.config, self.profile
        warm = self.env_steps < cfg.buffer.warmup
        t_start = time.perf_counter()
        act0, env0 = self.runner.timers.act, self.runner.timers.env
        self.runner.version = self.learner.version
        res = self.runner.collect(
            1, cfg.algo.exploration_noise, self.rng_collect, warm, self.env_steps
        )
        t0 = time.perf_counter()
        self.buffer.add(res.transitions)
        t_buffer = time.perf_counter() - t0
        self.env_steps += res.env_steps
        self._add_episodes(res.episodes)
        if res.recorded:
            write_episodes(self.run_dir, "train", res.recorded)
        t_learn = 0.0
        if not warm and len(self.buffer) >= cfg.algo.batch_size:
            self.credit += res.env_steps
            while self.credit >= cfg.algo.env_steps_per_update:
                t0 = time.perf_counter()
                batch = self.buffer.sample(cfg.algo.batch_size, self.rng_sample)
                t1 = time.perf_counter()
                out = self.learner.update(batch)
                t_learn += time.perf_counter() - t1
                t_buffer += t1 - t0
                self.credit -= cfg.algo.env_steps_per_update
                p.updates += 1
                self.log.add_losses(out)
        if p.updates:  # steady state: from the first update on
            p.env_steps += res.env_steps
            p.act += self.runner.timers.act - act0
            p.env += self.runner.timers.env - env0
            p.buffer += t_buffer
            p.learn += t_learn
            p.wall += time.perf_counter() - t_start

    def _add_episodes(self, ep: EpisodeStats) -> None:
        self.episodes += self.log.add_episodes(ep)

    # -- metrics -------------------------------------------------------------------
    def _log(self) -> None:
        row = self.log.window_row(
            self.env_steps, self.learner.version, self.episodes, len(self.buffer)
        )
        self.log.write(row)
        every = self.config.train.log_every
        self.next_log = (self.env_steps // every + 1) * every

    def _evaluate(self) -> None:
        scheduled_evaluation(self, self.learner, self.learner.version)

    def _finish(self) -> None:
        if self.env_steps > 0 and self.log.window_has_data:
            self._log()
        if self.evals and self.env_steps > self.last_eval_steps:
            self._evaluate()  # the final policy is always evaluated
        write_episodes(self.run_dir, "train", self.runner.recorder.flush())
        if self.checkpoints:
            self.save_checkpoint()
        self.log.finish()

    # -- checkpoints ---------------------------------------------------------------
    def save_checkpoint(self) -> None:
        payload = {
            **checkpoint.loop_state(self, self.teams),
            **checkpoint.learner_state(self.learner),
            "env_steps": self.env_steps,
            "credit": self.credit,
            "rng": {
                "collect": self.rng_collect.bit_generator.state,
                "sample": self.rng_sample.bit_generator.state,
            },
            "runner": self.runner.state_dict(),
        }
        checkpoint.save(self.run_dir, payload, self.buffer)

    def _restore(self) -> None:
        run = self.run_dir
        payload = checkpoint.load(run)
        checkpoint.check_teams(payload, self.teams, str(run.path))
        try:
            self.learner.load_state_dict(payload["learner"])
            self.runner.load_state_dict(payload["runner"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise RunDirError(f"incompatible checkpoint in {run.path}: {e}") from None
        self.buffer = checkpoint.load_buffer(run, payload, self.config.buffer.capacity)
        self.rng_collect.bit_generator.state = payload["rng"]["collect"]
        self.rng_sample.bit_generator.state = payload["rng"]["sample"]
        self.env_steps, self.credit = int(payload["env_steps"]), int(payload["credit"])
        self.log.time_offset = checkpoint.restore_loop_state(self, payload)
        truncate_metrics(run, self.env_steps)
