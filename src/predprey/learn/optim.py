"""The optimizer pieces both learners share: a fused Adam, its step without Optimizer.step's
overhead, and gradient clipping per model of a batched network."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import nn


def adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, fused=True)  # one kernel per tensor on CPU


def adam_step(opt: torch.optim.Adam) -> None:
    """`opt.step()` of a fused Adam (see `adam`) by calling its kernel directly: Optimizer.step's
    hooks, profiling and guard wrappers cost more than the kernel for these small networks.
    The optimizer still owns the state, so its state_dict stays the checkpoint format.

    Parameters may be strided views (`networks.StackedMLPs`: a narrower team's first layer);
    the fused kernel reads its tensors as dense, so those step on dense copies."""
    group = opt.param_groups[0]
    params = [p for p in group["params"] if p.grad is not None]
    by_id = {id(p): s for p, s in opt.state.items()}  # (hashing a tensor costs ~2 us)
    states = [by_id.get(id(p)) for p in params]
    for i, p in enumerate(params):
        if not states[i]:  # torch's initial state for a fused Adam
            zero = torch.zeros(p.shape, dtype=p.dtype, device=p.device)
            states[i] = opt.state[p] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": zero,
                "exp_avg_sq": zero.clone(),
            }
    dense = [p.contiguous() for p in params]  # (p itself where it is dense)
    steps = [s["step"] for s in states]
    torch._foreach_add_(steps, 1)
    _fused_adam(
        group,
        dense,
        [p.grad.contiguous() for p in params],
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        steps,
    )
    for p, d in zip(params, dense, strict=True):
        if d is not p:
            with torch.no_grad():
                p.copy_(d)


def _fused_adam(group: dict, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
    """torch's fused Adam kernel on dense tensors, steps already counted."""
    beta1, beta2 = group["betas"]
    torch._fused_adam_(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        [],  # max_exp_avg_sqs: no amsgrad
        steps,
        amsgrad=False,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )


View = tuple[nn.Parameter, torch.Tensor, tuple[slice, ...]]  # (parameter, stack, where in it)


class StackedAdam:
    """Steps the stacks (`networks.StackedMLPs`: each layer of every team's models in one
    tensor) that `opt`'s parameters are views of: one fused kernel call on a few whole tensors,
    where stepping the views (`adam_step`) costs a call per view and dense copies of the
    strided ones. Gradients are the stacks' own (`.grad` of the stack tensors).

    `opt`, a fused Adam over the views (`adam`), keeps the hyperparameters and the state in
    its layout, per team parameter (the checkpoint format, read and written by the population
    too): while stepping here, each parameter's exp_avg and exp_avg_sq are its views of the
    stacks' moments and all share one step count. A state set from outside (a loaded
    checkpoint, a copy from another learner, a dropped state) is taken over at the next step;
    while the parameters' step counts differ, they step one by one (`adam_step`).

    Rows no parameter of `opt` owns (zero padding, teams not trained) get zero gradients and
    keep zero moments: Adam without weight decay leaves them as they are. The kernel is the
    same as `adam_step`'s, but an element may round differently where it falls in the
    kernel's scalar tail on one tensor and in its vector loop on the other: tag's shared
    networks come out bit for bit as with `adam_step`, its per-agent ones (a team's last
    bias [3, 1, 2] v the stack's [4, 1, 2]) within rounding."""

    def __init__(self, opt: torch.optim.Adam, views: Sequence[View]):
        group = opt.param_groups[0]
        if len(opt.param_groups) > 1 or group["weight_decay"] or group["amsgrad"]:
            raise ValueError("StackedAdam: one parameter group, no weight decay, no amsgrad")
        own = {id(p) for p in group["params"]}
        self.opt = opt
        self.views = [v for v in views if id(v[0]) in own]
        if len(self.views) != len(own):
            raise ValueError("StackedAdam: every parameter of the optimizer must be a view")
        self.stacks = list({id(t): t for _, t, _ in self.views}.values())
        self._moments = [(torch.zeros_like(t), torch.zeros_like(t)) for t in self.stacks]
        self._of = {id(t): m for t, m in zip(self.stacks, self._moments, strict=True)}
        self._step = torch.zeros((), dtype=torch.float32)
        self._stacked = False  # whether opt's state is the stacks' (else: step the views)
        self._seen: list | None = None  # opt.state's values when last taken over

    def step(self) -> None:
        """One Adam step of every stack from its `.grad`."""
        state = self.opt.state
        seen = self._seen  # (by identity: == on the dicts would compare their tensors)
        if (
            seen is None
            or len(seen) != len(state)
            or any(map(operator.is_not, seen, state.values()))
        ):
            self._take_over(state)
        if not self._stacked:
            for p, t, where in self.views:
                p.grad = t.grad[where]
            adam_step(self.opt)
            for p, _, _ in self.views:
                p.grad = None
            self._seen = list(state.values())
            return
        self._step += 1
        _fused_adam(
            self.opt.param_groups[0],
            self.stacks,
            [t.grad for t in self.stacks],
            [m for m, _ in self._moments],
            [v for _, v in self._moments],
            [self._step] * len(self.stacks),
        )

    def _take_over(self, state: dict) -> None:
        """Make opt's state the views of the stacks' moments, values kept; if its step counts
        differ, give each parameter a dense state of its own instead."""
        by_id = {id(p): s for p, s in state.items()}  # (hashing a tensor costs ~2 us)
        states = [by_id.get(id(p)) or {} for p, _, _ in self.views]  # {}: never stepped
        steps = {float(s["step"]) if s else 0.0 for s in states}
        self._stacked = len(steps) == 1
        with torch.no_grad():
            for (p, t, where), s in zip(self.views, states, strict=True):
                if not self._stacked:  # own tensors: a shared step would count once per view
                    state[p] = {k: v.clone(memory_format=torch.contiguous_format)
                                for k, v in s.items()}  # fmt: skip
                    continue
                exp_avg, exp_avg_sq = (m[where] for m in self._of[id(t)])
                if s:
                    exp_avg.copy_(s["exp_avg"])
                    exp_avg_sq.copy_(s["exp_avg_sq"])
                else:
                    exp_avg.zero_()
                    exp_avg_sq.zero_()
                state[p] = {"step": self._step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
            if self._stacked:
                self._step.fill_(steps.pop())
        self._seen = list(state.values())


def state_dict(opt: torch.optim.Optimizer) -> dict:
    """`opt.state_dict()` with dense copies of its state's tensors, each its own (a
    `StackedAdam`'s are views of whole stacks, its step count shared)."""
    sd = opt.state_dict()
    sd["state"] = {
        k: {n: v.clone(memory_format=torch.contiguous_format) if torch.is_tensor(v) else v
            for n, v in s.items()}
        for k, s in sd["state"].items()
    }  # fmt: skip
    return sd


def clip_grad_norm_per_model(
    params: Sequence[torch.Tensor],
    max_norm: float,
    modules: Sequence[tuple[slice, Sequence[torch.Tensor] | None]] = (),
) -> None:
    """Clip the gradient norm of each model separately (params have a leading model dim),
    as if every agent's network had its own `clip_grad_norm_`.

    `modules` (`StackedMLPs.module_grads`): the rows of each module of a stack and, for a
    narrower one, its own parameters' gradients. The norms are then taken per module over
    what a module's own clipping would sum, in the same order (zero padding in the middle of
    a row, or another number of rows in the reduction, changes the rounding)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return
    flat = torch.cat([g.flatten(1) for g in grads], 1)  # [m, all]
    if modules:
        norms = flat.new_empty(flat.shape[0])  # [m]
        for rows, own in modules:
            x = flat[rows] if own is None else torch.cat([g.flatten(1) for g in own], 1)
            torch.linalg.vector_norm(x, dim=1, out=norms[rows])
    else:
        norms = torch.linalg.vector_norm(flat, dim=1)  # [m]
    scale = (max_norm / (norms + 1e-6)).clamp_(max=1.0)  # [m]
    views = {d: scale.view(-1, *([1] * (d - 1))) for d in {g.dim() for g in grads}}  # a rank
    torch._foreach_mul_(grads, [views[g.dim()] for g in grads])


def drop_grads(opt: torch.optim.Optimizer) -> None:
    """`opt.zero_grad(set_to_none=True)` without Optimizer's profiling and hook wrappers,
    which cost ~0.14 ms a call here (`predprey bench update`: 4.5% of an update)."""
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = None
