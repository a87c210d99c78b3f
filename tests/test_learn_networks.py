"""Batched-over-agents networks: equal to per-agent MLPs; parameter sharing; stacking teams'
models into heads (feature-major); acting."""

import copy

import numpy as np
import pytest
import torch

from predprey.config import OffPolicyConfig
from predprey.learn.networks import (
    Actor,
    ActorSet,
    BatchedMLP,
    Critic,
    StackedMLPs,
    linear_t,
    mlp_t,
)
from predprey.learn.spec import TeamSpec


def per_model(mlp, j, x, tanh_out):
    for k in range(len(mlp.weights)):
        x = torch.nn.functional.linear(x, mlp.weights[k][j].T, mlp.biases[k][j, 0])
        x = torch.relu(x) if k < len(mlp.weights) - 1 else x
    return torch.tanh(x) if tanh_out else x


def test_batched_mlp_equals_separate_mlps():
    g = torch.Generator().manual_seed(0)
    mlp = BatchedMLP(3, (5, 7, 4), g, tanh_out=True)
    x = torch.randn(3, 11, 5)
    y = mlp(x)
    assert y.shape == (3, 11, 4)
    for j in range(3):
        torch.testing.assert_close(y[j], per_model(mlp, j, x[j], True))
    assert mlp.layers()[0][0] is mlp.weights[0]  # the cached list holds the parameters


@pytest.mark.parametrize("share", [False, True])
def test_actor_per_agent_weights_and_sharing(share):
    team = TeamSpec("predator", 3, 6)
    actor = Actor(team, OffPolicyConfig(hidden=(8, 8), share_params=share), torch.Generator())
    assert actor.mlp.weights[0].shape == (1 if share else 3, 6, 8)
    obs = torch.randn(1, 6).expand(5, 3, 6)  # every agent sees the same observation
    a = actor(obs)
    assert a.shape == (5, 3, 2) and a.abs().max() <= 1
    identical = torch.equal(a[:, 0], a[:, 1]) and torch.equal(a[:, 1], a[:, 2])
    assert identical == share
    obs = torch.randn(5, 3, 6)
    for i in range(3):
        ref = per_model(actor.mlp, 0 if share else i, obs[:, i], True)
        torch.testing.assert_close(actor(obs)[:, i], ref)


@pytest.mark.parametrize("share", [False, True])
def test_stacked_actor_heads_of_two_teams_equal_each_agent_network(share):
    """Teams with different observation widths share one stack: narrower inputs and first
    layers are zero-padded; a shared model is repeated for each of its agents."""
    g = torch.Generator().manual_seed(0)
    algo = OffPolicyConfig(hidden=(8, 8), share_params=share)
    pred, prey = Actor(TeamSpec("predator", 3, 6), algo, g), Actor(TeamSpec("prey", 2, 4), algo, g)
    before = [p.detach().clone() for p in (*pred.parameters(), *prey.parameters())]
    stack = StackedMLPs([pred.mlp, prey.mlp], in_dim=6)
    after = [p.detach() for p in (*pred.parameters(), *prey.parameters())]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # same values
    layers = stack.heads(stack.index([(0, pred.head_models()), (1, prey.head_models())]))
    assert layers[0][0].shape == (5, 6, 8)
    obs = torch.randn(5, 6, 11)  # [heads, features, rows]
    obs[3:, 4:] = 0.0  # the prey's padding
    out = mlp_t(layers, obs, tanh_out=True)  # [5, 2, 11]
    for head, (actor, i) in enumerate([(pred, 0), (pred, 1), (pred, 2), (prey, 0), (prey, 1)]):
        d = actor.team.obs_dim
        ref = per_model(actor.mlp, 0 if share else i, obs[head, :d].T, True)  # [11, 2]
        torch.testing.assert_close(out[head], ref.T)
    # gradients reach each team's own parameters (summed over agents when shared)
    out.sum().backward()
    grads = {id(p): t.grad[where] for p, t, where in stack.views}  # each parameter's view
    assert grads[id(pred.mlp.weights[0])].shape == pred.mlp.weights[0].shape
    assert grads[id(prey.mlp.weights[0])].shape == (1 if share else 2, 4, 8)
    ref_pred, ref_prey = copy.deepcopy(pred), copy.deepcopy(prey)  # plain tensors again
    ref = (
        ref_pred(obs[:3, :6].permute(2, 0, 1)).sum() + ref_prey(obs[3:, :4].permute(2, 0, 1)).sum()
    )
    ref.backward()
    for p, q in zip(
        (*pred.parameters(), *prey.parameters()),
        (*ref_pred.parameters(), *ref_prey.parameters()),
        strict=True,
    ):
        torch.testing.assert_close(grads[id(p)], q.grad)
    assert not stack.layers[0][0].grad[3:, 4:].any()  # the padding stays out of learning


def test_stacked_parameters_are_the_modules_parameters():
    """Writes to a team's parameters (loading a checkpoint, an optimizer step) are writes to the
    stack, and the other way round: one copy of the weights."""
    g = torch.Generator().manual_seed(0)
    algo = OffPolicyConfig(hidden=(8,))
    pred, prey = Actor(TeamSpec("predator", 2, 6), algo, g), Actor(TeamSpec("prey", 2, 4), algo, g)
    stack = StackedMLPs([pred.mlp, prey.mlp], in_dim=6)
    with torch.no_grad():
        prey.mlp.weights[0].add_(1.0)
        stack.layers[1][1][0].fill_(7.0)  # the predators' first model's last bias
    torch.testing.assert_close(stack.layers[0][0][2:, :4], prey.mlp.weights[0].detach())
    assert not stack.layers[0][0][2:, 4:].any()
    assert bool((pred.mlp.biases[1][0] == 7.0).all())
    sd = {k: torch.zeros_like(v) for k, v in prey.state_dict().items()}
    prey.load_state_dict(sd)
    assert not stack.layers[0][0][2:].any() and stack.layers[0][0][:2].any()


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("twin", [False, True])
def test_stacked_critic_heads_shared_input(share, twin):
    g = torch.Generator().manual_seed(1)
    algo = OffPolicyConfig(hidden=(8,), share_params=share, twin_critics=twin)
    crits = [
        Critic(TeamSpec("predator", 3, 6), 20, algo, g),
        Critic(TeamSpec("prey", 1, 4), 20, algo, g),
    ]
    n_twin = 2 if twin else 1
    for c in crits:
        assert c.mlp.n_models == n_twin * (1 if share else c.n_agents)
    stack = StackedMLPs([c.mlp for c in crits])
    layers = stack.heads(
        stack.index([(i, c.head_models(k)) for k in range(n_twin) for i, c in enumerate(crits)])
    )
    per_twin = 2 if share else 4  # one head per model: a shared team critic runs once
    x = torch.randn(20, 9)  # the joint input [D, rows], shared by every head
    q = mlp_t(layers, x)  # [n_twin * per_twin, 1, 9]
    assert q.shape == (n_twin * per_twin, 1, 9)
    # the shared-input matmul equals giving every head its own copy of the input
    torch.testing.assert_close(q, mlp_t(layers, x.expand(n_twin * per_twin, 20, 9)))
    head = 0
    for k in range(n_twin):
        for c in crits:
            for model in range(k * c.per_twin, (k + 1) * c.per_twin):
                ref = per_model(c.mlp, model, x.T, False)[:, 0]
                torch.testing.assert_close(q[head, 0], ref)
                head += 1


def test_linear_t_is_w_transpose_h_plus_b():
    w, b, h = torch.randn(3, 5, 4), torch.randn(3, 1, 4), torch.randn(3, 5, 7)
    ref = torch.stack([w[j].T @ h[j] + b[j].T for j in range(3)])
    torch.testing.assert_close(linear_t(w, b, h), ref)
    torch.testing.assert_close(
        linear_t(w, b, h[0]), torch.stack([w[j].T @ h[0] + b[j].T for j in range(3)])
    )


def test_actor_set_act_builds_no_graph_and_clips():
    teams = (TeamSpec("predator", 2, 4), TeamSpec("prey", 1, 3))
    actors = ActorSet.build(teams, OffPolicyConfig(hidden=(8,)), seed=0)
    obs = {t.name: np.zeros((6, t.n_agents, t.obs_dim), np.float64) for t in teams}
    out = actors.act(obs, noise_std=10.0, rng=np.random.default_rng(0))
    for t in teams:
        assert out[t.name].shape == (6, t.n_agents, 2) and out[t.name].dtype == np.float32
        assert np.abs(out[t.name]).max() == 1.0  # huge noise is clipped to the action box
    # same seed -> same weights; the state round-trips
    other = ActorSet.build(teams, OffPolicyConfig(hidden=(8,)), seed=0)
    assert all(np.array_equal(other.act(obs)[k], actors.act(obs)[k]) for k in obs)
    with pytest.raises(ValueError, match="shape"):
        ActorSet.build(teams, OffPolicyConfig(hidden=(9,))).load_actor_state(actors.actor_state())


@pytest.mark.parametrize("share", [False, True])
def test_numpy_acting_equals_the_torch_actor_and_follows_weight_updates(share):
    import copy

    teams = (TeamSpec("predator", 3, 16), TeamSpec("prey", 2, 14))
    actors = ActorSet.build(teams, OffPolicyConfig(hidden=(64, 64), share_params=share), seed=1)
    rng = np.random.default_rng(0)
    obs = {t.name: rng.normal(size=(32, t.n_agents, t.obs_dim)).astype(np.float32) for t in teams}

    def torch_act(a):
        with torch.no_grad():
            return {
                k: v.numpy() for k, v in a({k: torch.from_numpy(o) for k, o in obs.items()}).items()
            }

    for k, v in torch_act(actors).items():
        np.testing.assert_allclose(actors.act(obs)[k], v, atol=1e-6)
    # in-place updates (optimizer steps, load_state_dict) show up in the next act();
    # a deep copy acts with its own parameters
    twin = copy.deepcopy(actors)
    with torch.no_grad():
        for p in actors.parameters():
            p.add_(0.3)
    for k, v in torch_act(actors).items():
        np.testing.assert_allclose(actors.act(obs)[k], v, atol=1e-6)
        np.testing.assert_allclose(twin.act(obs)[k], torch_act(twin)[k], atol=1e-6)
        assert not np.allclose(actors.act(obs)[k], twin.act(obs)[k])
