"""The training loop, written once: any algorithm, any experience source.

The seam. We split a training run three ways, as RLlib does (`Algorithm.train` runs the
schedule around `training_step`, which moves data between `EnvRunnerGroup` and learners)
and as Acme does (actors -> replay -> learner, with a rate limiter between them):

  TrainLoop  (this module) - everything a run does whatever learns and wherever the data
             comes from: the env-step budget and time budget, metrics windows, scheduled
             evaluations and best snapshots, checkpoints and --resume, recorded episodes,
             the steady-state profile, the progress bar.
  algorithm  what learns, and when: `step(source, total_env_steps)` starts the collection
             and the updates its schedule allows. `OffPolicy` (MADDPG/MATD3): a replay
             buffer, updates paced by `UpdateCredit` in one process or by the
             samples-per-insert `RateLimiter` when runners and learner work concurrently;
             its pace is a function of the source's counters, so it checkpoints nothing.
  source     where runners, replay and learner live, as a thin adapter with one
             vocabulary: `collect`, `learn`, `wait`, counters, `actors()` for evaluation,
             `save_checkpoint` (restored from `loop.payload` when built). `LocalSource`
             (predprey.train: plain calls, no Ray or HTTP imported), `RaySource`
             (predprey.distributed.driver: runner actors, buffer actor, learner actor,
             restarts), `HttpSource` (predprey.service.remote_train: the HTTP buffer fed
             by `run-env` processes).

Why not Sample Factory's split (a serial and an async runner, each its own loop) or one
class per algorithm x source: both multiply loops as algorithms arrive. With the step
seam an on-policy learner is another algorithm over the same sources (collect T steps
from every env, then epochs, then publish), and a population is an algorithm holding P
members, each with its own source, plus a selection step; neither needs a loop of its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from predprey import checkpoint
from predprey.best import BestPolicies, scheduled_evaluation
from predprey.config import Config
from predprey.evaluate import check_choices
from predprey.learn.spec import team_specs
from predprey.recorder import write_episodes
from predprey.rundir import RunDir
from predprey.trainlog import TrainLog, truncate_metrics


class Source(Protocol):
    """What the loop itself asks of a source (the algorithm asks more, see OffPolicy)."""

    inserted: int  # env steps the replay holds (acknowledged), = the run's env steps
    updates: int  # learner updates completed
    counts_episodes: bool  # False: episode statistics live elsewhere (HTTP env processes)
    concurrent: bool  # runners and learner work at the same time (profile: busy shares)

    def timers(self) -> dict[str, float]: ...  # cumulative seconds per part of the work
    def actors(self) -> Any: ...  # current actor weights, for evaluation
    def buffer_size(self) -> int: ...
    def log_keys(self, seconds: float) -> dict[str, Any]: ...  # source-specific metrics
    def save_checkpoint(self, payload: dict[str, Any]) -> None: ...
    def finish(self) -> None: ...  # no new work: drain in-flight calls, publish
    def flush_recorded(self) -> list: ...
    def result(self) -> dict[str, Any]: ...  # source-specific final counters


class Algorithm(Protocol):
    def step(self, source: Any, total_env_steps: int) -> None: ...
    def work_left(self, source: Any, total_env_steps: int) -> bool: ...


@dataclass
class Profile:
    """Steady state, from this session's first completed update on: the wall clock of the
    loop's steps and the source's timers over it."""

    wall: float = 0.0
    env_steps: int = 0
    updates: int = 0
    parts: dict[str, float] = field(default_factory=dict)

    def add(self, wall: float, env_steps: int, updates: int, before: dict, after: dict) -> None:
        self.wall += wall
        self.env_steps += env_steps
        self.updates += updates
        for k, v in after.items():
            self.parts[k] = self.parts.get(k, 0.0) + v - before.get(k, 0.0)

    def to_dict(self, concurrent: bool) -> dict[str, Any]:
        w = max(self.wall, 1e-9)
        out = {
            "env_steps_per_s": self.env_steps / w,
            "updates_per_s": self.updates / w,
            "seconds": self.wall,
            "env_steps": self.env_steps,
            "updates": self.updates,
        }
        shares = {k: v / w for k, v in self.parts.items()}
        if concurrent:  # share of the time each role spent inside its calls
            return {**out, "busy": shares}
        shares["other"] = max(0.0, 1.0 - sum(shares.values()))
        out["time_split"] = shares
        if "learn" in self.parts:
            out["ms_per_update"] = 1e3 * self.parts["learn"] / max(self.updates, 1)
        return out


class TrainLoop:
    """Runs `algorithm` over `source` until `total_env_steps` (mutable: a test may raise it
    while the run goes on) or the time budget; keeps the run directory."""

    def __init__(
        self,
        config: Config,
        run: RunDir,
        payload: dict[str, Any] | None = None,
        *,
        time_budget: float | None = None,
        progress: bool = False,
        checkpoints: bool = True,
        evals: bool = True,
    ):
        self.config, self.run_dir = config, run
        tr = config.train
        self.total_env_steps = tr.total_env_steps
        self.time_budget = tr.time_budget if time_budget is None else time_budget
        self.progress, self.checkpoints, self.evals = progress, checkpoints, evals
        self.teams = team_specs(config.env.make(num_envs=1, seed=0))
        names = [t.name for t in self.teams]
        if set(names) == {"predator", "prey"}:
            check_choices(names, {"predator": tr.eval_predators, "prey": tr.eval_prey})
        if payload is not None:
            checkpoint.check_teams(payload, self.teams, str(run.path))
        self.payload = payload  # the checkpoint resumed from, read by `attach`
        self.episodes = self.eval_index = self.last_eval_steps = 0
        self.next_log, self.next_eval = tr.log_every, tr.eval_every
        self.last_eval: dict[str, float] = {}
        self.best = BestPolicies(run, save=checkpoints)
        self.log = TrainLog(run)
        self.profile = Profile()
        self.started = time.perf_counter()  # this process's start of `run`: the time budget's

    def fraction_done(self, env_steps: int | None = None) -> float:
        """How far this run is through its budget, 0 at the start and 1 at the end: env steps
        (default: the source's count) of total_env_steps or seconds of the time budget,
        whichever is further (schedules such as PPO's `anneal_lr` read it)."""
        steps = (self.env_steps if env_steps is None else env_steps) / max(self.total_env_steps, 1)
        elapsed = time.perf_counter() - self.started
        seconds = elapsed / self.time_budget if self.time_budget > 0 else 0.0
        return min(1.0, max(steps, seconds))

    def attach(self, algorithm: Algorithm, source: Source) -> None:
        """Take the algorithm and the source (built by the caller, restored from `payload`
        if resuming), then restore the loop's own state."""
        self.algorithm, self.source = algorithm, source
        payload = self.payload
        if payload is not None:
            time_offset = checkpoint.restore_loop_state(self, payload)
            truncate_metrics(self.run_dir, min(self.env_steps, checkpoint.loop_env_steps(payload)))
            # Rows logged while a concurrent checkpoint was written may hold fewer env steps
            # than it and a later time: the clock goes on from the latest row kept.
            rows = self.run_dir.read_metrics()
            self.log.time_offset = max([time_offset, *(r.get("time", 0.0) for r in rows)])

    @property
    def env_steps(self) -> int:
        return self.source.inserted

    @property
    def updates(self) -> int:
        return self.source.updates

    # -- what sources report -------------------------------------------------------
    def add_episodes(self, episodes) -> None:
        self.episodes += self.log.add_episodes(episodes)

    def add_losses(self, metrics) -> None:
        self.log.add_losses(metrics)

    def add_recorded(self, recorded: list) -> None:
        if recorded:
            write_episodes(self.run_dir, "train", recorded)

    def write_event(self, keys: dict[str, Any]) -> None:
        """A metrics row outside the log schedule (e.g. an actor restart)."""
        self.log.write(self.log.row(self.env_steps, self.updates, keys))

    # -- the loop ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from predprey.progress import Progress

        src, algo = self.source, self.algorithm
        tr = self.config.train
        self.log.start(self.env_steps, self.updates)
        start = self.started = time.perf_counter()
        deadline = start + self.time_budget if self.time_budget > 0 else math.inf
        last_ckpt = start
        first_updates = self.updates
        bar = Progress(self.total_env_steps, self.env_steps, self.time_budget, self.progress)
        try:
            while algo.work_left(src, self.total_env_steps) and time.perf_counter() < deadline:
                t0, steps0, updates0 = time.perf_counter(), src.inserted, src.updates
                timers0 = src.timers()
                algo.step(src, self.total_env_steps)
                if src.updates > first_updates:  # steady state: from the first update on
                    self.profile.add(
                        time.perf_counter() - t0, src.inserted - steps0,
                        src.updates - updates0, timers0, src.timers(),
                    )  # fmt: skip
                if self.env_steps >= self.next_log:
                    self._log()
                if self.evals and self.env_steps >= self.next_eval:
                    self._evaluate()
                if self.checkpoints and time.perf_counter() - last_ckpt >= tr.checkpoint_every:
                    self.save_checkpoint()
                    last_ckpt = time.perf_counter()
                bar.update(self.env_steps, self.updates, self.last_eval)
            profile = self.profile.to_dict(src.concurrent)
            src.finish()
        finally:
            bar.close()
        self._finish()
        return {
            "env_steps": self.env_steps,
            "updates": self.updates,
            "episodes": self.episodes,
            "time": self.log.elapsed(),
            "eval": self.last_eval,
            "profile": profile,
            **src.result(),
        }

    def _log(self) -> None:
        src = self.source
        seconds = max(time.perf_counter() - self.log.window_start[0], 1e-9)
        row = self.log.window_row(self.env_steps, self.updates, self.episodes, src.buffer_size())
        if not src.counts_episodes:
            del row["episodes"]
        row.update(src.log_keys(seconds))
        self.log.write(row)
        every = self.config.train.log_every
        self.next_log = (self.env_steps // every + 1) * every

    def _evaluate(self) -> None:
        scheduled_evaluation(self, self.source.actors(), self.updates)

    def _finish(self) -> None:
        if self.env_steps > 0 and self.log.window_has_data:
            self._log()
        if self.evals and self.env_steps > self.last_eval_steps:
            self._evaluate()  # the final policy is always evaluated
        self.add_recorded(self.source.flush_recorded())
        if self.checkpoints:
            self.save_checkpoint()
        self.log.finish()

    def save_checkpoint(self) -> None:
        self.source.save_checkpoint(checkpoint.loop_state(self, self.teams))


def learner_seed(config: Config) -> int:
    """The learner's initial seed, the same whichever source runs it: a run's first
    learner starts from the same weights in one process, on Ray and over HTTP."""
    return int(seed_sequences(config)[1].generate_state(1)[0])


def seed_sequences(config: Config) -> list:
    """Four independent streams from `train.seed`: env, learner, collection, sampling."""
    import numpy as np

    return np.random.SeedSequence(config.train.seed).spawn(4)
