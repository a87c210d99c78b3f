"""A second learner process (`algo.learner_processes: 2`): the first trained team learns in the
training process beside the envs, the other trained teams in a process of their own, on the
second core.

The one-process loop leaves a core idle (one torch thread is fastest for these small
networks, `predprey bench train`), and the learner takes ~85% of its time. MADDPG's teams
couple only through the replay rows and the other teams' target actions, so each learner
trains its own teams (`algo.teams`) and holds the others' actors fixed between exchanges:

  training process                          second process (`TeamLearner`)
  envs -> rows -> replay --------- rows --> replay replica (the same rows, in order)
  Learner(first team) <-- actors, targets --> Learner(other teams)
                      every `distributed.weight_sync_every` updates, each way

The second learner keeps the first's pace (one update per `algo.env_steps_per_update` env
steps) times `algo.second_learner_ratio`, and waits for rows when it is ahead. Its checkpoint
is taken between two of its updates, after every row sent before it; on resume it reads the
run's replay buffer from the checkpoint (its replica is the same rows). The exchange depends
on timing, so a run with two learner processes is not bit-reproducible.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from predprey import checkpoint
from predprey.config import Config
from predprey.learn.buffer import ReplayBuffer
from predprey.rundir import RunDir

REPLY_TIMEOUT = 600.0  # seconds the training process waits for a state or the last weights


def split_teams(teams: tuple, config: Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the first trained team, the other trained teams): who learns in which process. The
    first is the first of `algo.teams` (empty: of the scenario's teams)."""
    trained = list(config.algo.teams) or [t.name for t in teams]
    if len(trained) < 2:
        raise ValueError(
            f"algo.learner_processes: 2 splits the trained teams over two processes; "
            f"this run trains {trained} (train at least two teams, or set 1)"
        )
    return (trained[0],), tuple(trained[1:])


class TeamLearner:
    """The second process's work as a plain class: a `Learner` of some teams over a replay
    replica, paced by the rows it has been given (tests run it in-process)."""

    def __init__(self, config: Config, teams: tuple, spec: Mapping, seeds: tuple[int, Any]):
        from predprey.learn.maddpg import Learner

        a = config.algo
        _, own = split_teams(teams, config)
        self.config, self.own = config, own
        self.learner = Learner(teams, replace(a, teams=own), seed=seeds[0])
        self.rng = np.random.default_rng(seeds[1])
        self.buffer = ReplayBuffer(config.buffer.capacity, spec)
        self.inserted = 0  # env steps received
        # the first learner's pace (`UpdateCredit`): from the vector step after the warm-up
        E = config.env.num_envs
        first = max(config.buffer.warmup, a.batch_size - E, 0)
        self.start = -(-first // E) * E
        self.per_update = a.env_steps_per_update / a.second_learner_ratio  # env steps

    def add(self, rows: Mapping[str, np.ndarray]) -> None:
        self.inserted += self.buffer.add(rows)

    def owed(self) -> int:
        """Updates the rows received so far pay for and this learner has not taken."""
        earned = int(max(0, self.inserted - self.start) // self.per_update)
        return max(0, earned - self.learner.version)

    def update(self) -> dict[str, float]:
        batch = self.buffer.sample(self.config.algo.batch_size, self.rng)
        return self.learner.update(batch)

    def weights(self) -> dict[str, Any]:
        """Its own teams' actors and target actors, for the other learner."""
        return team_weights(self.learner, self.own)

    def load_weights(self, weights: Mapping[str, Any]) -> None:
        load_team_weights(self.learner, weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "learner": self.learner.state_dict(),
            "rng": self.rng.bit_generator.state,
            "inserted": self.inserted,
        }

    def load_state_dict(self, state: Mapping[str, Any], buffer: ReplayBuffer) -> None:
        self.learner.load_state_dict(state["learner"])
        self.rng.bit_generator.state = state["rng"]
        self.inserted = int(state["inserted"])
        self.buffer = buffer


def team_weights(learner: Any, teams: tuple[str, ...]) -> dict[str, Any]:
    """`teams`' actor and target-actor weights of `learner`, as NumPy arrays: torch tensors
    sent through a multiprocessing queue move to shared memory one file each (~ms)."""
    return {
        role: {
            name: {k: v.numpy() for k, v in sd.items()}
            for name, sd in getattr(learner, attr).actor_state().items()
            if name in teams
        }
        for role, attr in (("actors", "actors"), ("targets", "actor_targets"))
    }


def load_team_weights(learner: Any, weights: Mapping[str, Any]) -> None:
    for role, attr in (("actors", "actors"), ("targets", "actor_targets")):
        state = {
            name: {k: torch.from_numpy(v) for k, v in sd.items()}
            for name, sd in weights[role].items()
        }
        getattr(learner, attr).load_actor_state(state)


def _serve(config_dict: dict, teams: tuple, spec: Mapping, seeds, inbox, outbox) -> None:
    """The second process: take messages, update while owed, send weights and losses."""
    try:
        from predprey.config import config_from_dict
        from predprey.threads import limit_threads

        limit_threads(1)
        config = config_from_dict(config_dict)
        work = TeamLearner(config, teams, spec, seeds)
        sync = config.distributed.weight_sync_every
        losses: list[dict[str, float]] = []
        while True:
            try:  # block only when no update is owed
                msg = inbox.get_nowait() if work.owed() else inbox.get(timeout=1.0)
            except queue.Empty:
                msg = None
            if msg is not None:
                kind, body = msg
                if kind == "rows":
                    work.add(body)
                elif kind == "weights":
                    work.load_weights(body)
                elif kind == "state":
                    outbox.put(("state", (work.state_dict(), work.weights())))
                elif kind == "load":
                    state, run_path, buffer_payload = body
                    buffer = checkpoint.load_buffer(
                        RunDir(Path(run_path)), buffer_payload, config.buffer.capacity
                    )
                    work.load_state_dict(state, buffer)
                elif kind == "stop":
                    return
                continue  # every waiting message first: rows before the updates they pay for
            if work.owed():
                losses.append(work.update())
                if work.learner.version % sync == 0:
                    outbox.put(("weights", (work.weights(), _means(losses), work.learner.version)))
                    losses = []
    except Exception:
        outbox.put(("error", traceback.format_exc()))


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]} if rows else {}


class SecondLearner:
    """The training process's handle on the second learner: sends the rows and its own
    teams' weights, applies the weights and losses that come back."""

    def __init__(self, config: Config, teams: tuple, spec: Mapping, seeds, learner: Any):
        ctx = mp.get_context("spawn")  # a fresh interpreter: no torch or Ray state forked
        self.first, self.own = split_teams(teams, config)
        self.learner = learner  # the training process's: takes the second's actors
        self.sync = config.distributed.weight_sync_every
        self.inbox, self.outbox = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(
            target=_serve,
            args=(config.to_dict(), teams, dict(spec), seeds, self.inbox, self.outbox),
            name="predprey-second-learner",
            daemon=True,
        )
        self.process.start()
        self.updates = 0  # the second learner's, as of its last weights
        self.sent_at = 0  # the first learner's version at its last weights sent

    def add(self, rows: Mapping[str, np.ndarray]) -> None:
        self.inbox.put(("rows", rows))

    def exchange(self, add_losses) -> None:
        """Send the first learner's weights if `weight_sync_every` updates have passed; apply
        the second's latest weights (losses of every message go to `add_losses`)."""
        if not self.process.is_alive():
            raise RuntimeError(
                f"the second learner process died (exit code {self.process.exitcode})"
            )
        if self.learner.version - self.sent_at >= self.sync:
            self.inbox.put(("weights", team_weights(self.learner, self.first)))
            self.sent_at = self.learner.version
        latest = None
        while True:
            try:
                kind, body = self.outbox.get_nowait()
            except queue.Empty:
                break
            latest = self._take(kind, body, add_losses) or latest
        if latest is not None:
            load_team_weights(self.learner, latest)

    def _take(self, kind: str, body: Any, add_losses) -> Any:
        if kind == "error":
            raise RuntimeError(f"the second learner process failed:\n{body}")
        if kind != "weights":
            raise RuntimeError(f"the second learner sent {kind!r} unasked")
        weights, losses, self.updates = body
        if losses:
            add_losses(losses)
        return weights

    def _reply(self, kind: str, add_losses) -> Any:
        """Wait for the reply `kind`, taking the weights that come before it."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                got, body = self.outbox.get(timeout=1.0)
            except queue.Empty:
                if not self.process.is_alive():
                    raise RuntimeError(
                        f"the second learner process died (exit code {self.process.exitcode})"
                    ) from None
                continue
            if got == kind:
                return body
            weights = self._take(got, body, add_losses)
            if weights is not None:
                load_team_weights(self.learner, weights)
        raise RuntimeError(f"the second learner gave no {kind} in {REPLY_TIMEOUT:.0f} s")

    def state_dict(self, add_losses) -> dict[str, Any]:
        """Its state after every row sent so far; its latest weights applied here first."""
        self.inbox.put(("state", None))
        state, weights = self._reply("state", add_losses)
        load_team_weights(self.learner, weights)
        return state

    def load_state_dict(self, state: Mapping, run: RunDir, payload: Mapping) -> None:
        buffer_payload = {"buffer_file": payload["buffer_file"]}
        self.inbox.put(("load", (state, str(run.path), buffer_payload)))

    def close(self) -> None:
        if self.process.is_alive():
            self.inbox.put(("stop", None))
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        for q in (self.inbox, self.outbox):
            q.cancel_join_thread()
            q.close()
