"""One member of a population: a learner with its runner and replay (a `LocalSource`), its
off-policy pacing, its hyperparameters and lineage, and the window of its own metrics;
plus the copies of a team's networks from one member to another.

Member 0 runs with the run's own seed (a population of one is the single learner); the
others get seeds of their own, so they start from different weights and worlds. Only
member 0 records training episodes (the file names have no member).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from predprey.config import Config
from predprey.learn.offpolicy import OffPolicy
from predprey.learn.rate_limiter import UpdateCredit
from predprey.trainlog import TrainLog

CRITIC_PARTS = ("critics", "critic_targets")  # what a genetic sync copies
ALL_PARTS = ("actors", "actor_targets", *CRITIC_PARTS)  # what a selected clone copies


def member_seed(seed: int, k: int) -> int:
    return seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def member_budget(total: int, size: int, k: int) -> int:
    """Member k's share of the population's env-step budget (members take equal turns)."""
    return total // size + (k < total % size)


def member_config(config: Config, k: int, hp: Mapping[str, Any]) -> Config:
    tr = config.train
    train = dataclasses.replace(
        tr, seed=member_seed(tr.seed, k), record_envs=tr.record_envs if k == 0 else ()
    )
    return config.replace(algo=dataclasses.replace(config.algo, **hp), train=train)


class MemberPace:
    """`UpdateCredit` counted from the member's latest hyperparameter change (at env steps
    `inserted0` and updates `updates0`; 0, 0 = never changed, exactly `UpdateCredit`): a new
    update-to-data ratio pays only for the env steps taken after it."""

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


class _Hooks:
    """The loop a member's LocalSource reports to: its own window and the population's."""

    payload = None  # a population restores its members itself

    def __init__(self, member: Member, loop: Any):
        self.member, self.loop = member, loop
        self.teams, self.run_dir = loop.teams, loop.run_dir

    def add_episodes(self, episodes) -> None:
        self.member.episodes += self.member.log.add_episodes(episodes)
        self.loop.add_episodes(episodes)

    def add_losses(self, metrics) -> None:
        self.member.log.add_losses(metrics)
        self.loop.add_losses(metrics)

    def add_recorded(self, recorded: list) -> None:
        self.loop.add_recorded(recorded)


class Member:
    def __init__(self, k: int, config: Config, hp: Mapping[str, Any], loop: Any):
        from predprey.train import LocalSource

        self.k, self.run_config = k, config
        self.hp = dict(hp)
        self.config = member_config(config, k, self.hp)
        self.lineage: list[dict[str, Any]] = []
        self.episodes = 0
        self.log = TrainLog(loop.run_dir)  # only its window is used: rows go to the loop's
        self.source = LocalSource(self.config, _Hooks(self, loop))
        self.algorithm = OffPolicy(self.config, MemberPace(self.config))

    @property
    def learner(self):
        return self.source.learner

    def set_hp(self, hp: Mapping[str, Any]) -> None:
        """New hyperparameters from now on: optimizer learning rates, batch size, noise and
        the update-to-data ratio (its credit restarts here)."""
        self.hp = dict(hp)
        self.config = member_config(self.run_config, self.k, self.hp)
        src, learner = self.source, self.learner
        src.config = self.algorithm.config = self.config
        learner.algo = self.config.algo
        for opt, lr in ((learner.actor_opt, hp["actor_lr"]), (learner.critic_opt, hp["critic_lr"])):
            for group in opt.param_groups:
                group["lr"] = lr
        self.algorithm.pace = MemberPace(self.config, src.inserted, src.updates)

    def window_keys(self) -> dict[str, Any]:
        """The member's metrics since its last row, as `member/K/...` keys."""
        src = self.source
        row = self.log.window_row(src.inserted, src.updates, self.episodes, len(src.buffer))
        del row["time"]
        row.update({f"hp/{name}": v for name, v in self.hp.items()})  # lineage over time
        return {f"member/{self.k}/{key}": v for key, v in row.items()}

    # -- checkpoints -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        src, pace = self.source, self.algorithm.pace
        return {
            "learner": src.learner.state_dict(),
            "actors": src.learner.actor_state(),
            "updates": src.updates,
            "env_steps": src.inserted,
            "rng": {
                "collect": src.rng_collect.bit_generator.state,
                "sample": src.rng_sample.bit_generator.state,
            },
            "runner": src.runner.state_dict(),
            "hp": dict(self.hp),
            "pace": [pace.inserted0, pace.updates0],
            "lineage": list(self.lineage),
            "episodes": self.episodes,
        }

    def restore(self, state: Mapping[str, Any], buffer) -> None:
        src = self.source
        self.set_hp(state["hp"])
        src.learner.load_state_dict(state["learner"])
        src.runner.load_state_dict(state["runner"])
        src.rng_collect.bit_generator.state = state["rng"]["collect"]
        src.rng_sample.bit_generator.state = state["rng"]["sample"]
        src.inserted = int(state["env_steps"])
        src.buffer = buffer
        self.algorithm.pace = MemberPace(self.config, *state["pace"])
        self.lineage = list(state["lineage"])
        self.episodes = int(state["episodes"])


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
    optimizers and the Polyak update keep their references to the parameters)."""
    for part, (weights, moments) in state.items():
        module = _modules(learner, team)[part]
        module.load_state_dict(weights)
        opt = _optimizer(learner, part)
        if opt is None or moments is None:
            continue
        for p, m in zip(module.parameters(), moments, strict=True):
            if m is None:
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
