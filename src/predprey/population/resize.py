"""Networks of another hidden width (the `hidden` mutation), as AgileRL resizes them.

A member's `hidden` hyperparameter is the width of every hidden layer of its networks
(actors, critics and their targets; `algo.hidden` gives the number of layers). A new
width rebuilds the learner and copies each parameter's overlapping block (the first
min(old, new) units of every layer) from the old one; the other units are freshly
initialised. Adam's moments are kept for the parameters whose shape is unchanged and
reset for the rest (the last layer's biases keep theirs; its weights do not).

Copies between members of different widths fit the copy into the receiver's shape the
same way (`copy_overlap`); loading actor weights of unknown width is
`predprey.learn.widths.fit_actors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from predprey.config import OffPolicyConfig
from predprey.learn.widths import widths


def learner_widths(state: Mapping[str, Any]) -> tuple[int, ...]:
    """Hidden widths of a learner `state_dict()` (every team's networks have the same)."""
    return widths(next(iter(state["actors"].values())))


def copy_overlap(dst: torch.Tensor, src: torch.Tensor) -> bool:
    """dst[:m0, :m1, ...] = src[:m0, :m1, ...] with m the smaller size of each dimension;
    True if the shapes differ (dst was resized from src)."""
    block = tuple(slice(0, min(a, b)) for a, b in zip(dst.shape, src.shape, strict=True))
    with torch.no_grad():
        dst[block] = src[block]
    return tuple(dst.shape) != tuple(src.shape)


def _pairs(old, new) -> list[tuple[nn.Module, nn.Module]]:
    """(old, new) modules of every part and team of two learners."""
    out = []
    for part in ("actors", "actor_targets"):
        a, b = getattr(old, part).actors, getattr(new, part).actors
        out += [(a[t], b[t]) for t in a]
    for part in ("critics", "critic_targets"):
        a, b = getattr(old, part), getattr(new, part)
        out += [(a[t], b[t]) for t in a]
    return out


def resized(learner, algo: OffPolicyConfig, teams=None):
    """A new `Learner` with `algo`'s widths holding `learner`'s weights where they overlap
    (fresh initialisation elsewhere), its Adam moments where shapes are unchanged, its
    update count and RNG. `teams`: the team specs of another number of agents (a curriculum
    stage; shared networks of local inputs keep every shape)."""
    from predprey.learn.maddpg import Learner

    seed = int(torch.randint(0, 2**62, (1,), generator=learner.generator))
    new = Learner(learner.teams if teams is None else teams, algo, seed)
    new.version = learner.version
    new.generator.set_state(learner.generator.get_state())
    for old_m, new_m in _pairs(learner, new):
        for p_old, p_new in zip(old_m.parameters(), new_m.parameters(), strict=True):
            copy_overlap(p_new, p_old)
    for name in ("actor_opt", "critic_opt"):
        old_opt, new_opt = getattr(learner, name), getattr(new, name)
        old_ps = [p for g in old_opt.param_groups for p in g["params"]]
        new_ps = [p for g in new_opt.param_groups for p in g["params"]]
        for p_old, p_new in zip(old_ps, new_ps, strict=True):
            if p_old.shape == p_new.shape and p_old in old_opt.state:
                new_opt.state[p_new] = {k: v.clone() for k, v in old_opt.state[p_old].items()}
    return new


def with_hp(learner, algo: OffPolicyConfig):
    """`learner` with `algo`'s hyperparameters: resized if its widths differ, learning rates
    set. Returns the learner to use from now on (a new one if resized)."""
    if widths(next(iter(learner.actors.actors.values())).state_dict()) != tuple(algo.hidden):
        learner = resized(learner, algo)
    learner.algo = algo
    for opt, lr in ((learner.actor_opt, algo.actor_lr), (learner.critic_opt, algo.critic_lr)):
        for group in opt.param_groups:
            group["lr"] = lr
    return learner
