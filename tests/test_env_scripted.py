"""Scripted policies: behaviour by hand, and touches per 25-step episode on mpe 3v1+2 with
1000 envs x 1 episode (95% CI about +-0.2 for chasers, +-0.06 otherwise). mpe2 references
(../shared/bench/mpe2_baselines.py, 300-2000 episodes): random v random 0.28, chasers v
random prey 6.65, chasers v evader 0.52-0.71, chasers v still prey 8.79."""

import json

import numpy as np
import pytest

import predprey.env as pe
from predprey.cli import main
from predprey.env import scripted


def touches_per_episode(predators, prey, num_envs=1000, seed=0):
    env = pe.make("tag", num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    total = np.zeros(num_envs)
    for _ in range(env.episode_length):
        act = {"predator": scripted.act(predators, env, "predator", rng),
               "prey": scripted.act(prey, env, "prey", rng)}  # fmt: skip
        res = env.step(act)
        total += res.info["touches"]
    assert res.done.all()  # exactly one 25-step episode per env
    return total.mean()


def test_calibration_on_mpe_3v1():
    assert 6.0 <= touches_per_episode("chaser", "random") <= 7.5
    assert touches_per_episode("chaser", "evader") < 1.5
    assert touches_per_episode("random", "random") < 0.5
    assert touches_per_episode("chaser", "still") > 8.0  # still prey are the easiest


def test_actions_shape_and_range():
    env = pe.make("tag", num_envs=7, preset="seed", num_obstacles=2)
    rng = np.random.default_rng(0)
    for name in scripted.SCRIPTED:
        for team in env.teams:
            a = scripted.act(name, env, team, rng)
            assert a.shape == (7, 5, 2)
            assert np.abs(a).max() <= 1.0


def test_chaser_heads_for_the_nearest_living_prey():
    env = pe.make("tag", num_envs=1, num_predators=1, num_prey=2, num_obstacles=0)
    env.state.pos[0] = [[0.0, 0.0], [0.0, 0.5], [-0.8, 0.0]]
    a = scripted.act("chaser", env, "predator", np.random.default_rng(0))
    np.testing.assert_allclose(a[0, 0], [0.0, 1.0])
    env.state.alive[0, 1] = False  # the nearer prey left: chase the other one
    a = scripted.act("chaser", env, "predator", np.random.default_rng(0))
    np.testing.assert_allclose(a[0, 0], [-1.0, 0.0])


def test_evader_flees_weighted_predators_walls_and_obstacles():
    env = pe.make("tag", num_envs=3, num_predators=2, num_prey=1, num_obstacles=1)
    s = env.state
    s.landmark_pos[:] = 5.0  # far away, except in env 2
    s.pos[0] = [[0.1, 0.0], [-0.5, 0.0], [0.0, 0.0]]  # near predator east: flee west
    s.pos[1] = [[0.0, 0.0], [0.0, 0.3], [0.95, 0.0]]  # at the east edge: pulled back inwards
    s.pos[2] = [[0.0, -0.9], [0.0, -0.9], [0.0, 0.0]]  # predators far south, obstacle just north
    s.landmark_pos[2] = [[0.1, 0.25]]  # north-north-east, surfaces 0.02 apart
    a = scripted.act("evader", env, "prey", np.random.default_rng(0))[:, 0]  # [E, 2]
    np.testing.assert_allclose(a[0], [-1.0, 0.0], atol=1e-9)
    assert a[1, 0] < 0
    # fleeing north would run into the obstacle: most of that part is dropped, it slides west
    into = np.array([0.1, 0.25]) / np.hypot(0.1, 0.25)
    assert a[2, 0] < -0.5 and a[2] @ into < 0.5  # (without the obstacle: [0, 1] @ into = 0.93)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0)


def test_unknown_policy_and_no_opponents():
    env = pe.make("spread", num_envs=2)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"'dance'.*random.*still.*chaser.*evader"):
        scripted.act("dance", env, "agent", rng)
    with pytest.raises(ValueError, match="opposing team"):
        scripted.act("chaser", env, "agent", rng)
    with pytest.raises(ValueError, match="'prey'"):
        scripted.act("random", env, "prey", rng)
    assert scripted.act("random", env, "agent", rng).shape == (2, 3, 2)


def test_cli_scripted_prints_one_json_line(capsys):
    assert main(["scripted", "--episodes", "50", "--seed", "1"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["episodes"] == 50 and line["policy/prey"] == "evader"
    assert line["touches_per_episode"]["mean"] < 1.5
    assert set(line["returns"]) == {"predator", "prey"} and line["env_steps_per_s"] > 0
    assert main(["scripted", "--episodes", "20", "--set", "env.preset=seed"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["preset"] == "seed" and 1 <= line["episode_length"] <= 200


def test_cli_scripted_bad_input_is_one_line_error(capsys):
    assert main(["scripted", "--prey", "flee"]) == 2
    assert "flee" in capsys.readouterr().err
    assert main(["scripted", "--set", "env.num_prey=0"]) == 2
    assert "num_prey" in capsys.readouterr().err


def test_greedy_steers_to_the_nearest_landmark_and_stays():
    env = pe.make("spread", num_envs=50, seed=3, num_agents=1, num_landmarks=3, density=0.2)
    rng = np.random.default_rng(0)
    for t in range(24):  # (the 25th step ends the episode and resets the worlds)
        res = env.step({"agent": scripted.act("greedy", env, "agent", rng)})
        if t >= 19:  # from anywhere in the 2.2 x 2.2 arena, there by step 20 and staying
            d = np.linalg.norm(env.state.landmark_pos - env.state.pos, axis=-1).min(axis=1)
            assert d.max() < 0.1
            assert (res.info["metrics"]["coverage"] > 0.3).all()  # 1 agent: 1 of 3 (or 2 close)
    with pytest.raises(ValueError, match="needs landmarks"):
        scripted.act("greedy", pe.make("tag", num_obstacles=0), "predator", rng)


@pytest.mark.parametrize("rule", ["free", "matched"])
@pytest.mark.parametrize("num_agents", [4, 40])
def test_target_steers_for_the_observed_target_slot(num_agents, rule):
    """scripted 'target' heads for the landmark of spread's target slot under the
    env's target_rule (from rest, force = 3 x offset, at most unit length) and stands still
    where the slot is empty (matched: fewer landmarks than agents, so some go without)."""
    env = pe.make("spread", num_envs=20, seed=2, obs="local", num_agents=num_agents,
                  num_landmarks=num_agents if rule == "free" else num_agents // 4 + 1,
                  density=1.0, k_landmarks=2, target_rule=rule)  # fmt: skip
    obs = env.reset()["agent"]  # [E, N, D]; at rest
    force = scripted.act("target", env, "agent", np.random.default_rng(0))  # [E, N, 2]
    present, offset = obs[..., -3:-2], obs[..., -2:]
    want = 3.0 * offset * present
    want /= np.maximum(np.linalg.norm(want, axis=-1, keepdims=True), 1.0)
    np.testing.assert_allclose(force, want, atol=1e-5)
    assert 0 < present.mean() < 1 or num_agents == 4


def test_target_covers_more_than_greedy_more_than_random(capsys):
    common = ["scripted", "--set", "env.scenario=spread", "--set", "env.num_agents=4",
              "--set", "env.density=1.0", "--episodes", "100"]  # fmt: skip
    cover = {}
    for name in ("target", "greedy", "random"):
        assert main([*common, "--agents", name]) == 0
        cover[name] = json.loads(capsys.readouterr().out)["coverage"]
    assert cover["target"] > cover["greedy"] > 0.3 > cover["random"]  # no pile-ups


def test_matched_target_covers_a_crowd_better_than_free():
    """At N = 12 (density 1, 50 steps) steering for the matched slot covers more than for the
    free one, which leaves every agent whose landmarks are all nearer to others idle."""
    cover = {}
    for rule in ("free", "matched"):
        env = pe.make("spread", num_envs=16, seed=4, obs="local", num_agents=12, density=1.0,
                      episode_length=50, target_rule=rule)  # fmt: skip
        env.reset()
        rng = np.random.default_rng(0)
        for _ in range(49):  # (the 50th step ends the episode and resets the worlds)
            res = env.step({"agent": scripted.act("target", env, "agent", rng)})
        cover[rule] = res.info["metrics"]["coverage"].mean()
    assert cover["matched"] > cover["free"] + 0.15, cover
