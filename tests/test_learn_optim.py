"""StackedAdam (one fused Adam step per stack tensor) against torch's Adam on the team
parameters it stands for, and its state in torch's per-parameter layout."""

import copy
import io

import pytest
import torch

from predprey.config import OffPolicyConfig
from predprey.learn import optim
from predprey.learn.maddpg import Learner
from predprey.learn.networks import BatchedMLP, StackedMLPs
from predprey.learn.spec import TeamSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEAMS = (TeamSpec("predator", 3, 5), TeamSpec("prey", 1, 4))  # different obs widths


def teams(seed=0):
    """Two teams' MLPs of different input widths (the narrower one's first layer is a strided
    view of the stack) and a third, untrained one, stacked."""
    g = torch.Generator().manual_seed(seed)
    mlps = [
        BatchedMLP(3, (6, 8, 2), g, tanh_out=True),
        BatchedMLP(2, (4, 8, 2), g, tanh_out=True),
        BatchedMLP(2, (5, 8, 2), g, tanh_out=True),
    ]
    stack = StackedMLPs(mlps, in_dim=6)
    trained = [p for m in mlps[:2] for p in m.parameters()]
    return mlps, stack, trained


def reference(trained, **kw):
    """torch's Adam on plain copies of the trained parameters."""
    params = [torch.nn.Parameter(p.detach().clone()) for p in trained]
    return params, torch.optim.Adam(params, lr=1e-2, **kw)


def random_batch(batch, seed):
    g = torch.Generator().manual_seed(seed)
    out = {"terminated": (torch.rand(batch, generator=g) < 0.3).float().numpy()}
    for t in TEAMS:
        fields = (("obs", (t.obs_dim,)), ("next_obs", (t.obs_dim,)), ("act", (2,)), ("rew", ()))
        for k, shape in fields:
            out[f"{k}/{t.name}"] = torch.randn(batch, t.n_agents, *shape, generator=g).numpy()
    return out


def set_grads(stack, trained, ref_params, g):
    """Random gradients on the stacks (zero where no trained parameter lies, as the learner's
    are), the same values on the reference parameters."""
    own = {id(p) for p in trained}
    for t in stack.tensors():
        t.grad = torch.zeros_like(t)
    for p, t, where in stack.views:
        if id(p) in own:
            t.grad[where] = torch.randn(p.shape, generator=g)
    by_id = {id(p): t.grad[where] for p, t, where in stack.views}
    for p, q in zip(trained, ref_params, strict=True):
        q.grad = by_id[id(p)].clone()


def test_stacked_adam_is_torch_adam_on_the_team_parameters():
    mlps, stack, trained = teams()
    assert any(not p.is_contiguous() for p in trained)  # the narrower team's first layer
    frozen = [p.detach().clone() for p in mlps[2].parameters()]
    opt = optim.adam(trained, lr=1e-2)
    stepper = optim.StackedAdam(opt, stack.views)
    fused_params, fused = reference(trained, fused=True)
    plain_params, plain = reference(trained)  # torch's default (foreach) Adam
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        set_grads(stack, trained, fused_params, g)
        for q, r in zip(plain_params, fused_params, strict=True):
            q.grad = r.grad.clone()
        stepper.step()
        fused.step()
        plain.step()
    # The same kernel, but its vector loop and scalar tail may round differently, and which
    # elements fall in the tail depends on the tensor's size: equal up to rounding.
    for p, q, r in zip(trained, fused_params, plain_params, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-6)
        torch.testing.assert_close(p.detach(), r.detach(), rtol=0, atol=1e-6)
    # the state is torch's, parameter by parameter
    ours, theirs = optim.state_dict(opt), fused.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    for i, s in theirs["state"].items():
        assert ours["state"][i].keys() == s.keys()
        for k, v in s.items():
            assert ours["state"][i][k].is_contiguous()
            torch.testing.assert_close(ours["state"][i][k], v, rtol=1e-6, atol=1e-12)
    # rows of no trained parameter stay as they were: the untrained team and the padding
    assert all(torch.equal(p, q) for p, q in zip(mlps[2].parameters(), frozen, strict=True))
    assert not stack.layers[0][0][3:5, 4:].any()


def test_stacked_adam_state_round_trip_continues_identically():
    mlps, stack, trained = teams()
    opt = optim.adam(trained, lr=1e-2)
    stepper = optim.StackedAdam(opt, stack.views)
    ref_params, _ = reference(trained)
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        set_grads(stack, trained, ref_params, g)
        stepper.step()
    buf = io.BytesIO()
    torch.save({"weights": [m.state_dict() for m in mlps], "opt": optim.state_dict(opt)}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    mlps2, stack2, trained2 = teams(seed=5)  # other weights, overwritten by the load
    for m, sd in zip(mlps2, saved["weights"], strict=True):
        m.load_state_dict(sd)
    opt2 = optim.adam(trained2, lr=1e-2)
    opt2.load_state_dict(saved["opt"])
    stepper2 = optim.StackedAdam(opt2, stack2.views)
    for _ in range(3):
        set_grads(stack, trained, ref_params, g)
        for t, t2 in zip(stack.tensors(), stack2.tensors(), strict=True):
            t2.grad = t.grad.clone()
        stepper.step()
        stepper2.step()
    for p, q in zip(trained, trained2, strict=True):
        assert torch.equal(p.detach(), q.detach())
    assert float(optim.state_dict(opt2)["state"][0]["step"]) == 6.0


def test_stacked_adam_steps_parameters_of_different_step_counts_apart():
    """A state set from outside with another step count (a population member's copy, a dropped
    state) still steps like torch's Adam: parameter by parameter."""
    mlps, stack, trained = teams()
    opt = optim.adam(trained, lr=1e-2)
    stepper = optim.StackedAdam(opt, stack.views)
    ref_params, ref = reference(trained, fused=True)
    g = torch.Generator().manual_seed(3)
    for step in range(6):
        if step == 2:  # team 1's first layer (a strided view) starts over
            opt.state.pop(trained[4])
            ref.state.pop(ref_params[4])
        set_grads(stack, trained, ref_params, g)
        stepper.step()
        ref.step()
        assert all(p.grad is None for p in trained)  # gradients stay the stacks'
    for p, q in zip(trained, ref_params, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-6)
    steps = [float(s["step"]) for s in optim.state_dict(opt)["state"].values()]
    assert sorted(steps) == [4.0] + [6.0] * (len(trained) - 1)


def test_learner_checkpoint_keeps_torchs_adam_layout():
    """The learner's optimizer state: one entry per team parameter, dense, its own tensors;
    a deep copy (through the state dict) updates as the original does."""
    learner = Learner(TEAMS, OffPolicyConfig(hidden=(8,)), seed=0)
    assert learner.state_dict()["actor_opt"]["state"] == {}  # nothing before the first step
    for s in range(2):
        learner.update(random_batch(16, s))
    state = learner.state_dict()["actor_opt"]["state"]
    params = [p for t in learner.trained for p in learner.actors.actors[t.name].parameters()]
    assert sorted(state) == list(range(len(params)))
    for i, p in enumerate(params):
        assert state[i].keys() == {"step", "exp_avg", "exp_avg_sq"}
        assert state[i]["exp_avg"].shape == p.shape and state[i]["exp_avg"].is_contiguous()
        assert float(state[i]["step"]) == 2.0
    assert len({id(s["step"]) for s in state.values()}) == len(params)  # not one shared
    twin = copy.deepcopy(learner)
    batch = random_batch(16, 7)
    assert learner.update(batch) == twin.update(batch)


def test_clipping_a_stack_per_module_is_each_teams_own_clipping_bit_for_bit():
    """Per-model clipping on the stacks sums each model's norm as its team's own clipping
    would (same order, no padding zeros, same rows per reduction): the same gradients."""
    mlps, stack, trained = teams()
    g = torch.Generator().manual_seed(4)
    for t in stack.tensors():
        t.grad = torch.zeros_like(t)
    for _, t, where in stack.views:
        t.grad[where] = torch.randn(t.grad[where].shape, generator=g) * 2
    groups = [list(m.parameters()) for m in mlps]
    by_id = {id(p): t.grad[where].clone() for p, t, where in stack.views}
    refs = [[torch.nn.Parameter(p.detach().clone()) for p in group] for group in groups]
    for group, ref in zip(groups, refs, strict=True):
        for p, q in zip(group, ref, strict=True):
            q.grad = by_id[id(p)].clone()
        optim.clip_grad_norm_per_model(ref, 0.5)
    optim.clip_grad_norm_per_model(stack.tensors(), 0.5, stack.module_grads())
    got = {id(p): t.grad[where] for p, t, where in stack.views}
    for group, ref in zip(groups, refs, strict=True):
        for p, q in zip(group, ref, strict=True):
            assert torch.equal(got[id(p)], q.grad)
