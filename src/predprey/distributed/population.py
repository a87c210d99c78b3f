"""A population on Ray (`predprey train --config configs/tag_population.yaml --runners K`):
the `Population` of one process (predprey.population.trainer: fitness, sync, selection,
mutation, events, checkpoints) over `RayMember`s, whose learner, replay and runners are
actors.

Each member is a `RaySource` of its own (K runner actors, a buffer actor with its
write-ahead log, a learner actor), paced by its own samples-per-insert `MemberLimiter`,
with its durable state in RUN/members/K/ (checkpoint, replay files, log): what a
single-learner Ray run keeps in RUN/. So the fleet's rate limiting, weight publishing and
restarts work per member as they do for one learner: a member's actor that dies is
replaced (its learner from the member's latest checkpoint, its buffer from that
checkpoint plus its log), the population goes on, and `dist/restarts` counts it.

The copies between members (`team_state`, `load_team_state`, weight noise, learning
rates) are learner-actor calls, made while no call of any member is in flight; then the
member publishes its weights to its runners. RUN/checkpoints/latest.pt is the
population's (loop state, every member's actors, hyperparameters and lineage), written
after the members' own, so `--resume` restores the whole population.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import ray

from predprey import checkpoint
from predprey.config import Config
from predprey.distributed.actors import weights_to_torch
from predprey.distributed.driver import RaySource, wait_any
from predprey.learn.offpolicy import OffPolicy
from predprey.learn.widths import fit_actors
from predprey.population.member import MemberBase, MemberHooks, MemberLimiter, changed_pace
from predprey.rundir import RunDir


def member_run(run: RunDir, k: int) -> RunDir:
    """Where member k keeps its durable state."""
    return RunDir(run.path / "members" / str(k))


class RayMember(MemberBase):
    """A member whose runners, replay and learner are actors (a `RaySource` of its own, with
    its durable state in RUN/members/K); the population's operations on its networks are
    calls on its learner actor."""

    remote = True

    def __init__(self, k: int, config: Config, hp: Mapping[str, Any], loop: Any, runners: int):
        run = member_run(loop.run_dir, k)
        payload, self.own_state = None, None
        if loop.payload is not None:  # resumed: its actors start with its saved widths and hp
            payload = checkpoint.load(run)
            # Its own checkpoint holds its hyperparameters and lineage beside its networks:
            # written before the population's, it may be one checkpoint newer (a crash in
            # between), and its networks have that checkpoint's widths.
            self.own_state = payload.get("member")
            saved = loop.payload.get("population", {}).get("members", [])
            if self.own_state is not None:
                hp = self.own_state["hp"]
            elif k < len(saved):
                hp = saved[k]["hp"]  # else: an error in load_state_dict
        super().__init__(k, config, hp, loop)
        self.source = src = RaySource(self.config, MemberHooks(self, loop, run, payload), runners)
        src.wait_seconds = 0.0  # the population waits on every member at once
        d = config.distributed
        self.slack = max(d.insert_slack or 2 * runners * src.chunk, src.chunk)
        self.algorithm = OffPolicy(self.config, MemberLimiter(self.config, self.slack))
        self._actor_set = None

    @property
    def fleet(self):
        return self.source.fleet

    def _call(self, method: str, *args) -> Any:
        """A call on the learner actor, waited for; if the actor died, it is replaced
        (from the member's latest checkpoint) and the call made on the new one."""
        try:
            return ray.get(getattr(self.fleet.learner, method).remote(*args))
        except ray.exceptions.RayActorError as e:
            self.source.on_actor_died(e.actor_id or self.fleet.learner_id)
            return ray.get(getattr(self.fleet.learner, method).remote(*args))

    def _publish(self) -> None:
        """Runners act with the learner's networks as they are now, from their next call."""
        self.fleet.publish(self.fleet.learner.weights.remote(), self.source.updates)

    def apply_hp(self) -> None:
        self.fleet.config = self.config  # batch size of its learn calls, a new learner's hp
        self._call("set_hp", self.config.algo)
        self._publish()  # a new width reaches the runners now, not at the next publish
        src = self.source
        make = functools.partial(MemberLimiter, self.config, self.slack)
        self.algorithm.pace = changed_pace(self.algorithm.pace, make, src.inserted, src.updates)

    def restarts(self) -> int:
        return sum(self.fleet.restarts.values())

    # -- the network operations of the population ---------------------------------------
    def settle(self) -> None:
        self.source.drain()

    def team_state(self, team: str, parts: Sequence[str]) -> dict[str, Any]:
        return self._call("team_state", team, parts)

    def load_team_state(self, team: str, state: Mapping[str, Any]) -> None:
        self._call("load_team_state", team, state)
        self._publish()

    def add_weight_noise(self, team: str, relative_std: float, seed: int) -> None:
        self._call("add_weight_noise", team, relative_std, seed)
        self._publish()

    def actors(self):
        """A copy of the learner actor's current actors (for evaluation)."""
        weights = weights_to_torch(self._call("weights"))
        self._actor_set = fit_actors(self._actor_set, self.fleet.teams, self.config.algo, weights)
        return self._actor_set

    # -- checkpoints -----------------------------------------------------------------
    def save_own_checkpoint(self) -> None:
        """Learner, replay and the fleet's counters to RUN/members/K (through its buffer
        actor, as a single-learner Ray run writes RUN/)."""
        src = self.source
        src.write_checkpoint({
            "teams": checkpoint.team_list(self.fleet.teams), **src.state_dict(),
            "member": self.lineage_state(),  # one unit with its networks (see __init__)
        })  # fmt: skip

    def state(self) -> dict[str, Any]:
        return {
            "actors": self.actors().actor_state(),  # what `policy.load(run, member=K)` reads
            "updates": self.source.updates,
            "env_steps": self.source.inserted,
            **self.lineage_state(),
        }

    def restore(self, state: Mapping[str, Any], buffer) -> None:
        """Hyperparameters and lineage, from its own checkpoint where it has them (its
        networks and replay came from that checkpoint when its fleet started)."""
        self.restore_lineage(self.own_state or state)


def wait_members(members: Sequence[RayMember]) -> None:
    """Block until a call of any member completes (the population's `wait`)."""
    wait_any([m.source for m in members])
