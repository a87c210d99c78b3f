"""One member of a population: a learner with its runner and replay (a `LocalSource` in
this process; `predprey.distributed.population.RayMember` on Ray), its off-policy pacing,
its hyperparameters and lineage, and the window of its own metrics; plus the copies of a
team's networks from one member to another (plain functions of a `Learner`, which a
member's learner actor calls too).

Member 0 runs with the run's own seed (a population of one is the single learner); the
others get seeds of their own, so they start from different weights and worlds. Only
member 0 records training episodes (the file names have no member).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from predprey import seeding
from predprey.config import Config
from predprey.learn.buffer import ReplayBuffer
from predprey.learn.offpolicy import OffPolicy
from predprey.learn.rate_limiter import RateLimiter, UpdateCredit, samples_per_insert
from predprey.learn.spec import transition_spec
from predprey.population.resize import copy_overlap, resized, with_hp
from predprey.trainlog import TrainLog

CRITIC_PARTS = ("critics", "critic_targets")  # what a genetic sync copies
ALL_PARTS = ("actors", "actor_targets", *CRITIC_PARTS)  # what a selected clone copies


def member_budget(total: int, size: int, k: int) -> int:
    """Member k's share of the population's env-step budget (members take equal turns)."""
    return total // size + (k < total % size)


def member_config(config: Config, k: int, hp: Mapping[str, Any]) -> Config:
    """The config member k trains with: its seed, its hyperparameters (`hidden`: the width
    of each of `algo.hidden`'s layers)."""
    tr = config.train
    train = dataclasses.replace(
        tr, seed=seeding.member_seed(tr.seed, k), record_envs=tr.record_envs if k == 0 else ()
    )
    values = dict(hp)
    if "hidden" in values:
        values["hidden"] = (int(values["hidden"]),) * len(config.algo.hidden)
    return config.replace(algo=dataclasses.replace(config.algo, **values), train=train)


class MemberPace:
    """`UpdateCredit` counted from the member's latest hyperparameter change (at env steps
    `inserted0` and updates `updates0`; 0, 0 = never changed, exactly `UpdateCredit`): a new
    update-to-data ratio pays only for the env steps taken after it (plus, through
    `updates0`, what the old one still owed: `changed_pace`)."""

    def __init__(self, config: Config, inserted0: int = 0, updates0: int = 0):
        a = config.algo
        self.credit = UpdateCredit(
            a.env_steps_per_update, a.batch_size, config.buffer.warmup, config.env.num_envs
        )
        self.inserted0, self.updates0 = int(inserted0), int(updates0)

    def batches_allowed(self, inserted: int, sampled: int) -> int:
        c = self.credit
        if self.inserted0 == 0:
            return c.batches_allowed(inserted, sampled)
        if inserted < c.batch_size:
            return 0
        earned = (inserted - self.inserted0) // c.env_steps_per_update
        return max(0, earned - (sampled // c.batch_size - self.updates0))

    def may_insert(self, inserted: int, sampled: int, rows: int) -> bool:
        return True

    def owed(self, inserted: int, updates: int) -> int:
        """Updates this pace still allows after `updates` (none in flight)."""
        return self.batches_allowed(inserted, updates * self.credit.batch_size)


class MemberLimiter:
    """The samples-per-insert `RateLimiter` of a member whose runners and learner work at
    once (on Ray), counted from its latest hyperparameter change as `MemberPace` is: after
    a change at env steps `inserted0` and updates `updates0` the new ratio pays only for the
    env steps inserted since."""

    def __init__(self, config: Config, slack: int, inserted0: int = 0, updates0: int = 0):
        a = config.algo
        self.limiter = RateLimiter(
            samples_per_insert(config), a.batch_size, config.buffer.warmup, slack
        )
        self.slack = slack
        self.inserted0, self.updates0 = int(inserted0), int(updates0)

    def _since_change(self, inserted: int, sampled: int) -> tuple[int, int]:
        if self.inserted0 == 0:
            return inserted, sampled
        lim = self.limiter  # as if the member had started at the change, warmed up
        return inserted - self.inserted0 + lim.warmup, sampled - self.updates0 * lim.batch_size

    def batches_allowed(self, inserted: int, sampled: int) -> int:
        if self.inserted0 == 0:
            return self.limiter.batches_allowed(inserted, sampled)
        credit = self.limiter.credit(*self._since_change(inserted, sampled))
        return max(0, math.floor(credit / self.limiter.batch_size))

    def owed(self, inserted: int, updates: int) -> int:
        """Updates this pace still allows after `updates` (none in flight)."""
        return self.batches_allowed(inserted, updates * self.limiter.batch_size)

    def may_insert(self, inserted: int, sampled: int, rows: int) -> bool:
        return self.limiter.may_insert(*self._since_change(inserted, sampled), rows)


def changed_pace(old, make, inserted: int, updates: int):
    """The pace after a hyperparameter change at `inserted` env steps and `updates` updates
    (nothing in flight): `make(inserted0, updates0)` counting from the change, the updates
    the `old` pace still owed carried over (env steps already taken paid for them; a member
    on Ray may have inserted many rows while the population settled for the change); from
    the start (`make()`) if the member has had no update to pay for yet."""
    owed = old.owed(inserted, updates)
    if updates == 0 and owed == 0:
        return make()
    return make(inserted, updates + owed)


class MemberHooks:
    """The loop a member's source reports to: its own window and the population's. A member
    on Ray keeps its durable state (checkpoint, replay files, write-ahead log) in its own
    `run_dir` (RUN/members/K) and restores from its own `payload`."""

    def __init__(self, member: MemberBase, loop: Any, run_dir: Any = None, payload=None):
        self.member, self.loop = member, loop
        self.teams, self.run_dir = loop.teams, run_dir or loop.run_dir
        self.payload = payload  # None: a local population restores its members itself

    def add_episodes(self, episodes) -> None:
        self.member.episodes += self.member.log.add_episodes(episodes)
        self.loop.add_episodes(episodes)

    def add_losses(self, metrics) -> None:
        self.member.log.add_losses(metrics)
        self.loop.add_losses(metrics)

    def add_recorded(self, recorded: list) -> None:
        self.loop.add_recorded(recorded)

    def write_event(self, keys: dict[str, Any]) -> None:
        """A member's event (an actor restart): its keys as `member/K/...`, plus the
        population's totals (`Population.restart_keys`)."""
        k = self.member.k
        row = {f"member/{k}/{key}": v for key, v in keys.items()}
        self.loop.write_event({**row, **self.loop.source.restart_keys(), "member": k})


class MemberBase:
    """What every member has, wherever its learner runs: its hyperparameters and config,
    lineage, episode count and metrics window. Subclasses give `source`, `algorithm` and
    the network operations the population calls (`team_state`, `load_team_state`,
    `add_weight_noise`, `actors`, `apply_hp`)."""

    remote = False  # True: its learner is an actor, with durable state of its own

    def __init__(self, k: int, config: Config, hp: Mapping[str, Any], loop: Any):
        self.k, self.run_config = k, config
        self.hp = dict(hp)
        self.config = member_config(config, k, self.hp)
        self.lineage: list[dict[str, Any]] = []
        self.episodes = 0
        self.log = TrainLog(loop.run_dir)  # only its window is used: rows go to the loop's

    def set_hp(self, hp: Mapping[str, Any]) -> None:
        """New hyperparameters from now on: optimizer learning rates, batch size, noise, the
        update-to-data ratio (`changed_pace`) and the networks' width (`resize`)."""
        self.hp = dict(hp)
        self.config = member_config(self.run_config, self.k, self.hp)
        self.source.config = self.algorithm.config = self.config
        self.apply_hp()

    def window_keys(self) -> dict[str, Any]:
        """The member's metrics since its last row, as `member/K/...` keys."""
        src = self.source
        row = self.log.window_row(src.inserted, src.updates, self.episodes, src.buffer_size())
        del row["time"]
        row.update({f"hp/{name}": v for name, v in self.hp.items()})  # lineage over time
        return {f"member/{self.k}/{key}": v for key, v in row.items()}

    def restarts(self) -> int:
        return 0

    def save_own_checkpoint(self) -> None:
        """A member in this process is saved within the population's checkpoint."""

    def lineage_state(self) -> dict[str, Any]:
        pace = self.algorithm.pace
        return {
            "hp": dict(self.hp),
            "pace": [pace.inserted0, pace.updates0],
            "lineage": list(self.lineage),
            "episodes": self.episodes,
        }

    def restore_lineage(self, state: Mapping[str, Any]) -> None:
        self.set_hp(state["hp"])
        pace = self.algorithm.pace
        pace.inserted0, pace.updates0 = (int(x) for x in state["pace"])
        self.lineage = list(state["lineage"])
        self.episodes = int(state["episodes"])


class Member(MemberBase):
    """A member in this process: a `LocalSource` (runner, replay, learner) paced by
    `MemberPace`."""

    def __init__(self, k: int, config: Config, hp: Mapping[str, Any], loop: Any):
        from predprey.train import LocalSource

        super().__init__(k, config, hp, loop)
        self.source = LocalSource(self.config, MemberHooks(self, loop))
        self.algorithm = OffPolicy(self.config, MemberPace(self.config))

    @property
    def learner(self):
        return self.source.learner

    def apply_hp(self) -> None:
        src = self.source
        src.learner = src.runner.actors = with_hp(src.learner, self.config.algo)
        make = functools.partial(MemberPace, self.config)
        self.algorithm.pace = changed_pace(self.algorithm.pace, make, src.inserted, src.updates)

    # -- the network operations of the population ---------------------------------------
    def team_state(self, team: str, parts: Sequence[str]) -> dict[str, Any]:
        return team_state(self.learner, team, parts)

    def load_team_state(self, team: str, state: Mapping[str, Any]) -> None:
        load_team_state(self.learner, team, state)

    def add_weight_noise(self, team: str, relative_std: float, seed: int) -> None:
        add_weight_noise(self.learner.actors.actors[team], relative_std, seed)

    def actors(self):
        return self.learner

    def settle(self) -> None:
        """Nothing in flight in one process."""

    def change_world(self, run_config: Config, stage: int, teams) -> None:
        """Train in `run_config`'s world from now on (curriculum stage `stage`, `teams` its
        team specs): the learner for these teams with the same weights, optimizer state and
        update count; a new runner; an empty replay of the new row widths, which holds a
        batch before updates resume (the updates owed before are dropped)."""
        from predprey.runner import Runner

        src = self.source
        src.loop.add_recorded(src.flush_recorded())  # the old world's recorded episodes
        src.loop.teams = teams
        self.run_config = run_config
        self.config = src.config = self.algorithm.config = member_config(
            run_config, self.k, self.hp
        )
        src.learner = resized(src.learner, self.config.algo, teams)
        tr, timers = self.config.train, src.runner.timers
        env_seed = seeding.stage_seed(seeding.streams(tr.seed).env, stage)
        src.runner = Runner(self.config, env_seed, src.learner, tr.record_envs, tr.record_every)
        src.runner.timers = timers  # cumulative: the loop's profile takes differences
        src.buffer = ReplayBuffer(self.config.buffer.capacity, transition_spec(teams))
        refill = src.inserted + self.config.algo.batch_size
        self.algorithm.pace = MemberPace(self.config, refill, src.updates)

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {**self.source.state_dict(), **self.lineage_state()}

    def restore(self, state: Mapping[str, Any], buffer) -> None:
        self.restore_lineage(state)  # first: its hyperparameters give its networks' widths
        self.source.load_state_dict(state)  # a member's state names no buffer file
        self.source.buffer = buffer


# -- copies between members ----------------------------------------------------------
def _modules(learner, team: str) -> dict[str, torch.nn.Module]:
    return {
        "actors": learner.actors.actors[team],
        "actor_targets": learner.actor_targets.actors[team],
        "critics": learner.critics[team],
        "critic_targets": learner.critic_targets[team],
    }


def _optimizer(learner, part: str):
    return {"actors": learner.actor_opt, "critics": learner.critic_opt}.get(part)


def team_state(learner, team: str, parts: Sequence[str]) -> dict[str, Any]:
    """A copy of `parts` of `team`'s networks, with the Adam moments of the online ones
    (a clone learns on as its parent would)."""
    out = {}
    for part in parts:
        module = _modules(learner, team)[part]
        opt = _optimizer(learner, part)
        moments = None
        if opt is not None:
            moments = [
                {k: v.clone() for k, v in opt.state[p].items()} if p in opt.state else None
                for p in module.parameters()
            ]
        out[part] = ({k: v.clone() for k, v in module.state_dict().items()}, moments)
    return out


def load_team_state(learner, team: str, state: Mapping[str, Any]) -> None:
    """Overwrite `team`'s networks of `learner` with a `team_state` copy, in place (the
    optimizers and the Polyak update keep their references to the parameters). A copy of
    another width is fitted into this learner's (`resize.copy_overlap`); the parameters it
    resized lose their Adam moments."""
    for part, (weights, moments) in state.items():
        module = _modules(learner, team)[part]
        own = module.state_dict()  # the live tensors, in parameters() order
        resized = [copy_overlap(own[k], weights[k]) for k in own]
        opt = _optimizer(learner, part)
        if opt is None or moments is None:
            continue
        for p, m, fitted in zip(module.parameters(), moments, resized, strict=True):
            if m is None or fitted:
                opt.state.pop(p, None)
            else:
                opt.state[p] = {k: v.clone() for k, v in m.items()}


def add_weight_noise(module: torch.nn.Module, relative_std: float, seed: int) -> None:
    """AgileRL's parameter mutation: Gaussian noise on every weight, its std `relative_std`
    times the tensor's own std (so large and small layers change alike)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            scale = p.std() if p.numel() > 1 else p.abs().mean()
            p.add_(torch.randn(p.shape, generator=g) * relative_std * scale)
