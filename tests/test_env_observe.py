"""Observation modes `local` and `rays` of tag (preset mpe), checked by hand."""

import numpy as np
import pytest

import predprey.env as pe
from predprey.env.observe import ray_observe


def test_local_obs_hand_computed():
    env = pe.make("tag", num_envs=1, obs="local", num_predators=2, num_prey=2, num_obstacles=1,
                  k_predators=2, k_prey=1, k_landmarks=2)  # fmt: skip
    assert env.obs_dims["predator"] == 4 + 5 * (2 + 1) + 3 * 2 == env.obs_dims["prey"]
    s = env.state
    s.pos[0] = [[0.0, 0.0], [0.5, 0.0], [0.0, -0.3], [0.9, 0.9]]
    s.vel[0] = [[0.1, 0.0], [0.0, 0.2], [-0.1, 0.0], [0.0, 0.0]]
    s.landmark_pos[0] = [[-0.4, 0.4]]
    o = env.observe()
    want_pred0 = [
        0.1, 0.0, 0.0, 0.0,  # own vel, own pos
        1, 0.5, 0.0, -0.1, 0.2,  # predator 1: rel pos, rel vel
        0, 0, 0, 0, 0,  # no third predator
        1, 0.0, -0.3, -0.2, 0.0,  # nearest prey (prey 0)
        1, -0.4, 0.4,  # the obstacle
        0, 0, 0,  # no second obstacle
    ]  # fmt: skip
    np.testing.assert_allclose(o["predator"][0, 0], want_pred0, atol=1e-6)
    want_prey1 = [
        0.0, 0.0, 0.9, 0.9,
        1, -0.4, -0.9, 0.0, 0.2,  # nearest predator first: predator 1 (dist 0.98)
        1, -0.9, -0.9, 0.1, 0.0,  # then predator 0 (dist 1.27)
        1, -0.9, -1.2, -0.1, 0.0,  # the other prey
        1, -1.3, -0.5,
        0, 0, 0,
    ]  # fmt: skip
    np.testing.assert_allclose(o["prey"][0, 1], want_prey1, atol=1e-6)


def test_local_obs_size_independent_of_n():
    dims = set()
    for n_pred, n_prey, n_obs in [(1, 1, 0), (3, 1, 2), (8, 6, 4), (20, 20, 10)]:
        env = pe.make("tag", num_envs=2, obs="local", num_predators=n_pred, num_prey=n_prey,
                      num_obstacles=n_obs)  # fmt: skip
        o = env.reset()
        assert o["predator"].shape == (2, n_pred, env.obs_dims["predator"])
        dims |= set(env.obs_dims.values())
    assert len(dims) == 1


def test_rays_in_mpe_preset():
    env = pe.make("tag", num_envs=1, obs="rays", num_predators=1, num_prey=1, num_obstacles=0,
                  num_rays=8, view_distance=1.0)  # fmt: skip
    env.state.pos[0] = [[0.0, 0.0], [-0.3, 0.3]]  # prey at 135 deg, distance 0.424
    o = env.observe()
    want = np.ones(8)
    want[3] = np.hypot(0.3, 0.3)
    np.testing.assert_allclose(o["predator"][0, 0], want, atol=1e-6)
    want = np.ones(8)
    want[7] = np.hypot(0.3, 0.3)  # predator at 315 deg from the prey
    np.testing.assert_allclose(o["prey"][0, 0], want, atol=1e-6)
    res = env.step({"predator": np.ones((1, 1, 2)), "prey": np.ones((1, 1, 2))})
    assert res.obs["predator"].shape == (1, 1, 8) and res.obs["predator"].dtype == np.float32


@pytest.mark.parametrize("num_rays", [3, 4, 7, 30])
def test_rays_match_exact_bearings_even_at_sector_edges(num_rays):
    """The kernel's fast atan2 + edge correction agrees with numpy's exact arctan2, also for
    opponents within ~1e-4 rad of an edge between two rays."""
    rng = np.random.default_rng(num_rays)
    E, n_pred, N, view = 100, 3, 6, 250.0
    pos = rng.uniform(0, 250, (E, N, 2))
    w = 2 * np.pi / num_rays
    edge = (rng.integers(num_rays, size=(E, N - n_pred)) - 0.5) * w
    ang = edge + rng.normal(scale=1e-4, size=edge.shape)
    r = rng.uniform(5, 200, size=edge.shape)[..., None]
    pos[:, n_pred:] = pos[:, :1] + r * np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    out = np.empty((E, N, num_rays), np.float32)
    ray_observe(pos, np.ones((E, N), bool), n_pred, num_rays, view, out)
    want = np.ones((E, N, num_rays))
    rel = pos[:, None, :, :] - pos[:, :, None, :]  # [E, i, j, 2]
    dist = np.linalg.norm(rel, axis=-1)
    k = np.floor(np.arctan2(rel[..., 1], rel[..., 0]) % (2 * np.pi) / w + 0.5).astype(int)
    k %= num_rays
    for e, i, j in np.ndindex(E, N, N):
        if (i < n_pred) != (j < n_pred) and dist[e, i, j] < view:
            want[e, i, k[e, i, j]] = min(want[e, i, k[e, i, j]], dist[e, i, j] / view)
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_local_slots_per_observer_team():
    """k_prey [1, 0]: predators see the nearest prey, prey have no slot for fellow prey (at
    3 v 1 there is none, so a policy trained there never learned to read one)."""
    env = pe.make("tag", num_envs=2, obs="local", num_predators=3, num_prey=2, num_obstacles=1,
                  k_predators=2, k_prey=[1, 0], k_landmarks=1)  # fmt: skip
    assert env.obs_dims == {"predator": 4 + 5 * 3 + 3, "prey": 4 + 5 * 2 + 3}
    same = pe.make("tag", num_envs=2, obs="local", num_predators=3, num_prey=2, num_obstacles=1,
                   k_predators=2, k_prey=1, k_landmarks=1)  # fmt: skip
    o, full = env.reset(), same.reset()
    np.testing.assert_array_equal(o["predator"], full["predator"])
    keep = np.r_[0:14, 19:22]  # the prey's own, predator and landmark parts
    np.testing.assert_array_equal(o["prey"], full["prey"][..., keep])
    with pytest.raises(ValueError, match="pair"):
        pe.make("tag", obs="local", k_prey=[1, 0, 2])


def test_spread_without_own_position_zeroes_it_and_nothing_else():
    kw = dict(num_envs=3, seed=4, obs="local", num_agents=6, density=1.0, k_agents=2,
              k_landmarks=2)  # fmt: skip
    with_pos = pe.make("spread", **kw).reset()["agent"]
    without = pe.make("spread", own_position=False, **kw).reset()["agent"]
    assert np.abs(with_pos[..., 2:4]).max() > 0.1
    np.testing.assert_array_equal(without[..., 2:4], 0.0)
    np.testing.assert_array_equal(without[..., :2], with_pos[..., :2])
    np.testing.assert_array_equal(without[..., 4:], with_pos[..., 4:])
    with pytest.raises(ValueError, match="own_position applies only to obs 'local'"):
        pe.make("spread", num_envs=1, own_position=False)


def test_tag_without_own_position_zeroes_it_and_nothing_else():
    kw = dict(num_envs=3, seed=4, obs="local", num_predators=6, num_prey=2, num_obstacles=4,
              density=1.0)  # fmt: skip
    with_pos = pe.make("tag", **kw).reset()
    without = pe.make("tag", own_position=False, **kw).reset()
    for team in ("predator", "prey"):
        assert np.abs(with_pos[team][..., 2:4]).max() > 0.1
        np.testing.assert_array_equal(without[team][..., 2:4], 0.0)
        np.testing.assert_array_equal(np.delete(without[team], [2, 3], -1),
                                      np.delete(with_pos[team], [2, 3], -1))  # fmt: skip
    with pytest.raises(ValueError, match="own_position applies only to obs 'local'"):
        pe.make("tag", num_envs=1, own_position=False)


@pytest.mark.parametrize("num_agents", [6, 40])  # all pairs, then the cell grid
def test_spread_landmark_claims_against_all_pairs(num_agents):
    """landmark_claims: each landmark slot ends with the distance from that landmark to its
    nearest agent other than the observer, capped at 1; the rest of the observation is the
    plain one."""
    kw = dict(num_envs=4, seed=3, obs="local", num_agents=num_agents, density=1.0, k_agents=1,
              k_landmarks=3)  # fmt: skip
    plain_env = pe.make("spread", **kw)
    env = pe.make("spread", landmark_claims=True, **kw)
    assert env.obs_dims["agent"] == plain_env.obs_dims["agent"] + 3
    plain, obs = plain_env.reset()["agent"], env.reset()["agent"]
    pos, lm = env.state.pos, env.state.landmark_pos  # [E, N, 2], [E, L, 2]
    head = 4 + 5  # own vel, own pos, one agent slot
    np.testing.assert_array_equal(obs[..., :head], plain[..., :head])
    slots = obs[..., head:].reshape(*obs.shape[:2], 3, 4)  # [E, N, k, present dx dy claim]
    np.testing.assert_array_equal(slots[..., :3].reshape(plain[..., head:].shape),
                                  plain[..., head:])  # fmt: skip
    lm_agent = np.linalg.norm(lm[:, :, None] - pos[:, None], axis=-1)  # [E, L, N]
    for e in range(4):
        for i in range(num_agents):
            for s in range(3):
                seen = pos[e, i] + slots[e, i, s, 1:3]  # the landmark's position
                j = np.argmin(np.linalg.norm(lm[e] - seen, axis=-1))
                others = np.delete(lm_agent[e, j], i)
                assert slots[e, i, s, 3] == pytest.approx(min(others.min(), 1.0), abs=1e-5)
    assert slots[..., 3].min() > 0 and slots[..., 3].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="landmark_claims applies only to obs 'local'"):
        pe.make("spread", num_envs=1, landmark_claims=True)


@pytest.mark.parametrize("num_agents", [4, 40])  # all pairs, then the cell grid
def test_spread_free_target_against_all_pairs(num_agents):
    """target_rule free: one more slot after the landmarks, the nearest of the 16 nearest
    landmarks to which the observer is strictly nearer than every other agent (absent: all
    zero); the rest of the observation is the plain one."""
    kw = dict(num_envs=4, seed=5, obs="local", num_agents=num_agents, density=1.0, k_agents=1,
              k_landmarks=2, landmark_claims=True)  # fmt: skip
    plain_env = pe.make("spread", **kw)
    env = pe.make("spread", target_rule="free", **kw)
    assert env.obs_dims["agent"] == plain_env.obs_dims["agent"] + 3
    plain, obs = plain_env.reset()["agent"], env.reset()["agent"]
    np.testing.assert_array_equal(obs[..., :-3], plain)
    pos, lm = env.state.pos, env.state.landmark_pos  # [E, N, 2], [E, L, 2]
    d = np.linalg.norm(lm[:, None] - pos[:, :, None], axis=-1)  # [E, N, L]
    found = 0
    for e in range(4):
        for i in range(num_agents):
            want = np.zeros(3)
            for j in np.argsort(d[e, i], kind="stable")[:16]:
                if np.delete(d[e, :, j], i).min() > d[e, i, j]:
                    want = np.array([1.0, *(lm[e, j] - pos[e, i])])
                    found += 1
                    break
            np.testing.assert_allclose(obs[e, i, -3:], want, atol=1e-5)
    assert found > 0  # some agents have a landmark of their own ...
    assert num_agents == 4 or found < 4 * num_agents  # ... and in a crowd some have none
    with pytest.raises(ValueError, match="target_rule applies only to obs 'local'"):
        pe.make("spread", num_envs=1, target_rule="free")
    none = pe.make("spread", **kw, target_rule="none")  # none: no slot, as without the key
    assert none.obs_dims == plain_env.obs_dims


def _matched_reference(pos, lm, i):
    """Observer i's landmark (index into lm) in the greedy matching of i and its 15 nearest
    other agents to its 16 nearest landmarks, shortest pair first; None if it gets none."""
    crew = [i, *[j for j in np.argsort(np.linalg.norm(pos - pos[i], axis=-1), kind="stable")
                 if j != i][:15]]  # fmt: skip
    near = np.argsort(np.linalg.norm(lm - pos[i], axis=-1), kind="stable")[:16]
    pairs = sorted((float(((lm[l] - pos[a]) ** 2).sum()), r, s)
                   for r, a in enumerate(crew) for s, l in enumerate(near))  # fmt: skip
    agents, landmarks = set(), set()
    for _, r, s in pairs:
        if r in agents or s in landmarks:
            continue
        if r == 0:
            return near[s]
        agents.add(r)
        landmarks.add(s)
    return None


@pytest.mark.parametrize("num_agents,num_landmarks", [(4, 4), (40, 40), (40, 12)])
def test_spread_matched_target_against_reference(num_agents, num_landmarks):
    """target_rule matched: the slot holds the observer's landmark in a greedy matching of
    it and its 15 nearest fellow agents to its 16 nearest landmarks (shortest pair first):
    a landmark for every agent while there are as many landmarks as agents in view, none for
    some where agents outnumber them; the rest of the observation is unchanged."""
    kw = dict(num_envs=4, seed=6, obs="local", num_agents=num_agents,
              num_landmarks=num_landmarks, density=1.0, k_agents=1, k_landmarks=2,
              landmark_claims=True)  # fmt: skip
    free_env = pe.make("spread", target_rule="free", **kw)
    env = pe.make("spread", target_rule="matched", **kw)
    free, obs = free_env.reset()["agent"], env.reset()["agent"]
    np.testing.assert_array_equal(obs[..., :-3], free[..., :-3])
    pos, lm = env.state.pos, env.state.landmark_pos
    got = 0
    for e in range(4):
        for i in range(num_agents):
            j = _matched_reference(pos[e], lm[e], i)
            want = np.zeros(3) if j is None else np.array([1.0, *(lm[e, j] - pos[e, i])])
            np.testing.assert_allclose(obs[e, i, -3:], want, atol=1e-5)
            got += j is not None
    if num_agents == num_landmarks:
        assert got == 4 * num_agents  # 16 (or N) agents, as many landmarks: all matched
    else:
        assert 0 < got < 4 * num_agents  # 16 agents v 12 landmarks in view: some left out
    assert (obs[..., -3] != free[..., -3]).any()  # a different rule from free's
    with pytest.raises(ValueError, match="target_rule: unknown target rule 'best'"):
        pe.make("spread", num_envs=1, obs="local", target_rule="best")
