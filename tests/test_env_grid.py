"""Cell-grid neighbour search: the same answers as all pairs, at sizes where the grid runs."""

import numpy as np
import pytest

import predprey.env as pe
from predprey.env.grid import GRID_MIN
from predprey.env.physics import CONTACT_CUTOFF, grid_contacts, physics_step
from predprey.env.spread import COVER_RADIUS


def reference_local(pos, vel, lm, k, k_lm, centre, half):
    """Local observations of one team by brute force in NumPy: [E, N, 4 + 5k + 3k_lm]."""
    E, N = pos.shape[:2]
    out = np.zeros((E, N, 4 + 5 * k + 3 * k_lm))
    out[..., :2] = vel
    out[..., 2:4] = (pos - centre) / half
    rel = pos[:, None, :, :] - pos[:, :, None, :]  # [E, i, j, 2]
    d = np.einsum("eijd,eijd->eij", rel, rel)
    d[:, np.arange(N), np.arange(N)] = np.inf
    order = np.argsort(d, axis=2, kind="stable")[:, :, :k]  # ties: lower index first
    rel_lm = lm[:, None, :, :] - pos[:, :, None, :]  # [E, i, l, 2]
    d_lm = np.einsum("eild,eild->eil", rel_lm, rel_lm)
    order_lm = np.argsort(d_lm, axis=2, kind="stable")[:, :, :k_lm]
    for e, i in np.ndindex(E, N):
        for s, j in enumerate(order[e, i]):
            out[e, i, 4 + 5 * s : 9 + 5 * s] = [1, *rel[e, i, j], *(vel[e, j] - vel[e, i])]
        for s, j in enumerate(order_lm[e, i]):
            b = 4 + 5 * k + 3 * s
            out[e, i, b : b + 3] = [1, *rel_lm[e, i, j]]
    return out


@pytest.mark.parametrize("n", [5, GRID_MIN + 1, 150])
def test_local_obs_equal_all_pairs(n):
    env = pe.make("spread", num_envs=3, seed=n, obs="local", num_agents=n, density=1.0,
                  k_agents=4, k_landmarks=3)  # fmt: skip
    s = env.state
    s.vel[:] = np.random.default_rng(0).normal(size=s.vel.shape)
    s.pos[1, : n // 2] = s.pos[1, :1]  # a pile of agents at one point: ties everywhere
    want = reference_local(s.pos, s.vel, s.landmark_pos, 4, 3, env.scenario.centre,
                           env.scenario.half)  # fmt: skip
    np.testing.assert_allclose(env.observe()["agent"], want, atol=1e-5)


def test_local_obs_far_outside_the_grid():
    """Clustered and far-flung points (an open plane): cell sizes adapt, answers stay exact."""
    rng = np.random.default_rng(1)
    n = 80
    env = pe.make("spread", num_envs=2, obs="local", num_agents=n, k_agents=3, k_landmarks=2)
    s = env.state
    s.pos[:] = rng.normal(scale=0.01, size=s.pos.shape)
    s.pos[:, :3] = [[50.0, -40.0], [0.0, 1e3], [-7.0, 0.0]]
    s.landmark_pos[:] = rng.normal(scale=30.0, size=s.landmark_pos.shape)
    want = reference_local(s.pos, s.vel, s.landmark_pos, 3, 2, np.zeros(2), 1.0)
    np.testing.assert_allclose(env.observe()["agent"], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [4, 120])
def test_spread_outcome_equals_all_pairs(n):
    env = pe.make("spread", num_envs=4, seed=3, num_agents=n, density=2.0)
    s = env.state
    s.pos[0, 1] = s.landmark_pos[0, 0] + 0.05  # one landmark surely covered
    out = env.scenario.outcome(s)
    d_lm = np.linalg.norm(s.landmark_pos[:, :, None] - s.pos[:, None], axis=-1).min(2)  # [E, L]
    d = np.linalg.norm(s.pos[:, :, None] - s.pos[:, None], axis=-1)
    hit = d < 0.3
    hit[:, np.arange(n), np.arange(n)] = False
    want = 0.5 * -d_lm.sum(1)[:, None] - 0.5 * hit.sum(2)
    np.testing.assert_allclose(out.rewards["agent"], want, rtol=1e-5)
    np.testing.assert_array_equal(out.touches, hit.sum((1, 2)) // 2)
    np.testing.assert_allclose(out.metrics["coverage"], (d_lm < COVER_RADIUS).mean(1))
    np.testing.assert_allclose(out.metrics["landmark_dist"], d_lm.mean(1))
    assert out.metrics["coverage"][0] > 0


def test_grid_contacts_equal_all_pairs():
    rng = np.random.default_rng(2)
    E, N = 3, 200
    pos = rng.uniform(0, 4, size=(E, N, 2))
    alive = rng.uniform(size=(E, N)) > 0.1
    size = rng.uniform(0.05, 0.2, size=N)
    grid = np.zeros((E, N, 2))
    grid_contacts(pos, alive, size, 100.0, 0.01, grid)
    pairs = np.zeros((E, N, 2))
    vel, no_lm = np.zeros((E, N, 2)), np.zeros((E, 0, 2))
    physics_step(pos.copy(), vel, pairs, alive, size, np.full(N, np.inf), no_lm, np.zeros(0),
                 0.1, 0.25, 100.0, 0.01, 0.0, True)  # fmt: skip
    assert np.abs(pairs).max() > 1.0  # contacts happened
    np.testing.assert_allclose(grid, pairs, atol=1e-9)
    assert CONTACT_CUTOFF * 0.01 < 1  # the grid reach (2 max size + cutoff margin) is small


def test_density_scales_the_arena_and_walls_hold():
    for n in (4, 80):
        env = pe.make("spread", num_envs=8, seed=0, obs="local", num_agents=n, density=1.0)
        h = 0.5 * np.sqrt(n)
        assert env.bodies.arena == (0.0, 2 * h, 0.0, 2 * h)
        rng = np.random.default_rng(0)
        for _ in range(60):
            push = np.sign(rng.normal(size=(8, n, 2))) + 0.0  # full force, random corners
            res = env.step({"agent": np.broadcast_to(push[:, :1], push.shape)})
            own = res.obs["agent"][..., 2:4]
            assert np.abs(own).max() <= 1.0 + 1e-6  # inside the walls, in half-widths
    tag = pe.make("tag", num_envs=2, obs="local", num_predators=12, num_prey=4,
                  num_obstacles=8, density=1.0)  # fmt: skip
    assert tag.bodies.arena == (0.0, 4.0, 0.0, 4.0) and not tag.fused
    assert (tag.state.landmark_pos >= 0.2 - 1e-9).all() and (tag.state.landmark_pos <= 3.8).all()
