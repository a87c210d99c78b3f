"""The PettingZoo ParallelEnv wrapper passes PettingZoo's own API test."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from predprey.env.pettingzoo import parallel_env


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(obs="local", num_predators=2, num_prey=3),
        dict(preset="seed"),
        dict(preset="seed", remove_caught=True, num_prey=3),
        dict(name="spread", num_agents=4),
    ],
)
def test_parallel_api(params):
    parallel_api_test(parallel_env(**params), num_cycles=300)


def test_agents_spaces_and_a_step():
    env = parallel_env("tag", seed=0)
    assert env.possible_agents == ["predator_0", "predator_1", "predator_2", "prey_0"]
    obs, infos = env.reset(seed=1)
    assert obs["predator_0"].shape == (16,) and obs["prey_0"].shape == (14,)
    assert env.observation_space("prey_0").contains(obs["prey_0"])
    assert env.action_space("predator_0").shape == (2,)
    obs, rew, term, trunc, _ = env.step({a: np.ones(2, np.float32) for a in env.agents})
    assert set(obs) == set(rew) == set(term) == set(trunc) == set(env.possible_agents)
    with pytest.raises(ValueError, match="predator_0"):
        env.step({"predator_0": np.ones(3)})


def test_caught_prey_are_terminated_and_leave_the_agents():
    env = parallel_env("tag", preset="seed", num_predators=1, num_prey=2, remove_caught=True)
    env.reset()
    s = env.vec.state
    s.pos[0] = [[100.0, 100.0], [105.0, 100.0], [200.0, 200.0]]
    s.vel[:] = 0.0
    _, rew, term, trunc, _ = env.step({})
    assert term == {"predator_0": False, "prey_0": True, "prey_1": False}
    assert rew["prey_0"] < -9
    assert env.agents == ["predator_0", "prey_1"]
    for _ in range(200):
        obs, _, term, trunc, _ = env.step({a: np.zeros(2) for a in env.agents})
        assert "prey_0" not in obs
        if not env.agents:
            break
    assert not env.agents and (all(term.values()) or all(trunc.values()))
