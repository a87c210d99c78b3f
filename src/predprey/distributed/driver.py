"""The driver of `predprey train --runners K`: K runners, one buffer, one learner on Ray.

Data moves by object-store reference and never through the driver: a runner's
transitions go to the buffer (`add`, acknowledged once durable), buffer samples go to the
learner (`train`), and the learner's actor weights (one object per publish, with its
version) go to every runner on its next `collect`. The driver only decides who works
next, using the samples-per-insert `RateLimiter`, and keeps the run directory exactly as
the single-process trainer does: metrics.jsonl (+ `dist/*` keys), TensorBoard, recorded
episodes, evaluations, checkpoints, `--resume`.

Failures: every remote call is a `Task` that names the actor running it. When a call
fails because its actor died, `Fleet.replace` (fleet.py) starts a fresh one, the tasks
that died with it are settled (a collect is forgotten, an unacknowledged insert is sent
again, an update is recounted) and `dist/restarts` goes up. A new buffer restores the
latest checkpoint plus the write-ahead log, so it holds every acknowledged row; a new
learner restores the latest checkpoint; a new runner gets the latest weights with its
first call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import ray

from predprey import checkpoint
from predprey.best import BestPolicies, scheduled_evaluation
from predprey.config import Config
from predprey.distributed.fleet import Fleet
from predprey.distributed.rate_limit import RateLimiter, samples_per_insert
from predprey.rundir import RunDir
from predprey.trainlog import TrainLog, truncate_metrics

DRAIN_SECONDS = 120.0  # bound on waiting for in-flight calls at the end
MAX_TRAIN_CALLS = 2  # learner calls in flight: the next batch is ready when one finishes
# Collect calls queued on each runner: the next one starts as soon as one returns, so a
# runner does not sit idle while the driver hears of its result and sends the next call.
CALLS_PER_RUNNER = 2


@dataclass
class Task:
    kind: str  # "collect" | "add" | "train" | "checkpoint"
    actor: str  # id of the actor running it
    rows: int = 0  # collect/add: transitions
    runner: int = -1  # collect: runner index
    insert_id: int = -1  # add
    transitions: Any = None  # collect/add: the transitions' object ref
    updates: int = 0  # train
    weights: Any = None  # train: the published weights' ref (None: not publishing)


class Mark(NamedTuple):
    time: float
    env_steps: int
    updates: int
    busy: dict[str, float]  # copy of DistributedTrainer.busy


@dataclass
class Window:
    """Distributed statistics between two metrics lines."""

    lags: list[float] = field(default_factory=list)  # learner version - sampled rows' version
    acting_lags: list[int] = field(default_factory=list)  # learner version - runner's version
    runner_steps: dict[int, int] = field(default_factory=dict)


class DistributedTrainer:
    def __init__(
        self,
        config: Config,
        run: RunDir,
        runners: int,
        *,
        resume: bool = False,
        time_budget: float | None = None,
        progress: bool = False,
        checkpoints: bool = True,
        evals: bool = True,
    ):
        self.config, self.run_dir = config, run
        self.time_budget = config.train.time_budget if time_budget is None else time_budget
        # The run ends at this many env steps; a plain attribute so that a caller (a fault
        # test) can move the end while the run goes on.
        self.total_env_steps = config.train.total_env_steps
        self.progress, self.checkpoints, self.evals = progress, checkpoints, evals
        payload = checkpoint.load(run) if resume else None
        self.fleet = Fleet(config, run, runners, payload)
        f, a, d = self.fleet, config.algo, config.distributed
        self.limiter = RateLimiter(
            samples_per_insert(config), a.batch_size, config.buffer.warmup,
            max(d.insert_slack or 2 * runners * f.chunk, f.chunk),
        )  # fmt: skip
        self.env_steps = f.buffer_stats.total_added  # acknowledged rows = env steps taken
        self.next_insert_id = f.buffer_stats.last_insert_id + 1
        self.updates, self.updates_in_flight, self.since_publish = f.learner_version, 0, 0
        self.rows_in_flight = self.next_runner = 0
        self.tasks: dict[Any, Task] = {}
        self.episodes = self.eval_index = self.last_eval_steps = 0
        tr = config.train
        self.next_log, self.next_eval = tr.log_every, tr.eval_every
        self.last_eval: dict[str, float] = {}
        self.acked_rows = 0  # rows acknowledged by the buffer in this session
        self.lost_rows = 0  # acknowledged rows a restarted buffer did not hold (must stay 0)
        self.best = BestPolicies(run, save=checkpoints)
        time_offset = 0.0
        if payload is not None:
            time_offset = checkpoint.restore_loop_state(self, payload)
            truncate_metrics(run, self.env_steps)
            # Rows logged while the buffer wrote the checkpoint may hold fewer env steps than
            # it and a later time: the clock goes on from the latest row kept.
            time_offset = max([time_offset, *(r.get("time", 0.0) for r in run.read_metrics())])
        self.log = TrainLog(run, time_offset)
        self.window = Window()
        self.busy = {"runner": 0.0, "learner": 0.0}  # seconds actors spent in calls
        self.steady: Mark | None = None  # when this session's first update completed

    # -- the loop ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from predprey.progress import Progress

        tr = self.config.train
        self.log.start(self.env_steps, self.updates)
        start = time.perf_counter()
        deadline = start + self.time_budget if self.time_budget > 0 else float("inf")
        last_ckpt = start
        bar = Progress(self.total_env_steps, self.env_steps, self.time_budget, self.progress)
        try:
            while self._work_left(self.total_env_steps) and time.perf_counter() < deadline:
                self._launch(self.total_env_steps)
                self._handle(self._wait(0.25))
                if self.env_steps >= self.next_log:
                    self._log()
                if self.evals and self.env_steps >= self.next_eval:
                    self._evaluate()
                if self.checkpoints and time.perf_counter() - last_ckpt >= tr.checkpoint_every:
                    self.save_checkpoint()
                    last_ckpt = time.perf_counter()
                bar.update(self.env_steps, self.updates, self.last_eval)
            end = self._mark()
            self._drain()
        finally:
            bar.close()
        self._finish()
        return {
            "profile": self._profile(self.steady, end) if self.steady else {},
            "env_steps": self.env_steps,
            "updates": self.updates,
            "episodes": self.episodes,
            "time": self.log.elapsed(),
            "eval": self.last_eval,
            "restarts": dict(self.fleet.restarts),
            "acked_rows": self.acked_rows,
            "lost_rows": self.lost_rows,
            "runner_nodes": self.fleet.runner_nodes(),
        }

    def _launch(self, total: int, learn: bool = True) -> None:
        """Start collects on runners with room for a call, and learner calls, as far as the
        rate limit allows (`learn=False`: runners only, without rate limit)."""
        f, a = self.fleet, self.config.algo
        k = len(f.slots)
        order = [f.slots[(self.next_runner + j) % k] for j in range(k)]  # round robin
        for slot in [s for depth in range(CALLS_PER_RUNNER) for s in order if s.calls <= depth]:
            inserted = self.env_steps + self.rows_in_flight
            if slot.calls >= CALLS_PER_RUNNER or inserted >= total:
                continue
            if learn and not self.limiter.may_insert(inserted, self._sampled(), f.chunk):
                break
            warm = inserted < self.config.buffer.warmup
            trans, info = f.collect(slot, a.exploration_noise, warm, inserted)
            self.tasks[info] = Task(
                "collect", slot.actor_id, f.chunk, slot.index, transitions=trans
            )
            self.rows_in_flight += f.chunk
            self.next_runner = (slot.index + 1) % k
        if not learn:
            return
        calls = sum(t.kind == "train" for t in self.tasks.values())
        sync = self.config.distributed.weight_sync_every
        while calls < MAX_TRAIN_CALLS:
            n = min(self.limiter.batches_allowed(self.env_steps, self._sampled()), sync)
            if n < 1:
                break
            publish = self.since_publish + n >= sync
            info, weights = f.train(n, publish)
            self.tasks[info] = Task(
                "train", f.learner_id, updates=n, weights=weights if publish else None
            )
            self.since_publish = 0 if publish else self.since_publish + n
            self.updates_in_flight += n
            calls += 1

    def _work_left(self, total: int) -> bool:
        """Env steps to take, or updates the learner is owed for the steps taken (it trails
        the runners by up to the limiter's slack; the run ends at the config's ratio)."""
        if self.env_steps < total:
            return True
        return self.limiter.batches_allowed(self.env_steps, self._sampled()) > 0

    def _mark(self) -> Mark:
        return Mark(time.perf_counter(), self.env_steps, self.updates, dict(self.busy))

    def _profile(self, start: Mark, end: Mark) -> dict[str, Any]:
        """Throughput between two marks, and the share of that time runners (on average)
        and the learner spent inside their calls."""
        dt = max(end.time - start.time, 1e-9)
        busy = {k: (end.busy[k] - start.busy[k]) / dt for k in self.busy}
        busy["runner"] /= len(self.fleet.slots)
        return {
            "env_steps_per_s": (end.env_steps - start.env_steps) / dt,
            "updates_per_s": (end.updates - start.updates) / dt,
            "seconds": dt,
            "env_steps": end.env_steps - start.env_steps,
            "updates": end.updates - start.updates,
            "busy": busy,
        }

    def measure_sampling(self, seconds: float) -> dict[str, Any]:
        """Runners only, the learner idle and no rate limit, for `seconds` (after in-flight
        calls finished): acknowledged env steps per second (`predprey bench train`)."""
        self._drain()
        cpu0 = self._cpu_seconds()
        start = self._mark()
        end_time = start.time + seconds
        while time.perf_counter() < end_time:
            self._launch(self.total_env_steps, learn=False)
            self._handle(self._wait(0.25))
        end = self._mark()
        self._drain()
        done = self._mark()
        cpu = {k: v - cpu0[k] for k, v in self._cpu_seconds().items()}
        wall, steps = done.time - start.time, max(done.env_steps - start.env_steps, 1)
        return {
            **self._profile(start, end),
            "cores": {k: v / wall for k, v in cpu.items()},  # CPU seconds per wall second
            "cpu_ms_per_1k_steps": {k: 1e6 * v / steps for k, v in cpu.items()},
        }

    def _cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of the runners (summed), the buffer actor and this driver."""
        f = self.fleet
        runners = ray.get([s.handle.cpu_seconds.remote() for s in f.slots], timeout=60)
        buffer = ray.get(f.buffer.cpu_seconds.remote(), timeout=60)
        return {"runners": sum(runners), "buffer": buffer, "driver": time.process_time()}

    def _sampled(self) -> int:
        return (self.updates + self.updates_in_flight) * self.config.algo.batch_size

    def _wait(self, timeout: float) -> list:
        if not self.tasks:
            return []
        ready, _ = ray.wait(list(self.tasks), num_returns=1, timeout=timeout)
        if ready:  # take everything else that is done too
            ready, _ = ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=0)
        return ready

    def _handle(self, ready: list) -> None:
        for ref in ready:
            task = self.tasks.pop(ref, None)
            if task is None:
                continue  # settled when its actor was replaced
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                self.tasks[ref] = task  # settled below together with its actor's other tasks
                self._on_actor_died(e.actor_id)
                if self.tasks.pop(ref, None) is not None:
                    self._settle(task)
                continue
            except ray.exceptions.ObjectLostError:
                if task.kind != "add":
                    raise
                self.rows_in_flight -= task.rows  # never acknowledged: nothing was promised
                continue
            getattr(self, f"_done_{task.kind}")(task, value)

    # -- completions ---------------------------------------------------------------
    def _done_collect(self, task: Task, info) -> None:
        slot = self.fleet.slots[task.runner]
        if slot.actor_id == task.actor:
            slot.calls -= 1
        self.rows_in_flight += info.env_steps - task.rows
        self.busy["runner"] += info.seconds
        self.window.runner_steps[task.runner] = (
            self.window.runner_steps.get(task.runner, 0) + info.env_steps
        )
        if info.version >= 0:
            self.window.acting_lags.append(self.updates - info.version)
        self.episodes += self.log.add_episodes(info.episodes)
        if info.recorded:
            from predprey.recorder import write_episodes

            write_episodes(self.run_dir, "train", info.recorded)
        self._add(Task("add", "", info.env_steps, transitions=task.transitions))

    def _add(self, task: Task) -> None:
        if task.insert_id < 0:
            task.insert_id = self.next_insert_id
            self.next_insert_id += 1
        task.actor = self.fleet.buffer_id
        self.tasks[self.fleet.buffer.add.remote(task.insert_id, task.transitions)] = task

    def _done_add(self, task: Task, ack) -> None:
        self.rows_in_flight -= task.rows
        self.acked_rows += task.rows  # a re-sent insert the buffer already held counts too
        self.env_steps = max(self.env_steps, ack.total_added)

    def _done_train(self, task: Task, info) -> None:
        self.updates_in_flight -= task.updates
        self.updates = info.version
        self.busy["learner"] += info.seconds
        if self.steady is None:
            self.steady = self._mark()
        for m in info.metrics:
            self.log.add_losses(m)
        self.window.lags.append(info.policy_lag)
        if task.weights is not None:
            self.fleet.publish(task.weights, info.version)

    def _done_checkpoint(self, task: Task, result: dict) -> None:
        pass

    # -- failures ------------------------------------------------------------------
    def _on_actor_died(self, actor_id: str | None) -> None:
        """Replace the actor (if it is still ours) and settle every task it was running."""
        role = self.fleet.role_of(actor_id)
        if role is None:
            return  # already replaced
        dead = {r: t for r, t in self.tasks.items() if t.actor == actor_id}
        for r in dead:
            del self.tasks[r]
        self.fleet.replace(role)
        if role == "buffer":
            stats = self.fleet.buffer_stats
            self.lost_rows += max(0, self.env_steps - stats.total_added)
            self.env_steps = stats.total_added
            self.next_insert_id = max(self.next_insert_id, stats.last_insert_id + 1)
        if role == "learner":
            self.updates, self.since_publish = self.fleet.learner_version, 0
        for task in sorted(dead.values(), key=lambda t: t.insert_id):
            self._settle(task)
        self.log.write(self.log.row(self.env_steps, self.updates, self._restart_keys()))

    def _settle(self, task: Task) -> None:
        """Undo or redo a task that will never complete."""
        if task.kind == "collect":
            self.rows_in_flight -= task.rows
            slot = self.fleet.slots[task.runner]
            if slot.actor_id == task.actor:
                slot.calls -= 1
        elif task.kind == "add":
            self._add(task)  # same insert id: the new buffer drops it if the log had it
        elif task.kind == "train":
            self.updates_in_flight -= task.updates

    def _drain(self) -> None:
        """Let in-flight calls finish (their inserts are acknowledged) without new ones."""
        end = time.perf_counter() + DRAIN_SECONDS
        while self.tasks and time.perf_counter() < end:
            self._handle(self._wait(1.0))

    # -- metrics, evaluation, checkpoints -------------------------------------------
    def _restart_keys(self) -> dict[str, int]:
        r = self.fleet.restarts
        out = {"dist/restarts": sum(r.values())}
        out.update({f"dist/restarts/{k}": v for k, v in sorted(r.items())})
        return out

    def _log(self) -> None:
        dt = max(time.perf_counter() - self.log.window_start[0], 1e-9)
        buffer_size = min(self.env_steps, self.config.buffer.capacity)
        row = self.log.window_row(self.env_steps, self.updates, self.episodes, buffer_size)
        if self.window.lags:
            row["dist/policy_lag"] = float(np.mean(self.window.lags))
        if self.window.acting_lags:
            row["dist/acting_lag"] = float(np.mean(self.window.acting_lags))
        for slot in self.fleet.slots:
            steps = self.window.runner_steps.get(slot.index, 0)
            row[f"dist/runner_{slot.index}/env_steps_per_s"] = steps / dt
        row.update(self._restart_keys())
        if self.lost_rows:
            row["dist/lost_rows"] = self.lost_rows
        self.log.write(row)
        self.window = Window()
        every = self.config.train.log_every
        self.next_log = (self.env_steps // every + 1) * every

    def _evaluate(self) -> None:
        scheduled_evaluation(self, self.fleet.latest_actors(), self.updates)

    def save_checkpoint(self) -> None:
        """Checkpoint through the buffer actor (it writes the buffer, the payload and the
        learner state together, then empties its log); retried next time if an actor dies."""
        f = self.fleet
        payload = {
            **checkpoint.loop_state(self, f.teams),
            "distributed": f.checkpoint_state(),
        }
        ref = f.buffer.checkpoint.remote(payload, f.learner.checkpoint_state.remote())
        self.tasks[ref] = Task("checkpoint", f.buffer_id)
        end = time.perf_counter() + DRAIN_SECONDS
        while ref in self.tasks and time.perf_counter() < end:
            self._handle(self._wait(1.0))

    def _finish(self) -> None:
        from predprey.recorder import write_episodes

        if self.env_steps > 0 and self.log.window_has_data:
            self._log()
        if self.evals and self.env_steps > self.last_eval_steps:
            self._evaluate()
        write_episodes(self.run_dir, "train", self.fleet.flush_recorded())
        if self.checkpoints:
            self.save_checkpoint()
        self.log.finish()
