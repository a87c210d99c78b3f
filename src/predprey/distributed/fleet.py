"""The actors of a distributed run: where they start, and their replacement after a crash.

Placement: the buffer actor runs on the driver's node (it writes the run directory: its
checkpoint files and write-ahead log); the learner prefers that node too (batches are the
heaviest traffic); runners are spread over the cluster's nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from predprey import checkpoint, seeding
from predprey.config import Config, ConfigError
from predprey.distributed.actors import BufferActor, LearnerActor, RunnerActor, weights_to_torch
from predprey.learn.spec import team_specs, transition_spec
from predprey.rundir import RunDir, RunDirError

START_TIMEOUT = 300.0  # seconds for a new actor to come up (imports torch, compiles kernels)
ROLES = ("runner", "buffer", "learner")
# Seconds between snapshots of the learner's state in the object store (which outlives the
# learner's process): a killed learner restarts from its snapshot, at most this old, or
# from the latest checkpoint if that is newer. Checkpoints (minutes apart, each writes the
# replay buffer) alone would cost a killed learner minutes of updates, which the runners
# then wait out under the rate limit (`predprey bench chaos`).
SNAPSHOT_SECONDS = 10.0


class RestartsExhausted(RuntimeError):
    """Actors of one role died more often than `distributed.max_restarts`: the run stops
    (`predprey train` prints this one line; the latest checkpoint stays as it was)."""


def check_restarts(kind: str, restarts: int, limit: int) -> None:
    if restarts > limit:
        raise RestartsExhausted(
            f"{kind} actors died {restarts} times, more than "
            f"distributed.max_restarts={limit}; stopping (the latest checkpoint is kept)"
        )


@dataclass
class RunnerSlot:
    index: int
    handle: Any
    actor_id: str
    node_id: str
    incarnation: int
    version: int = -1  # actor weights version this runner holds (-1: none yet)
    serial: int = -1  # the fleet's publish this runner holds (-1: none yet)
    calls: int = 0  # collect calls sent and not yet returned


class Fleet:
    def __init__(self, config: Config, run: RunDir, runners: int, payload: dict | None):
        self.config, self.run = config, run
        tr, d = config.train, config.distributed
        self.teams = team_specs(config.env.make(num_envs=1, seed=0))
        if payload is not None:
            checkpoint.check_teams(payload, self.teams, str(run.path))
        self.spec = transition_spec(self.teams)
        envs = d.envs_per_runner or config.env.num_envs
        self.runner_config = config.replace(env=dataclasses.replace(config.env, num_envs=envs))
        self.chunk = d.steps_per_call * envs  # transitions per collect call
        state = (payload or {}).get("distributed", {})
        self.restarts = {r: int(state.get("restarts", {}).get(r, 0)) for r in ROLES}
        self.session = int(state.get("sessions", 0)) + (payload is not None)
        self.threads = tr.torch_threads or 1
        self.node_id = ray.get_runtime_context().get_node_id()
        self.roles: dict[str, str] = {}  # live actor id -> role ("buffer", "runner/3", ...)
        self.weights_serial = 0  # publishes so far: a runner lacking the latest gets it
        self._actors = None
        # Refs of the learner's latest state snapshots, newest last: the one before the
        # newest is kept until the newest is taken (the learner may die first).
        self.snapshots: list = []
        self.snapshot_at = time.monotonic()

        # Start every actor first and wait for them together: their start-ups overlap.
        learner_state = payload["learner"] if payload is not None else None
        buffer = self._buffer_handle(restore=payload is not None)
        learner = self._learner_handle(learner_state)
        runner_handles = [self._runner_handle(i, 0) for i in range(runners)]
        try:
            self._buffer_up(buffer)
            self._learner_up(learner)
            self.slots = [self._runner_up(i, 0, h) for i, h in enumerate(runner_handles)]
        except BaseException:
            for h in (buffer, learner, *runner_handles):
                _kill(h)
            raise

    # -- starting actors -----------------------------------------------------------
    def _seed(self, *words: int) -> int:
        return seeding.session_seed(self.config.train.seed, self.session, *words)

    def _hello(self, handle, role: str) -> tuple[str, str]:
        """Wait until a new actor is up; register it. Returns (actor id, node id)."""
        try:
            actor_id, node_id = ray.get(handle.hello.remote(), timeout=START_TIMEOUT)
        except ray.exceptions.RayTaskError as e:  # its constructor raised
            if isinstance(e.cause, ConfigError | RunDirError | ValueError):
                raise e.cause from None
            raise
        self.roles[actor_id] = role
        return actor_id, node_id

    def _buffer_handle(self, restore: bool):
        here = NodeAffinitySchedulingStrategy(self.node_id, soft=False)
        return BufferActor.options(scheduling_strategy=here).remote(
            str(self.run.path.resolve()), self.config.buffer.capacity, self.spec,
            self._seed(seeding.BUFFER, self.restarts["buffer"]), self.config.distributed.wal,
            restore,
        )  # fmt: skip

    def _buffer_up(self, handle) -> None:
        self.buffer, self.buffer_id = handle, self._hello(handle, "buffer")[0]
        self.buffer_stats = ray.get(handle.stats.remote())

    def _learner_handle(self, state: dict | None):
        if self.session == 0 and state is None:  # the single-process trainer's learner seed
            seed = seeding.learner_seed(self.config.train.seed)
        else:
            seed = self._seed(seeding.LEARNER, self.restarts["learner"])
        near = NodeAffinitySchedulingStrategy(self.node_id, soft=True)
        return LearnerActor.options(scheduling_strategy=near).remote(
            self.teams, self.config.algo, seed, self.threads, state
        )

    def _learner_up(self, handle) -> None:
        self.learner, self.learner_id = handle, self._hello(handle, "learner")[0]
        self.learner_version = ray.get(handle.version.remote())
        self.publish(handle.weights.remote(), self.learner_version)

    def _runner_handle(self, index: int, incarnation: int):
        return RunnerActor.options(scheduling_strategy="SPREAD").remote(
            self.runner_config,
            self._seed(seeding.RUNNER, index, incarnation),
            index == 0,
            self.threads,
        )

    def _runner_up(self, index: int, incarnation: int, handle) -> RunnerSlot:
        actor_id, node_id = self._hello(handle, f"runner/{index}")
        return RunnerSlot(index, handle, actor_id, node_id, incarnation)

    # -- calls ---------------------------------------------------------------------
    def collect(self, slot: RunnerSlot, noise: float, warm: bool, env_steps_before: int):
        """Start a collect call; the runner gets the latest weights if it lacks them.
        Returns (transitions ref, CollectInfo ref)."""
        weights = None
        if slot.serial != self.weights_serial:
            weights, slot.version, slot.serial = (
                self.weights_ref, self.weights_version, self.weights_serial,
            )  # fmt: skip
        slot.calls += 1
        return slot.handle.collect.remote(
            self.config.distributed.steps_per_call, noise, warm, env_steps_before,
            weights, self.weights_version,
        )  # fmt: skip

    def train(self, n_updates: int, publish: bool):
        """Sample on the buffer, update on the learner (the batch goes between them directly).
        Returns (TrainInfo ref, weights ref)."""
        batches = self.buffer.sample.remote(n_updates, self.config.algo.batch_size)
        refs = self.learner.train.remote(batches, n_updates, publish)
        if time.monotonic() - self.snapshot_at >= SNAPSHOT_SECONDS:  # the state after it
            self.snapshots = [*self.snapshots[-1:], self.learner.checkpoint_state.remote()]
            self.snapshot_at = time.monotonic()
        return refs

    def publish(self, weights_ref, version: int) -> None:
        """Runners get these weights with their next call (a population member's networks
        may change without an update: same version, new publish)."""
        self.weights_ref, self.weights_version = weights_ref, version
        self.weights_serial += 1

    def latest_actors(self):
        """The latest published actor weights in a local ActorSet (for evaluation)."""
        from predprey.learn.attention import build_actors

        if self._actors is None:
            self._actors = build_actors(self.teams, self.config.algo)
        self._actors.load_actor_state(weights_to_torch(ray.get(self.weights_ref)))
        return self._actors

    def flush_recorded(self) -> list:
        try:
            return ray.get(self.slots[0].handle.flush_recorded.remote(), timeout=60)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return []

    def checkpoint_state(self) -> dict:
        return {"restarts": dict(self.restarts), "sessions": self.session}

    def runner_nodes(self) -> list[str]:
        return [s.node_id for s in self.slots]

    # -- failures ------------------------------------------------------------------
    def role_of(self, actor_id: str | None) -> str | None:
        return self.roles.get(actor_id) if actor_id else None

    def replace(self, role: str) -> None:
        """Start a fresh actor for `role` (whose actor died): a runner fresh (it gets the
        latest weights with its next call), the buffer from the checkpoint + write-ahead
        log, the learner from its latest snapshot or checkpoint, whichever is newer. A new
        actor that dies while starting is one more restart, and replaced in turn."""
        kind = role.split("/")[0]
        while True:
            self.restarts[kind] += 1
            check_restarts(kind, self.restarts[kind], self.config.distributed.max_restarts)
            for actor_id in [a for a, r in self.roles.items() if r == role]:
                del self.roles[actor_id]
            try:
                self._start_again(role, kind)
                return
            except ray.exceptions.RayActorError:
                continue

    def _start_again(self, role: str, kind: str) -> None:
        if kind == "runner":
            index = int(role.split("/")[1])
            old = self.slots[index]
            _kill(old.handle)
            inc = old.incarnation + 1
            self.slots[index] = self._runner_up(index, inc, self._runner_handle(index, inc))
        elif kind == "buffer":
            _kill(self.buffer)
            self._buffer_up(self._buffer_handle(restore=True))
        else:
            _kill(self.learner)
            self._learner_up(self._learner_handle(self._newest_learner_state()))

    def _newest_learner_state(self) -> dict | None:
        """The learner state of the newest snapshot the learner lived to take or of the
        latest checkpoint, whichever holds more updates; None if neither exists."""
        found = []
        for ref in self.snapshots:
            with contextlib.suppress(ray.exceptions.RayError):  # died before taking it
                found.append(ray.get(ref, timeout=START_TIMEOUT))
        if checkpoint.latest_path(self.run).is_file():
            found.append(checkpoint.load(self.run))
        return max(found, key=lambda s: s["updates"])["learner"] if found else None

    def shutdown(self) -> None:
        for h in (*(s.handle for s in self.slots), self.learner, self.buffer):
            _kill(h)
        self.roles.clear()


def _kill(handle) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing to do
        ray.kill(handle, no_restart=True)
