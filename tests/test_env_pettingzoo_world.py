"""Scenario `pettingzoo`: a foreign PettingZoo ParallelEnv (tests/pz_tiny_world.py, mpe2) as a
vector env — teams, refused spaces, masks for agents that leave, seeds, worker restarts."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from predprey.config import ConfigError, config_from_dict
from predprey.env import make
from predprey.learn.spec import team_specs

TINY = "pz_tiny_world:parallel_env"
TAG = "mpe2.simple_tag_v3:parallel_env"


def tiny(num_envs=2, seed=0, **kw):
    extra = {k: kw.pop(k) for k in ("teams", "workers", "episode_length") if k in kw}
    return make("pettingzoo", num_envs=num_envs, seed=seed, make=TINY, kwargs=kw, **extra)


def zeros(env):
    return {t: np.zeros((env.num_envs, n, env.act_dims[t])) for t, n in env.team_sizes.items()}


def test_teams_from_name_prefixes():
    env = tiny()
    assert env.teams == ("hunter", "runner")
    assert env.team_sizes == {"hunter": 2, "runner": 1}
    assert env.obs_dims == {"hunter": 6, "runner": 6} and env.discrete == frozenset()
    assert [t.act_dim for t in team_specs(env)] == [2, 2]
    env.close()


def test_explicit_teams_rename_and_mpe2_tag_meets_the_tag_teams():
    env = make("pettingzoo", num_envs=1, make=TAG, kwargs={"continuous_actions": True},
               teams={"predator": ["adversary_0", "adversary_1", "adversary_2"],
                      "prey": ["agent_0"]})  # fmt: skip
    assert env.teams == ("predator", "prey")
    assert env.obs_dims == {"predator": 16, "prey": 14} and env.act_dims["prey"] == 5
    assert env.episode_length == 25 and env.has_positions
    assert env.bodies.size.tolist() == [0.075, 0.075, 0.075, 0.05]  # mpe2's radii
    obs = env.observe()
    assert obs["predator"].shape == (1, 3, 16) and obs["prey"].shape == (1, 1, 14)
    env.close()


@pytest.mark.parametrize(
    "teams, words",
    [
        ({"a": ["hunter_0"], "b": ["runner_0"]}, ["unassigned", "hunter_1"]),
        ({"a": ["hunter_0", "hunter_1", "nobody_7"], "b": ["runner_0"]}, ["unknown", "nobody_7"]),
    ],
)
def test_explicit_teams_must_cover_every_agent_once(teams, words):
    with pytest.raises(ConfigError) as e:
        config_from_dict({"env": {"scenario": "pettingzoo", "make": TINY, "teams": teams}})
    assert all(w in str(e.value) for w in words)


def test_a_team_with_mixed_spaces_is_refused_naming_agents_and_spaces():
    with pytest.raises(ConfigError) as e:
        config_from_dict(
            {"env": {"scenario": "pettingzoo", "make": TINY, "kwargs": {"mixed": True}}}
        )
    msg = str(e.value)
    assert "team 'hunter'" in msg and "observation space" in msg
    assert "hunter_0: Box(-inf, inf, (6,), float32)" in msg
    assert "hunter_1: Box(-inf, inf, (7,), float32)" in msg


def test_bad_make_strings_are_config_errors():
    for make_str, word in (("nomodule_xyz:f", "cannot load"), ("no_colon", "package.module")):
        with pytest.raises(ConfigError, match=word):
            config_from_dict({"env": {"scenario": "pettingzoo", "make": make_str}})


def test_an_agent_that_leaves_is_masked_and_the_episode_goes_on():
    env = tiny(leave_at=3, max_cycles=6)
    for step in range(1, 7):
        res = env.step(zeros(env))
        alive = res.info["alive"]["runner"][:, 0]
        if step <= 3:  # the runner takes part up to the step it leaves on
            assert (alive == 1).all() and (res.info["final_obs"]["runner"] != 0).any()
        else:  # gone: zero observation, zero reward, masked; the hunters play on
            assert (alive == 0).all() and (res.reward["runner"] == 0).all()
            assert (res.info["final_obs"]["runner"] == 0).all()
            assert (res.info["alive"]["hunter"] == 1).all()
        assert res.done.tolist() == [step == 6] * 2
    # the time limit truncates (bootstrap); after the auto-reset the runner is back
    assert res.info["truncated"].all() and not res.info["terminated"].any()
    assert (res.obs["runner"] != 0).any() and not np.array_equal(
        res.obs["hunter"], res.info["final_obs"]["hunter"]
    )
    env.close()


def test_everyone_terminating_is_terminated_not_truncated():
    env = tiny(end_at=2, leave_at=99)
    env.step(zeros(env))
    res = env.step(zeros(env))
    assert res.done.all() and res.info["terminated"].all() and not res.info["truncated"].any()
    env.close()


def test_copy_i_is_seeded_seed_plus_i_whatever_the_workers():
    three = tiny(num_envs=3, seed=10, workers=2)
    one = tiny(num_envs=1, seed=12)
    assert np.array_equal(three.observe()["hunter"][2], one.observe()["hunter"][0])
    assert not np.array_equal(three.observe()["hunter"][0], three.observe()["hunter"][1])
    other = tiny(num_envs=3, seed=10, workers=3)
    for _ in range(10):  # through an auto-reset (max_cycles 8): same stream per copy
        a, b = three.step(zeros(three)), other.step(zeros(other))
        assert all(np.array_equal(a.obs[t], b.obs[t]) for t in a.obs)
    for e in (three, one, other):
        e.close()


def test_discrete_actions_are_the_argmax():
    env = tiny(num_envs=1, discrete=True)
    assert env.discrete == frozenset({"hunter", "runner"}) and env.act_dims["hunter"] == 5
    before = env.state.pos.copy()  # [1, 3, 2] from the world's positions() hook
    act = zeros(env)
    act["hunter"][0, :, 2] = 1.0  # right: +0.1 in x
    act["runner"][0, 0] = [0.1, 0.0, 0.0, 0.0, 0.9]  # up: +0.1 in y
    env.step(act)
    moved = env.state.pos[0] - before[0]
    assert np.allclose(moved, [[0.1, 0], [0.1, 0], [0, 0.1]])
    env.close()


def test_a_killed_worker_is_restarted_and_its_copies_reset(caplog):
    env = tiny(num_envs=4, workers=2, max_cycles=50)
    env.step(zeros(env))
    victim = env.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while env.pools[0].processes[0].is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    res = env.step(zeros(env))
    assert res.info["worker_restarts"] == 1 and env.restarts == 1
    assert res.done.tolist() == [True, True, False, False]  # worker 0's copies were cut short
    assert res.info["truncated"][:2].all() and not res.info["terminated"].any()
    assert env.worker_pids()[0] != victim and "died; restarting" in caplog.text
    for _ in range(3):  # and it steps on
        res = env.step(zeros(env))
        assert res.info["worker_restarts"] == 0 and not res.done.any()
    env.close()
