"""`predprey train --runners K`: `RaySource`, the source the training loop (predprey.loop)
runs `OffPolicy` over: K runner actors, one buffer actor, one learner actor.

Data moves by object-store reference and never through the driver: a runner's
transitions go to the buffer (`add`, acknowledged once durable), buffer samples go to the
learner (`train`), and the learner's actor weights (one object per publish, with its
version) go to every runner on its next `collect`. The driver only decides who works
next, using the samples-per-insert `RateLimiter`; the loop keeps the run directory as it
does for every source (plus `dist/*` metrics keys).

Failures: every remote call is a `Task` that names the actor running it. When a call
fails because its actor died, `Fleet.replace` (fleet.py) starts a fresh one, the tasks
that died with it are settled (a collect is forgotten, an unacknowledged insert is sent
again, an update is recounted) and `dist/restarts` goes up. A new buffer restores the
latest checkpoint plus the write-ahead log, so it holds every acknowledged row; a new
learner starts from the newer of its latest object-store snapshot and the latest
checkpoint; a new runner gets the latest weights with its first call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from predprey.config import Config
from predprey.distributed.fleet import Fleet, RunnerSlot
from predprey.loop import Profile, SourceBase, TrainLoop

DRAIN_SECONDS = 120.0  # bound on waiting for in-flight calls at the end
WAIT_SECONDS = 0.25  # one wait for completions, so the loop's schedules keep running
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
    insert_ids: list[int] = field(default_factory=list)  # add: one per collect call
    transitions: list = field(default_factory=list)  # collect/add: the transitions' refs
    updates: int = 0  # train
    weights: Any = None  # train: the published weights' ref (None: not publishing)


@dataclass
class Window:
    """Distributed statistics between two metrics lines."""

    lags: list[float] = field(default_factory=list)  # learner version - sampled rows' version
    acting_lags: list[int] = field(default_factory=list)  # learner version - runner's version
    runner_steps: dict[int, int] = field(default_factory=dict)


class RaySource(SourceBase):
    concurrent, external_producers = True, False

    def __init__(self, config: Config, loop: TrainLoop, runners: int):
        self.config, self.loop = config, loop
        self.fleet = f = Fleet(config, loop.run_dir, runners, loop.payload)
        self.chunk = f.chunk
        self.max_updates_per_call = config.distributed.weight_sync_every
        self.inserted = f.buffer_stats.total_added  # acknowledged rows = env steps taken
        self.next_insert_id = f.buffer_stats.last_insert_id + 1
        self.updates, self.updates_in_flight, self.unpublished = f.learner_version, 0, 0
        self.rows_in_flight = self.next_runner = 0
        self.tasks: dict[Any, Task] = {}
        self.collected: list[Task] = []  # collects done, their inserts not sent yet
        self.acked_rows = 0  # rows acknowledged by the buffer in this session
        self.lost_rows = 0  # acknowledged rows a restarted buffer did not hold (must stay 0)
        self.window = Window()
        self.busy = {"runner": 0.0, "learner": 0.0}  # seconds actors spent in calls
        self.wait_seconds = WAIT_SECONDS  # 0: the caller waits on many sources (`wait_any`)

    # -- what OffPolicy asks ---------------------------------------------------------
    def idle_runners(self):
        """Runners with room for a call: round robin, each runner's first call before any
        runner's second."""
        k = len(self.fleet.slots)
        order = [self.fleet.slots[(self.next_runner + j) % k] for j in range(k)]
        for slot in [s for depth in range(CALLS_PER_RUNNER) for s in order if s.calls <= depth]:
            if slot.calls < CALLS_PER_RUNNER:
                yield slot

    def collect(self, slot: RunnerSlot, noise: float, warm: bool, env_steps_before: int):
        trans, info = self.fleet.collect(slot, noise, warm, env_steps_before)
        self.tasks[info] = Task(
            "collect", slot.actor_id, self.chunk, slot.index, transitions=[trans]
        )
        self.rows_in_flight += self.chunk
        self.next_runner = (slot.index + 1) % len(self.fleet.slots)

    def may_learn(self) -> bool:
        return sum(t.kind == "train" for t in self.tasks.values()) < MAX_TRAIN_CALLS

    def learn(self, n_updates: int, publish: bool) -> None:
        info, weights = self.fleet.train(n_updates, publish)
        self.tasks[info] = Task(
            "train", self.fleet.learner_id, updates=n_updates, weights=weights if publish else None
        )
        self.unpublished = 0 if publish else self.unpublished + n_updates
        self.updates_in_flight += n_updates

    def wait(self, timeout: float | None = None) -> None:
        """Handle the calls that complete within `timeout` (default `wait_seconds`; all that
        are done by then)."""
        timeout = self.wait_seconds if timeout is None else timeout
        if not self.tasks:
            return
        ready, _ = ray.wait(list(self.tasks), num_returns=1, timeout=timeout)
        if ready:  # take everything else that is done too
            ready, _ = ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=0)
        for ref in ready:
            self._handle(ref)
        if self.collected:  # one insert call (one fsync) for the collects that completed
            done, self.collected = self.collected, []
            rows = sum(t.rows for t in done)
            self._add(Task("add", "", rows, transitions=[r for t in done for r in t.transitions]))

    def _handle(self, ref) -> None:
        task = self.tasks.pop(ref, None)
        if task is None:
            return  # settled when its actor was replaced
        try:
            value = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            self.tasks[ref] = task  # settled below together with its actor's other tasks
            self.on_actor_died(e.actor_id)
            if self.tasks.pop(ref, None) is not None:
                self._settle(task)
            return
        except ray.exceptions.ObjectLostError:
            if task.kind != "add":
                raise
            self.rows_in_flight -= task.rows  # never acknowledged: nothing was promised
            return
        getattr(self, f"_done_{task.kind}")(task, value)

    def drain(self) -> None:
        """Let in-flight calls finish (their inserts are acknowledged) without new ones."""
        end = time.perf_counter() + DRAIN_SECONDS
        while self.tasks and time.perf_counter() < end:
            self.wait(1.0)

    # -- completions -----------------------------------------------------------------
    def _done_collect(self, task: Task, info) -> None:
        slot = self.fleet.slots[task.runner]
        if slot.actor_id == task.actor:
            slot.calls -= 1
        self.rows_in_flight += info.env_steps - task.rows
        self.busy["runner"] += info.seconds
        steps = self.window.runner_steps
        steps[task.runner] = steps.get(task.runner, 0) + info.env_steps
        if info.version >= 0:
            self.window.acting_lags.append(self.updates - info.version)
        self.loop.add_episodes(info.episodes)
        self.loop.add_recorded(info.recorded)
        task.rows = info.env_steps
        self.collected.append(task)

    def _add(self, task: Task) -> None:
        if not task.insert_ids:
            n = len(task.transitions)
            task.insert_ids = list(range(self.next_insert_id, self.next_insert_id + n))
            self.next_insert_id += n
        task.actor = self.fleet.buffer_id
        ref = self.fleet.buffer.add.remote(task.insert_ids, *task.transitions)
        self.tasks[ref] = task

    def _done_add(self, task: Task, acks) -> None:
        self.rows_in_flight -= task.rows
        self.acked_rows += task.rows  # a re-sent insert the buffer already held counts too
        self.inserted = max(self.inserted, acks[-1].total_added)

    def _done_train(self, task: Task, info) -> None:
        self.updates_in_flight -= task.updates
        self.updates = info.version
        self.busy["learner"] += info.seconds
        for m in info.metrics:
            self.loop.add_losses(m)
        self.window.lags.append(info.policy_lag)
        if task.weights is not None:
            self.fleet.publish(task.weights, info.version)

    def _done_checkpoint(self, task: Task, result: dict) -> None:
        pass

    # -- failures --------------------------------------------------------------------
    def on_actor_died(self, actor_id: str | None) -> None:
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
            self.lost_rows += max(0, self.inserted - stats.total_added)
            self.inserted = stats.total_added
            self.next_insert_id = max(self.next_insert_id, stats.last_insert_id + 1)
        if role == "learner":
            self.updates, self.unpublished = self.fleet.learner_version, 0
        for task in sorted(dead.values(), key=lambda t: min(t.insert_ids, default=-1)):
            self._settle(task)
        self.loop.write_event(self._restart_keys())

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

    # -- what the loop asks ----------------------------------------------------------
    def timers(self) -> dict[str, float]:
        """Seconds inside calls: runners' on average over the runners, the learner's."""
        return {
            "runner": self.busy["runner"] / len(self.fleet.slots),
            "learner": self.busy["learner"],
        }

    def actors(self):
        return self.fleet.latest_actors()

    def buffer_size(self) -> int:
        return min(self.inserted, self.config.buffer.capacity)

    def _restart_keys(self) -> dict[str, int]:
        r = self.fleet.restarts
        return {
            "dist/restarts": sum(r.values()),
            **{f"dist/restarts/{k}": v for k, v in sorted(r.items())},
        }

    def log_keys(self, seconds: float) -> dict[str, Any]:
        w, row = self.window, {}
        if w.lags:
            row["dist/policy_lag"] = float(np.mean(w.lags))
        if w.acting_lags:
            row["dist/acting_lag"] = float(np.mean(w.acting_lags))
        for slot in self.fleet.slots:
            row[f"dist/runner_{slot.index}/env_steps_per_s"] = (
                w.runner_steps.get(slot.index, 0) / seconds
            )
        row.update(self._restart_keys())
        if self.lost_rows:
            row["dist/lost_rows"] = self.lost_rows
        self.window = Window()
        return row

    def state_dict(self) -> dict[str, Any]:
        """The fleet's counters; the learner's state and the buffer's counters are added by
        the buffer actor, which writes the checkpoint (`write_checkpoint`)."""
        return {"distributed": self.fleet.checkpoint_state()}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        """Nothing left to do: the fleet started its buffer and learner actors from this
        checkpoint (the learner's state, the buffer file plus the write-ahead log)."""

    def write_checkpoint(self, payload: dict[str, Any]) -> None:
        """Through the buffer actor (it writes the buffer, the payload and the learner
        state together, then empties its log); retried next time if an actor dies."""
        f = self.fleet
        ref = f.buffer.checkpoint.remote(payload, f.learner.checkpoint_state.remote())
        self.tasks[ref] = Task("checkpoint", f.buffer_id)
        end = time.perf_counter() + DRAIN_SECONDS
        while ref in self.tasks and time.perf_counter() < end:
            self.wait(1.0)

    def finish(self) -> None:
        self.drain()

    def flush_recorded(self) -> list:
        return self.fleet.flush_recorded()

    def close(self) -> None:
        self.fleet.shutdown()

    def result(self) -> dict[str, Any]:
        return {
            "restarts": dict(self.fleet.restarts),
            "acked_rows": self.acked_rows,
            "lost_rows": self.lost_rows,
            "runner_nodes": self.fleet.runner_nodes(),
        }


def wait_any(sources: list[RaySource], timeout: float = WAIT_SECONDS) -> None:
    """Block until a call of any of `sources` completes (or `timeout`); each source's own
    `wait` then handles it (the members of a population on Ray)."""
    refs = [ref for src in sources for ref in src.tasks]
    if refs:
        ray.wait(refs, num_returns=1, timeout=timeout)


def measure_sampling(loop: TrainLoop, seconds: float) -> dict[str, Any]:
    """Runners only, the learner idle and no rate limit, for `seconds` (after in-flight
    calls finished): acknowledged env steps per second (`predprey bench train`)."""
    src, a = loop.source, loop.config.algo
    noise, warmup = a.exploration_noise, loop.config.buffer.warmup
    src.drain()
    cpu0 = _cpu_seconds(src.fleet)
    t0, steps0, timers0 = time.perf_counter(), src.inserted, src.timers()
    while time.perf_counter() < t0 + seconds:
        for slot in src.idle_runners():
            inserted = src.inserted + src.rows_in_flight
            if inserted < loop.total_env_steps:
                src.collect(slot, noise, inserted < warmup, inserted)
        src.wait()
    profile = Profile()
    profile.add(time.perf_counter() - t0, src.inserted - steps0, 0, timers0, src.timers())
    src.drain()
    cpu = {k: v - cpu0[k] for k, v in _cpu_seconds(src.fleet).items()}
    wall, steps = time.perf_counter() - t0, max(src.inserted - steps0, 1)
    return {
        **profile.to_dict(concurrent=True),
        "cores": {k: v / wall for k, v in cpu.items()},  # CPU seconds per wall second
        "cpu_ms_per_1k_steps": {k: 1e6 * v / steps for k, v in cpu.items()},
    }


def _cpu_seconds(f: Fleet) -> dict[str, float]:
    """CPU seconds so far of the runners (summed), the buffer actor and this driver."""
    runners = ray.get([s.handle.cpu_seconds.remote() for s in f.slots], timeout=60)
    buffer = ray.get(f.buffer.cpu_seconds.remote(), timeout=60)
    return {"runners": sum(runners), "buffer": buffer, "driver": time.process_time()}
