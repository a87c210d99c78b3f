"""Scenario `spread`: step-by-step parity with PettingZoo/mpe2 simple_spread, local obs."""

import numpy as np
import pytest

import predprey.env as pe

simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")


def to_mpe2_action(force: np.ndarray) -> np.ndarray:
    fx, fy = float(force[0]), float(force[1])
    return np.array([0, max(-fx, 0), max(fx, 0), max(-fy, 0), max(fy, 0)], np.float32)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_parity_with_mpe2(n):
    ref = simple_spread_v3.parallel_env(N=n, max_cycles=25, continuous_actions=True)
    rng = np.random.default_rng(n)
    for episode in range(2):
        ref_obs, _ = ref.reset(seed=episode)
        world = ref.unwrapped.world
        env = pe.make("spread", num_envs=1, num_agents=n)
        s = env.state
        for i, agent in enumerate(world.agents):
            s.pos[0, i], s.vel[0, i] = agent.state.p_pos, agent.state.p_vel
        for j, lm in enumerate(world.landmarks):
            s.landmark_pos[0, j] = lm.state.p_pos
        names = [a.name for a in world.agents]
        comm = 2 * (n - 1)  # mpe2's communication part: always zero (silent agents)
        obs = env.observe()["agent"][0]
        for i, name in enumerate(names):
            np.testing.assert_allclose(obs[i], ref_obs[name][: len(ref_obs[name]) - comm])
        for t in range(25):
            # pushes agents into each other often enough to exercise the collision penalty
            force = rng.uniform(-1, 1, size=(n, 2))
            res = env.step({"agent": force[None]})
            ref_obs, ref_rew, _, ref_trunc, _ = ref.step(
                {name: to_mpe2_action(force[i]) for i, name in enumerate(names)}
            )
            for i, name in enumerate(names):
                got = res.info["final_obs"]["agent"][0, i]
                want = ref_obs[name][: len(ref_obs[name]) - comm]
                np.testing.assert_allclose(got, want, atol=1e-4, err_msg=f"obs {name} t={t}")
                np.testing.assert_allclose(
                    res.reward["agent"][0, i], ref_rew[name], atol=1e-4, err_msg=f"rew t={t}"
                )
                assert bool(res.info["truncated"][0]) == ref_trunc[name]


def test_collision_penalty_and_landmarks_pass_through():
    env = pe.make("spread", num_envs=1, num_agents=3, local_ratio=1.0)
    s = env.state
    s.pos[0] = [[0.0, 0.0], [0.2, 0.0], [0.9, 0.9]]  # agents 0 and 1 overlap (radii 0.15)
    s.landmark_pos[0] = [[0.95, 0.9], [0.5, 0.5], [0.9, 0.95]]  # agent 2 overlaps landmarks
    s.vel[:] = 0.0
    res = env.step({"agent": np.zeros((1, 3, 2))})
    np.testing.assert_allclose(res.reward["agent"][0], [-1.0, -1.0, 0.0])  # no landmark term
    assert res.info["touches"][0] == 1
    np.testing.assert_allclose(env.state.pos[0, 2], [0.9, 0.9])  # no push from the landmark


def test_speed_cost_charges_each_agent_its_squared_speed():
    """speed_cost c: each agent's reward is mpe2's minus c |v|^2, v its velocity after the step."""
    rewards, speeds = [], None
    for cost in (None, 0.3):
        env = pe.make("spread", num_envs=2, num_agents=4, seed=3, speed_cost=cost)
        env.reset()
        act = {"agent": np.random.default_rng(0).uniform(-1, 1, (2, 4, 2))}
        for _ in range(3):
            res = env.step(act)
        rewards.append(res.reward["agent"])
        speeds = (env.state.vel**2).sum(-1)  # [E, N], the same in both worlds
    assert speeds.min() > 0.01
    np.testing.assert_allclose(rewards[1], rewards[0] - 0.3 * speeds, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, float("inf"), "x", True])
def test_speed_cost_must_be_a_number_at_least_zero(bad):
    with pytest.raises(ValueError, match="speed_cost must be a number >= 0"):
        pe.make("spread", num_envs=1, num_agents=3, speed_cost=bad)
    pe.make("spread", num_envs=1, num_agents=3, speed_cost=0)  # 0: off


def test_local_obs_size_independent_of_n_and_runs():
    dims = {pe.make("spread", num_envs=2, num_agents=n, obs="local").obs_dims["agent"]
            for n in (2, 4, 12, 40)}  # fmt: skip
    assert len(dims) == 1
    env = pe.make("spread", num_envs=8, num_agents=12, obs="local", seed=1)
    rng = np.random.default_rng(0)
    dones = 0
    for _ in range(30):
        res = env.step({"agent": rng.uniform(-1, 1, (8, 12, 2))})
        dones += res.done.sum()
    assert res.obs["agent"].shape == (8, 12, dims.pop())
    assert np.isfinite(res.obs["agent"]).all()
    assert dones == 8  # each env ended its 25-step episode once
