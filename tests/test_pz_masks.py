"""Agents that leave a PettingZoo episode early (tests/pz_tiny_world.py: the runner is caught
after `leave_at` steps): rollouts carry alive/{team}, and the rows after an agent left reach
no loss and no gradient of MADDPG, MATD3 or PPO — whatever those rows hold, the update is the
same, and an agent gone in every row learns nothing."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from predprey.config import OffPolicyConfig, PPOConfig, config_from_dict
from predprey.env import make
from predprey.learn import masks
from predprey.learn.maddpg import Learner
from predprey.learn.ppo import PPOLearner
from predprey.learn.spec import TeamSpec, team_specs, transition_spec
from predprey.runner import Runner

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEAMS = (TeamSpec("hunter", 2, 6, 2, may_leave=True), TeamSpec("runner", 1, 6, 2, may_leave=True))
DISCRETE = tuple(TeamSpec(t.name, t.n_agents, 6, 5, True, may_leave=True) for t in TEAMS)


def test_rollouts_of_a_pettingzoo_world_carry_who_took_part():
    cfg = config_from_dict({
        "env": {"scenario": "pettingzoo", "num_envs": 2, "workers": 1,
                "make": "pz_tiny_world:parallel_env", "kwargs": {"leave_at": 3, "max_cycles": 6}},
        "algo": {"hidden": [8]},
    })  # fmt: skip
    runner = Runner(cfg, seed=0)
    assert all(t.may_leave for t in runner.teams) and "alive/runner" in runner.spec
    rows = runner.collect(6, 0.1, np.random.default_rng(0)).transitions  # [6 * 2, ...]
    alive = rows["alive/runner"].reshape(6, 2)
    assert alive.tolist() == [[1, 1]] * 3 + [[0, 0]] * 3  # caught after step 3
    assert (rows["alive/hunter"] == 1).all()
    gone = alive.reshape(-1) == 0  # [12] rows
    assert (rows["next_obs/runner"][gone] == 0).all() and (rows["rew/runner"][gone] == 0).all()
    runner.env.close()


def batch_for(teams, B=64, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for k, (shape, dtype) in transition_spec(teams).items():
        if k == "terminated":
            out[k] = (rng.random(B) < 0.1).astype(dtype)
        elif k == "version":
            out[k] = np.zeros(B, dtype)
        elif k.startswith("alive/"):
            out[k] = (rng.random((B, *shape)) < 0.6).astype(dtype)
        else:
            out[k] = rng.normal(size=(B, *shape)).astype(dtype)
    return out


def with_garbage(batch, teams, seed=1):
    """The batch with other values in every row of an agent that had left."""
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in batch.items()}
    for t in teams:
        gone = out[f"alive/{t.name}"] == 0  # [B, n]
        for k in masks.ROW_FIELDS:
            x = out[f"{k}/{t.name}"]
            x[gone] = rng.normal(scale=100.0, size=x[gone].shape)
    return out


def params(learner, teams):
    """Copies of the teams' actor and critic parameters (and PPO's log-stds)."""
    out = []
    for t in teams:
        mods = [learner.actors.actors[t.name], learner.critics[t.name]]
        out += [p.detach().clone() for m in mods for p in m.parameters()]
        if t.name in getattr(learner, "log_std", {}):
            out.append(learner.log_std[t.name].detach().clone())
    return out


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


OFF_CASES = {
    "maddpg": (TEAMS, {}),
    "matd3-local": (
        TEAMS,
        {"twin_critics": True, "policy_delay": 1, "target_noise": 0.2, "critic": "local"},
    ),  # fmt: skip
    "maddpg-discrete": (DISCRETE, {}),
    # tag's predators and prey with entity slots in view (obs local), as if the prey could leave
    "maddpg-attention": (
        tuple(
            dataclasses.replace(t, may_leave=True)
            for t in team_specs(make("tag", obs="local", num_predators=2, num_prey=1))
        ),
        {"network": "attention", "share_params": True, "attention_dim": 8},
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", OFF_CASES)
def test_offpolicy_updates_ignore_the_rows_of_agents_that_left(case):
    teams, extra = OFF_CASES[case]
    algo = OffPolicyConfig(hidden=(16,), batch_size=64, actor_reg=1e-3, **extra)
    a = Learner(teams, algo, seed=0)
    b, c = copy.deepcopy(a), copy.deepcopy(a)
    batch = batch_for(teams)
    for k in range(2):
        ma = a.update(batch)
        mb = b.update(with_garbage(batch, teams, seed=k + 1))
    assert ma == mb and same(params(a, teams), params(b, teams))
    # a live row does count: the same change there moves the networks
    live = {k: v.copy() for k, v in batch.items()}
    last = teams[-1].name
    row = int(np.flatnonzero(live[f"alive/{last}"][:, 0])[0])
    live[f"obs/{last}"][row] += 1.0
    c.update(live)
    c.update(live)
    assert not same(params(a, teams), params(c, teams))


@pytest.mark.parametrize("case", OFF_CASES)
def test_an_agent_gone_in_every_row_learns_nothing(case):
    teams, extra = OFF_CASES[case]
    learner = Learner(teams, OffPolicyConfig(hidden=(16,), actor_reg=1e-3, **extra), seed=0)
    batch = batch_for(teams)
    batch[f"alive/{teams[-1].name}"][:] = 0.0
    hunter, runner = params(learner, teams[:1]), params(learner, teams[1:])
    learner.update(batch)
    assert same(runner, params(learner, teams[1:]))  # actor and critic untouched
    assert not same(hunter, params(learner, teams[:1]))  # the hunters still learn


def rollout_for(teams, T=6, E=4, seed=0):
    """A rollout [T * E] in which the runner leaves at step 2 of env 0 and 3 of env 1."""
    rows = batch_for(teams, T * E, seed)
    rows["done"] = np.zeros(T * E, np.float32)
    rows["terminated"][:] = 0.0
    alive = np.ones((T, E, 1), np.float32)
    alive[2:, 0] = alive[3:, 1] = 0.0
    rows["alive/runner"] = alive.reshape(T * E, 1)
    rows["alive/hunter"][:] = 1.0
    return rows


@pytest.mark.parametrize("level", ["agent", "team"])
def test_ppo_ignores_the_rows_of_agents_that_left(level):
    algo = PPOConfig(hidden=(16,), minibatches=2, epochs=2, separation=(level,))
    a = PPOLearner(TEAMS, algo, seed=0)
    b = copy.deepcopy(a)
    rollout = rollout_for(TEAMS)
    da, _ = a.prepare(rollout, 6, 4)
    db, _ = b.prepare(with_garbage(rollout, TEAMS), 6, 4)
    for k in da:
        assert torch.equal(da[k], db[k]), k
    runner = TEAMS[0].n_agents  # the runner's column
    gone = torch.from_numpy(rollout["alive/runner"][:, 0] == 0)
    assert (da["own"][gone, runner] == 0).all() and (da["own"][~gone, runner] == 1).all()
    # the step it leaves on bootstraps from nothing: its advantage is r - V
    with torch.no_grad():
        obs = {t.name: torch.as_tensor(rollout[f"obs/{t.name}"]) for t in TEAMS}
        v = a._unscale(a._forward(obs, actor=False)[2])  # [R, A]
    last = 1 * 4 + 0  # env 0's last step with the runner: t = 1
    if level == "agent":
        want = rollout["rew/runner"][last, 0] - v[last, runner]
        assert float(da["adv"][last, runner]) == pytest.approx(float(want), rel=1e-5)
        assert (da["adv"][gone, runner] == 0).all()  # nothing after it left
    ma = a.learn(rollout, 6, 4, np.random.default_rng(0))
    mb = b.learn(with_garbage(rollout, TEAMS, seed=2), 6, 4, np.random.default_rng(0))
    assert ma == mb and same(params(a, TEAMS), params(b, TEAMS))


def test_ppo_agent_gone_in_every_row_learns_nothing():
    a = PPOLearner(TEAMS, PPOConfig(hidden=(16,), ent_coef=0.0), seed=0)
    rollout = rollout_for(TEAMS)
    rollout["alive/runner"][:] = 0.0
    hunter, runner = params(a, TEAMS[:1]), params(a, TEAMS[1:])
    a.learn(rollout, 6, 4, np.random.default_rng(0))
    assert same(runner, params(a, TEAMS[1:]))  # actor, log-std and critic untouched
    assert not same(hunter, params(a, TEAMS[:1]))


def test_masked_means_and_the_next_step():
    x = torch.tensor([[1.0, 2.0, 3.0, 10.0]])
    assert masks.mean(x, None).tolist() == [4.0]
    assert masks.mean(x, torch.tensor([[1.0, 1.0, 1.0, 0.0]])).tolist() == [2.0]
    assert masks.mean(x, torch.zeros(1, 4)).tolist() == [0.0]  # nobody took part
    live = np.array([1, 1, 0, 0, 1], np.float32).reshape(5, 1, 1)  # [T, E, A]
    done = np.array([0, 0, 0, 1, 0]).reshape(5, 1)
    assert masks.next_alive(live, done).ravel().tolist() == [1, 0, 0, 1, 1]
    live[-1] = 0  # gone at the rollout's last step: gone after it too
    assert masks.next_alive(live, done).ravel().tolist() == [1, 0, 0, 1, 0]
