"""Tag preset `seed`: the walled 250 x 250 world, rays, capture, rewards, determinism."""

import numpy as np
import pytest

import predprey.env as pe


def place(env, pos, vel=None):
    """Write agent positions (and zero or given velocities) into env 0 of a fresh state."""
    env.state.pos[0] = pos
    env.state.vel[0] = 0.0 if vel is None else vel
    env.state.alive[:] = True
    env.state.t[:] = 0


def polar(origin, r, deg):
    return np.asarray(origin) + r * np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))])


def still(env):
    return {t: np.zeros((env.num_envs, n, 2)) for t, n in env.team_sizes.items()}


def test_defaults():
    env = pe.make("tag", num_envs=2, preset="seed")
    assert env.team_sizes == {"predator": 5, "prey": 5}
    assert env.obs_dims == {"predator": 30, "prey": 30}
    assert env.episode_length == 200
    assert env.bodies.box == 250.0 and env.bodies.arena == (0.0, 250.0, 0.0, 250.0)
    obs = env.reset()
    assert obs["predator"].shape == (2, 5, 30) and obs["predator"].dtype == np.float32


def test_positions_stay_inside_the_box():
    E = 64
    env = pe.make("tag", num_envs=E, preset="seed", num_obstacles=3, seed=3)
    rng = np.random.default_rng(0)
    size = env.bodies.size[None, :, None]
    push = rng.choice([-1.0, 1.0], size=(E, env.num_agents, 2))  # hold a corner per agent
    for t in range(250):
        if t % 50 == 0:
            push = rng.choice([-1.0, 1.0], size=(E, env.num_agents, 2))
        a = push + rng.uniform(-0.2, 0.2, size=push.shape)
        res = env.step({"predator": a[:, :5], "prey": a[:, 5:]})
        for p in (res.info["final_pos"], env.state.pos):  # before and after auto-reset
            assert (p >= size - 1e-9).all() and (p <= 250.0 - size + 1e-9).all()
    # the walls were actually reached
    assert np.isclose(env.state.pos, size).any() or np.isclose(env.state.pos, 250 - size).any()


def test_rays_hand_computed():
    # 30 rays, 12 deg apart: an opponent at bearing b is seen by ray round(b / 12) mod 30
    env = pe.make("tag", num_envs=1, preset="seed", num_predators=2, num_prey=2)
    pred0 = np.array([100.0, 100.0])
    prey0 = polar(pred0, 50, 0)  # (150, 100)
    prey1 = polar(pred0, 60, 120)  # (70, 151.96)
    pred1 = polar(prey0, 80, 60)  # (190, 169.28)
    place(env, [pred0, pred1, prey0, prey1])
    obs = env.observe()
    want_pred = np.ones((2, 30))
    want_pred[0, 0] = 50 / 250  # prey 0 due east of predator 0
    want_pred[0, 10] = 60 / 250  # prey 1 at 120 deg
    want_pred[1, 20] = 80 / 250  # prey 0 at 240 deg from predator 1
    # prey 1 from predator 1: (-120, -17.32) -> 188.2 deg (ray 16), distance 121.24
    want_pred[1, 16] = np.hypot(120.0, 10 * np.sqrt(3)) / 250
    np.testing.assert_allclose(obs["predator"][0], want_pred, atol=1e-5)
    want_prey = np.ones((2, 30))
    want_prey[0, 15] = 50 / 250  # predator 0 due west of prey 0
    want_prey[0, 5] = 80 / 250  # predator 1 at 60 deg
    want_prey[1, 25] = 60 / 250  # predator 0 at 300 deg from prey 1
    want_prey[1, 1] = want_pred[1, 16]  # predator 1 at 8.2 deg
    np.testing.assert_allclose(obs["prey"][0], want_prey, atol=1e-5)


def test_rays_view_distance_and_nearest_in_a_ray():
    env = pe.make("tag", num_envs=1, preset="seed", num_predators=1, num_prey=3, num_rays=4,
                  view_distance=100.0)  # fmt: skip
    # rays at 0, 90, 180, 270 deg, each covering +-45 deg
    place(env, [[100.0, 100.0], [130.0, 110.0], [160.0, 90.0], [100.0, 210.0]])
    obs = env.observe()["predator"][0, 0]
    # prey 0 and 1 both in ray 0: the nearer (sqrt(1000)) wins; prey 2 at 110 > view: unseen
    np.testing.assert_allclose(obs, [np.sqrt(30**2 + 10**2) / 100, 1.0, 1.0, 1.0], atol=1e-6)


def test_capture_ends_the_episode_and_rewards():
    env = pe.make("tag", num_envs=2, preset="seed", num_predators=1, num_prey=1)
    place(env, [[100.0, 100.0], [108.0, 100.0]])  # within capture radius 10
    env.state.pos[1] = [[100.0, 100.0], [150.0, 100.0]]  # env 1: 50 apart, no capture
    res = env.step(still(env))
    assert res.done.tolist() == [True, False]
    assert res.info["terminated"].tolist() == [True, False]
    assert res.info["truncated"].tolist() == [False, False]
    assert res.info["touches"].tolist() == [1, 0]
    np.testing.assert_allclose(res.reward["predator"][:, 0], [10 - 8 / 250, -50 / 250], atol=1e-6)
    np.testing.assert_allclose(res.reward["prey"][:, 0], [-10 + 8 / 250, 50 / 250], atol=1e-6)
    assert env.state.t.tolist() == [0, 1]  # env 0 was reset


def test_distance_shaping_prefers_closer_predators():
    env = pe.make("tag", num_envs=2, preset="seed", num_predators=1, num_prey=1)
    env.state.pos[:] = [[[100.0, 100.0], [130.0, 100.0]], [[100.0, 100.0], [200.0, 100.0]]]
    env.state.vel[:] = 0.0
    res = env.step(still(env))
    assert res.reward["predator"][0, 0] > res.reward["predator"][1, 0]
    assert res.reward["prey"][0, 0] < res.reward["prey"][1, 0]


def test_remove_caught_prey_leave_and_the_episode_ends_when_none_remain():
    env = pe.make("tag", num_envs=1, preset="seed", num_predators=1, num_prey=2,
                  remove_caught=True)  # fmt: skip
    place(env, [[100.0, 100.0], [105.0, 100.0], [200.0, 200.0]])
    res = env.step(still(env))
    assert not res.done[0] and res.info["touches"][0] == 1
    assert env.state.alive[0].tolist() == [True, False, True]
    assert res.reward["prey"][0, 0] < -9 and res.reward["prey"][0, 1] > 0
    res = env.step(still(env))
    assert res.info["touches"][0] == 0 and res.reward["prey"][0, 0] == 0.0  # gone: no reward
    assert (res.obs["predator"][0, 0] < 1).sum() == 1  # only prey 1 is seen
    env.state.pos[0, 0] = [195.0, 200.0]
    res = env.step(still(env))
    assert res.done[0] and res.info["terminated"][0]
    assert env.state.alive.all()  # reset brings everyone back


def test_determinism_same_seed_same_trajectory():
    def rollout(seed):
        env = pe.make("tag", num_envs=8, preset="seed", seed=seed)
        rng = np.random.default_rng(seed)
        traj = []
        for _ in range(120):
            a = rng.uniform(-1, 1, size=(8, 10, 2))
            res = env.step({"predator": a[:, :5], "prey": a[:, 5:]})
            traj.append(np.concatenate([env.state.pos.ravel(), res.reward["prey"].ravel()]))
        return np.array(traj)

    a, b = rollout(5), rollout(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rollout(6))


def test_spawn_never_starts_captured():
    env = pe.make("tag", num_envs=500, preset="seed", seed=1)
    p = env.state.pos
    d = np.linalg.norm(p[:, :5, None] - p[:, None, 5:], axis=-1)
    assert d.min() >= 10.0


@pytest.mark.parametrize("obs", ["mpe", "local"])
def test_other_obs_modes_see_the_box_in_unit_coordinates(obs):
    env = pe.make("tag", num_envs=16, preset="seed", obs=obs, seed=2)
    o = env.reset()
    own_pos = o["predator"][..., 2:4]
    assert np.abs(own_pos).max() <= 1.0
    np.testing.assert_allclose(own_pos, (env.state.pos[:, :5] - 125) / 125, atol=1e-6)
