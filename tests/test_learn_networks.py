"""Batched-over-agents networks: equal to per-agent MLPs; parameter sharing; acting."""

import numpy as np
import pytest
import torch

from predprey.config import AlgoConfig
from predprey.learn.networks import Actor, ActorSet, BatchedMLP, Critic
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
    y_last = mlp(x[1:], models=slice(1, 3))
    torch.testing.assert_close(y_last, y[1:])


@pytest.mark.parametrize("share", [False, True])
def test_actor_per_agent_weights_and_sharing(share):
    team = TeamSpec("predator", 3, 6)
    actor = Actor(team, AlgoConfig(hidden=(8, 8), share_params=share), torch.Generator())
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
@pytest.mark.parametrize("twin", [False, True])
def test_critic_heads(share, twin):
    team = TeamSpec("predator", 3, 6)
    algo = AlgoConfig(hidden=(8,), share_params=share, twin_critics=twin)
    critic = Critic(team, 20, algo, torch.Generator().manual_seed(1))
    n_twin = 2 if twin else 1
    assert critic.mlp.n_models == n_twin * (1 if share else 3)
    x = torch.randn(9, 20)
    q = critic.joint(x)
    assert q.shape == (n_twin, 3, 9)
    for k in range(n_twin):
        for i in range(3):
            head = k * (1 if share else 3) + (0 if share else i)
            torch.testing.assert_close(q[k, i], per_model(critic.mlp, head, x, False)[:, 0])
    assert torch.equal(q[0, 0], q[0, 1]) == share  # a shared critic is the team's critic
    obs, acts = torch.randn(9, 14), torch.randn(3, 9, 6)  # agent i: shared obs, own actions
    qi = critic.first(obs, acts)
    assert qi.shape == (3, 9)
    for i in range(3):
        head = 0 if share else i
        ref = per_model(critic.mlp, head, torch.cat([obs, acts[i]], 1), False)[:, 0]
        torch.testing.assert_close(qi[i], ref)


def test_actor_set_act_builds_no_graph_and_clips():
    teams = (TeamSpec("predator", 2, 4), TeamSpec("prey", 1, 3))
    actors = ActorSet.build(teams, AlgoConfig(hidden=(8,)), seed=0)
    obs = {t.name: np.zeros((6, t.n_agents, t.obs_dim), np.float64) for t in teams}
    out = actors.act(obs, noise_std=10.0, rng=np.random.default_rng(0))
    for t in teams:
        assert out[t.name].shape == (6, t.n_agents, 2) and out[t.name].dtype == np.float32
        assert np.abs(out[t.name]).max() == 1.0  # huge noise is clipped to the action box
    # same seed -> same weights; the state round-trips
    other = ActorSet.build(teams, AlgoConfig(hidden=(8,)), seed=0)
    assert all(np.array_equal(other.act(obs)[k], actors.act(obs)[k]) for k in obs)
    with pytest.raises(ValueError, match="shape"):
        ActorSet.build(teams, AlgoConfig(hidden=(9,))).load_actor_state(actors.actor_state())
