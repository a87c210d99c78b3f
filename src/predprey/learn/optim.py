"""The optimizer pieces both learners share: a fused Adam, its step without Optimizer.step's
overhead, and gradient clipping per model of a batched network."""

from __future__ import annotations

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
    beta1, beta2 = group["betas"]
    torch._fused_adam_(
        dense,
        [p.grad.contiguous() for p in params],
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
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
    for p, d in zip(params, dense, strict=True):
        if d is not p:
            with torch.no_grad():
                p.copy_(d)


def clip_grad_norm_per_model(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """Clip the gradient norm of each model separately (params have a leading model dim),
    as if every agent's network had its own `clip_grad_norm_`."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or max_norm <= 0:
        return
    norms = torch.linalg.vector_norm(torch.cat([g.flatten(1) for g in grads], 1), dim=1)  # [m]
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # [m]
    torch._foreach_mul_(grads, [scale.view(-1, *([1] * (g.dim() - 1))) for g in grads])


def drop_grads(opt: torch.optim.Optimizer) -> None:
    """`opt.zero_grad(set_to_none=True)` without Optimizer's profiling and hook wrappers,
    which cost ~0.14 ms a call here (`predprey bench update`: 4.5% of an update)."""
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = None
