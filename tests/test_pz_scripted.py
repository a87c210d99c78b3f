"""Scripted teams in a foreign tag-like world: mpe2's own simple_tag_v3 through the pettingzoo
scenario. Its touches (from positions and radii) are mpe2's collisions (the adversaries' +10
each), scripted chasers v random prey touch as often as in our native mpe preset, the evader
flees, and worlds lacking positions, tag teams or mpe's actions are refused naming what."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium import spaces

import predprey.env as pe
from predprey.config import config_from_dict
from predprey.env import pz_world, scripted
from predprey.runner import Runner

TAG = "mpe2.simple_tag_v3:parallel_env"
TEAMS = {"predator": ["adversary_0", "adversary_1", "adversary_2"], "prey": ["agent_0"]}


def mpe2_tag(num_envs, seed=0, continuous=True):
    kwargs = {"continuous_actions": continuous, "max_cycles": 25}
    return pe.make("pettingzoo", num_envs=num_envs, seed=seed, make=TAG, kwargs=kwargs,
                   teams=TEAMS, workers=2)  # fmt: skip


def episode_touches(env, predators, prey, seed=0):
    """Touches [E] in one 25-step episode per env; checks every step's touches against the
    collisions mpe2 pays the adversaries for (+10 each, the same to every adversary)."""
    rng = np.random.default_rng(seed)
    total = np.zeros(env.num_envs)
    for _ in range(env.episode_length):
        act = {"predator": scripted.act(predators, env, "predator", rng),
               "prey": scripted.act(prey, env, "prey", rng)}  # fmt: skip
        res = env.step(act)
        if env.scenario.name == "pettingzoo":
            paid = res.reward["predator"]  # [E, 3]
            assert (paid == paid[:, :1]).all()
            np.testing.assert_array_equal(res.info["touches"], paid[:, 0] / 10)
        total += res.info["touches"]
    assert res.done.all()  # exactly one episode per env
    return total


def mean_se(x):
    return x.mean(), x.std(ddof=1) / math.sqrt(len(x))


@pytest.fixture(scope="module")
def mpe2_env():
    env = mpe2_tag(300, seed=3)
    yield env
    env.close()


def test_chasers_v_random_prey_touch_as_in_the_native_mpe_world(mpe2_env):
    foreign = episode_touches(mpe2_env, "chaser", "random", seed=3)
    native = episode_touches(pe.make("tag", num_envs=2000, seed=5), "chaser", "random", seed=5)
    (m1, s1), (m2, s2) = mean_se(foreign), mean_se(native)
    assert 5.0 < m1 < 8.5  # mpe2_baselines.py: 6.65 per episode
    assert abs(m1 - m2) < 4 * math.hypot(s1, s2), (m1, s1, m2, s2)


def test_the_evader_flees_chasers_in_mpe2(mpe2_env):
    evader = episode_touches(mpe2_env, "chaser", "evader", seed=4)
    random = episode_touches(mpe2_env, "chaser", "random", seed=4)
    assert evader.mean() < 1.5 and evader.mean() < random.mean() / 4  # mpe2 ref.: 0.52-0.71


def test_discrete_mpe2_tag_takes_the_nearest_move():
    env = mpe2_tag(40, seed=1, continuous=False)
    still = episode_touches(env, "chaser", "still", seed=1)
    evader = episode_touches(env, "chaser", "evader", seed=1)
    assert still.mean() > 3 * max(evader.mean(), 0.1)
    a = scripted.act("random", env, "prey", np.random.default_rng(0))
    assert a.shape == (40, 1, 5) and (a.sum(-1) == 1).all()
    env.close()


def test_forces_reach_mpe2_as_the_same_force():
    box = spaces.Box(0.0, 1.0, (5,), np.float32)
    forces = np.array([[[1.0, 0.0], [-0.6, 0.8], [0.0, 0.0]]])  # [1, 3, 2]
    a = pz_world.forces_to_actions(box, forces)  # [1, 3, 5] in [-1, 1]
    world = np.stack([pz_world.to_world_action(box, x) for x in a[0]])  # [3, 5] in [0, 1]
    assert world[:, 0].tolist() == [0, 0, 0] and world.min() >= 0 and world.max() <= 1
    u = np.stack([world[:, 2] - world[:, 1], world[:, 4] - world[:, 3]], 1)  # mpe2's u
    np.testing.assert_allclose(u, forces[0], atol=1e-6)
    moves = pz_world.forces_to_actions(spaces.Discrete(5), forces)
    assert moves[0].argmax(-1).tolist() == [2, 4, 0]  # right, up (the larger push), no-op


def test_random_is_the_worlds_uniform_random_action():
    rng = np.random.default_rng(0)
    box = pz_world.uniform_actions(spaces.Box(0.0, 1.0, (5,)), (4000, 3), rng)
    assert box.shape == (4000, 3, 5) and box.min() >= -1 and box.max() <= 1
    assert abs(box.mean()) < 0.02 and abs(box.var() - 1 / 3) < 0.01  # U(-1, 1)
    picks = pz_world.uniform_actions(spaces.Discrete(5), (4000, 3), rng).argmax(-1)
    assert np.allclose(np.bincount(picks.ravel(), minlength=5) / picks.size, 0.2, atol=0.02)


def tiny(**kw):
    return pe.make("pettingzoo", num_envs=1, make="pz_tiny_world:parallel_env", **kw)


def test_worlds_that_are_not_tag_like_are_refused_naming_what_they_lack():
    rng = np.random.default_rng(0)
    env = tiny()  # teams hunter/runner, Box(-1, 1, (2,)) forces
    with pytest.raises(ValueError) as e:
        scripted.act("chaser", env, "hunter", rng)
    msg = str(e.value)
    assert "needs a tag-like world" in msg and "pz_tiny_world:parallel_env lacks" in msg
    assert "teams 'predator' and 'prey' (it has ['hunter', 'runner']" in msg
    assert "mpe's action layout for team 'hunter'" in msg and "agent positions" not in msg
    assert scripted.act("random", env, "hunter", rng).shape == (1, 2, 2)  # random needs none
    env.close()
    blind = pe.make("pettingzoo", num_envs=1, make="pz_tiny_world:blind_env",
                    kwargs={"discrete": True},
                    teams={"predator": ["hunter_0", "hunter_1"], "prey": ["runner_0"]})  # fmt: skip
    with pytest.raises(ValueError) as e:
        scripted.act("evader", blind, "prey", rng)
    msg = str(e.value)
    assert "agent positions (the world exposes none" in msg and "teams" not in msg
    with pytest.raises(ValueError, match="velocities"):
        scripted.act("greedy", blind, "prey", rng)
    blind.close()


def test_a_tag_like_tiny_world_is_chased():
    env = tiny(kwargs={"discrete": True, "leave_at": 99},
               teams={"predator": ["hunter_0", "hunter_1"], "prey": ["runner_0"]})  # fmt: skip
    rng = np.random.default_rng(0)
    for _ in range(3):
        gap = np.linalg.norm(env.state.pos[0, :2] - env.state.pos[0, 2], axis=1)  # [2]
        env.step({"predator": scripted.act("chaser", env, "predator", rng),
                  "prey": scripted.act("still", env, "prey", rng)})  # fmt: skip
        after = np.linalg.norm(env.state.pos[0, :2] - env.state.pos[0, 2], axis=1)
        assert (after < gap).all()  # a 0.1 move along the larger axis towards the prey
    env.close()


def test_opponent_mixing_plays_the_scripted_evader_in_mpe2():
    cfg = config_from_dict({
        "env": {"scenario": "pettingzoo", "num_envs": 4, "workers": 1, "make": TAG,
                "kwargs": {"continuous_actions": True}, "teams": TEAMS},
        "algo": {"hidden": [8]},
        "train": {"scripted_team": "prey", "scripted_policy": "evader", "scripted_fraction": 0.5},
    })  # fmt: skip
    runner = Runner(cfg, seed=0)
    act = runner.act(0.0, np.random.default_rng(0), random_actions=False)
    evader = scripted.act("evader", runner.env, "prey", np.random.default_rng(0))  # [4, 1, 5]
    np.testing.assert_array_equal(act["prey"][2:], evader[2:])  # the last half: scripted
    assert not np.array_equal(act["prey"][:2], evader[:2])  # the first: the learned prey
    runner.collect(2, 0.1, np.random.default_rng(0))
    runner.env.close()
