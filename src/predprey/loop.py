"""The training loop, written once: one class, composed of an algorithm and a source.

We split a training run three ways, as RLlib does (`Algorithm.train` runs the schedule
around `training_step`, which moves data between `EnvRunnerGroup` and learners) and as Acme
does (actors -> replay -> learner, with a rate limiter between them):

  TrainLoop  (this module; never subclassed) - what every run does: the env-step and time
             budgets, metrics windows, scheduled evaluations and best snapshots, the
             checkpoint (written and restored here, once, for every kind of run), recorded
             episodes, the steady-state profile, the progress bar.
  algorithm  what learns, and when: `step(source, total_env_steps)`. `OffPolicy`
             (MADDPG/MATD3: replay, updates paced by `UpdateCredit` in one process or by the
             samples-per-insert `RateLimiter` when runners and learner work concurrently),
             `OnPolicy` (PPO: collect T steps from every env, epochs, publish), `Population`
             (P members, each an algorithm over its own source, plus selection).
  source     where runners, replay and learner live: `LocalSource` / `RolloutSource` (this
             process, no Ray or HTTP imported), `RaySource` / `RayRolloutSource` (Ray
             actors, restarts), `HttpSource` (the HTTP buffer fed by `run-env` processes).
             Every source answers the loop's questions below (`SourceBase` holds the
             defaults) and gives its state as `state_dict()` / `load_state_dict(payload)`.

`predprey.build.build(config, run, ...)` is the one place that chooses the pieces.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from predprey import checkpoint
from predprey.best import BestPolicies
from predprey.config import Config
from predprey.evaluate import check_choices, training_evals
from predprey.learn.spec import team_specs
from predprey.recorder import write_episodes
from predprey.rundir import RunDir
from predprey.trainlog import TrainLog, truncate_metrics


class SourceBase:
    """What the loop asks of a source, with the defaults most sources keep. A source sets
    `inserted` (env steps the run has taken: acknowledged rows) and `updates` (learner
    updates completed), and gives `timers`, `actors` and `buffer_size`."""

    counts_episodes = True  # False: episode statistics live elsewhere (HTTP env processes)
    concurrent = False  # runners and learner work at the same time (profile: busy shares)
    run_dir: RunDir  # where the checkpoint goes (the loop's run directory)

    def timers(self) -> dict[str, float]:  # cumulative seconds per part of the work
        raise NotImplementedError

    def actors(self) -> Any:  # the current actors, for evaluation
        raise NotImplementedError

    def buffer_size(self) -> int:
        raise NotImplementedError

    def log_keys(self, seconds: float) -> dict[str, Any]:
        """Source-specific metrics of the window that ends now."""
        return {}

    def finish(self) -> None:
        """No new work: drain in-flight calls, publish."""

    def flush_recorded(self) -> list:
        return []

    def result(self) -> dict[str, Any]:
        """Source-specific final counters."""
        return {}

    def close(self) -> None:
        """Release what the source started (Ray actors)."""

    # -- evaluation ------------------------------------------------------------------
    def policies(self) -> list[Any]:
        """The actor sets a scheduled evaluation scores (a population: one per member)."""
        return [self.actors()]

    def judge(self, evals: list[dict[str, float]]) -> tuple[dict, dict, Any]:
        """From the evaluations of `policies()`: the run's eval metrics, extra keys for the
        eval row, and the actors the best snapshots take their weights from."""
        return evals[0], {}, self.actors()

    def events_due(self, env_steps: int) -> list[dict[str, Any]]:
        """Event rows to write after an evaluation (a population's sync or selection)."""
        return []

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """This source's keys of the checkpoint payload (the loop adds its own)."""
        raise NotImplementedError

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint's payload (KeyError/ValueError/RuntimeError on a
        mismatch: the loop turns them into one message)."""
        raise NotImplementedError

    def replay_buffers(self) -> dict[str, Any]:
        """Replay buffers saved beside the payload: {"": the run's} or {name: a member's}."""
        return {}

    def write_checkpoint(self, payload: dict[str, Any]) -> None:
        """Write `payload` and the replay buffers as the latest checkpoint. A source whose
        replay lives in another process (Ray) writes it there, with the same function."""
        buffers = self.replay_buffers()
        single = buffers.pop("", None)
        checkpoint.save(self.run_dir, payload, single, named_buffers=buffers or None)


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
    while the run goes on) or the time budget; keeps the run directory. Built by
    `predprey.build.build`: the loop first (`resume`: it reads the latest checkpoint), then
    the source (which may read `payload` to start its actors), then `attach`."""

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
        self.config, self.run_dir = config, run
        tr = config.train
        self.total_env_steps = tr.total_env_steps
        self.time_budget = tr.time_budget if time_budget is None else time_budget
        self.progress, self.checkpoints, self.evals = progress, checkpoints, evals
        self.teams = team_specs(config.env.make(num_envs=1, seed=0))
        names = [t.name for t in self.teams]
        if set(names) == {"predator", "prey"}:
            check_choices(names, {"predator": tr.eval_predators, "prey": tr.eval_prey})
        checkpoint.remove_stale(run)  # a crash's half-written files; nothing writes yet
        self.payload = checkpoint.load(run) if resume else None  # read by sources and attach
        if self.payload is not None:
            stage = int(self.payload.get("curriculum_stage", 0))  # a curriculum's world
            if stage:
                self.config = config.at_stage(stage)
                self.teams = team_specs(self.config.env.make(num_envs=1, seed=0))
            checkpoint.check_teams(self.payload, self.teams, str(run.path))
        self.episodes = self.eval_index = self.last_eval_steps = 0
        self.next_log, self.next_eval = tr.log_every, tr.eval_every
        self.last_eval: dict[str, float] = {}
        self.finishing = False  # the final evaluation: no events after it
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

    def attach(self, algorithm: Algorithm, source: SourceBase) -> None:
        """Take the algorithm and the source; if resuming, restore the source's state and
        then the loop's own from the checkpoint."""
        self.algorithm, self.source = algorithm, source
        source.run_dir = self.run_dir
        payload = self.payload
        if payload is None:
            return
        checkpoint.restore(source, payload, self.run_dir)
        time_offset = checkpoint.restore_loop_state(self, payload)
        truncate_metrics(self.run_dir, min(self.env_steps, checkpoint.loop_env_steps(payload)))
        # Rows logged while a concurrent checkpoint was written may hold fewer env steps
        # than it and a later time: the clock goes on from the latest row kept.
        rows = self.run_dir.read_metrics()
        self.log.time_offset = max([time_offset, *(r.get("time", 0.0) for r in rows)])

    def next_stage(self, config: Config) -> None:
        """Train, evaluate and checkpoint in `config`'s world from now on (a curriculum's
        next number of agents); best snapshots start again (scores at another N differ)."""
        self.config = config
        self.teams = team_specs(config.env.make(num_envs=1, seed=0))
        self.best.restore({})

    @property
    def env_steps(self) -> int:
        return self.source.inserted

    @property
    def updates(self) -> int:
        return self.source.updates

    def close(self) -> None:
        """Release what the source started (Ray actors); the run directory stays."""
        self.source.close()

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
                    self.evaluate()
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

    def evaluate(self) -> None:
        """One scheduled evaluation: every policy the source offers on the same seeds, the
        eval metrics row, the best snapshots, the source's events (not after the last)."""
        tr = self.config.train
        seed = tr.seed * 1_000_003 + self.eval_index  # eval streams never touch training RNGs
        src = self.source
        evals = [training_evals(self.config, a, tr.eval_episodes, seed) for a in src.policies()]
        self.last_eval, extra, actors = src.judge(evals)
        self.eval_index += 1
        self.last_eval_steps = self.env_steps
        self.best.offer(self.last_eval, self.env_steps, actors)
        self.log.write(self.log.row(self.env_steps, self.updates, {**self.last_eval, **extra}))
        self.next_eval = (self.env_steps // tr.eval_every + 1) * tr.eval_every
        if not self.finishing:  # the run ends here: its last networks stay the evaluated ones
            for event in src.events_due(self.env_steps):
                self.write_event(event)

    def _finish(self) -> None:
        self.finishing = True
        if self.env_steps > 0 and self.log.window_has_data:
            self._log()
        if self.evals and self.env_steps > self.last_eval_steps:
            self.evaluate()  # the final policy is always evaluated
        self.add_recorded(self.source.flush_recorded())
        if self.checkpoints:
            self.save_checkpoint()
        self.log.finish()

    def save_checkpoint(self) -> None:
        """The one checkpoint path: the loop's state and the source's, written as one unit
        (`SourceBase.write_checkpoint`)."""
        self.source.write_checkpoint({**checkpoint.loop_state(self), **self.source.state_dict()})
