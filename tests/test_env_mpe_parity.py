"""Step-by-step parity of preset `mpe` with PettingZoo/mpe2 simple_tag (test-only dependency)."""

import numpy as np
import pytest

import predprey.env as pe

simple_tag_v3 = pytest.importorskip("mpe2.simple_tag_v3")


def to_mpe2_action(force: np.ndarray) -> np.ndarray:
    """Force in [-1, 1]^2 -> mpe2 continuous action [noop, -x, +x, -y, +y] in [0, 1]."""
    fx, fy = float(force[0]), float(force[1])
    return np.array([0, max(-fx, 0), max(fx, 0), max(-fy, 0), max(fy, 0)], np.float32)


def copy_world_into(env: pe.VecEnv, world) -> None:
    s = env.state
    for i, agent in enumerate(world.agents):  # mpe2 orders adversaries first, like us
        s.pos[0, i] = agent.state.p_pos
        s.vel[0, i] = agent.state.p_vel
    for j, lm in enumerate(world.landmarks):
        s.landmark_pos[0, j] = lm.state.p_pos
    s.t[:] = 0


@pytest.mark.parametrize(
    "n_pred,n_prey,n_obs",
    [(3, 1, 2), (1, 1, 0), (2, 3, 1), (4, 2, 3), (1, 3, 0), (4, 1, 2)],
)
def test_parity_with_mpe2(n_pred, n_prey, n_obs):
    ref = simple_tag_v3.parallel_env(
        num_good=n_prey, num_adversaries=n_pred, num_obstacles=n_obs,
        max_cycles=25, continuous_actions=True,
    )  # fmt: skip
    rng = np.random.default_rng(n_pred * 100 + n_prey * 10 + n_obs)
    for episode in range(3):
        ref_obs, _ = ref.reset(seed=episode)
        world = ref.unwrapped.world
        env = pe.make("tag", num_envs=1, preset="mpe", num_predators=n_pred, num_prey=n_prey,
                      num_obstacles=n_obs)  # fmt: skip
        copy_world_into(env, world)
        obs = env.observe()
        names = [a.name for a in world.agents]
        teams = ["predator"] * n_pred + ["prey"] * n_prey
        idx = list(range(n_pred)) + list(range(n_prey))
        for i, name in enumerate(names):
            np.testing.assert_allclose(obs[teams[i]][0, idx[i]], ref_obs[name], atol=1e-5)
        for t in range(25):
            # strong random actions push agents into each other and the obstacles
            force = rng.uniform(-1, 1, size=(n_pred + n_prey, 2))
            res = env.step({"predator": force[None, :n_pred], "prey": force[None, n_pred:]})
            ref_obs, ref_rew, ref_term, ref_trunc, _ = ref.step(
                {name: to_mpe2_action(force[i]) for i, name in enumerate(names)}
            )
            final = res.info["final_obs"]
            for i, name in enumerate(names):
                np.testing.assert_allclose(
                    final[teams[i]][0, idx[i]], ref_obs[name], atol=1e-4,
                    err_msg=f"obs of {name} at step {t}",
                )  # fmt: skip
                np.testing.assert_allclose(
                    res.reward[teams[i]][0, idx[i]], ref_rew[name], atol=1e-4,
                    err_msg=f"reward of {name} at step {t}",
                )  # fmt: skip
                assert bool(res.info["truncated"][0]) == ref_trunc[name]
            assert bool(res.done[0]) == (t == 24)
            ref_touches = sum(
                np.linalg.norm(a.state.p_pos - b.state.p_pos) < a.size + b.size
                for a in world.agents if a.adversary for b in world.agents if not b.adversary
            )  # fmt: skip
            assert res.info["touches"][0] == ref_touches
