"""Bad scenario parameters and actions raise one ValueError naming the culprit."""

import numpy as np
import pytest

import predprey.env as pe


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("tag", dict(num_prey=0), "num_prey"),
        ("tag", dict(num_predators=0), "num_predators"),
        ("tag", dict(num_obstacles=-1), "num_obstacles"),
        ("tag", dict(predator_size=-0.1), "predator_size"),
        ("tag", dict(prey_size=0.0), "prey_size"),
        ("tag", dict(preset="seed", arena_size=-250), "arena_size"),
        ("tag", dict(preset="seed", capture_radius=-1), "capture_radius"),
        ("tag", dict(preset="seed", remove_caught="yes"), "remove_caught"),
        ("tag", dict(preset="nope"), "preset"),
        ("tag", dict(obs="vision"), "obs"),
        ("tag", dict(speed=3), "speed"),
        ("tag", dict(arena_size=100.0), "arena_size"),  # preset mpe has no box
        ("tag", dict(remove_caught=True), "remove_caught"),
        ("tag", dict(k_prey=2), "k_prey"),  # only for obs local
        ("tag", dict(preset="seed", obs="local", num_rays=8), "num_rays"),
        ("tag", dict(obs="rays", num_rays=0), "num_rays"),
        ("tag", dict(episode_length=1.5), "episode_length"),
        ("spread", dict(num_agents=0), "num_agents"),
        ("spread", dict(agent_size=-1.0), "agent_size"),
        ("spread", dict(local_ratio=2.0), "local_ratio"),
        ("spread", dict(obs="rays"), "obs"),
        ("spread", dict(k_agents=2), "k_agents"),
        ("spread", dict(num_prey=1), "num_prey"),
        ("spread", dict(obs="local", landmark_claims=1), "landmark_claims must be true or false"),
        ("spread", dict(density=0), "density must be a positive number"),
        ("tag", dict(preset="seed", density=1.0), "density applies only to preset 'mpe'"),
        ("tag", dict(obs="local", k_landmarks=-1), "k_landmarks must be an integer >= 0"),
        ("chess", dict(), "chess"),
    ],
)
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        pe.make(name, num_envs=1, **params)


def test_wrong_action_shape_and_keys():
    env = pe.make("tag", num_envs=2)
    with pytest.raises(ValueError, match="predator"):
        env.step({"predator": np.zeros((2, 2, 2)), "prey": np.zeros((2, 1, 2))})
    with pytest.raises(ValueError, match="prey"):
        env.step({"predator": np.zeros((2, 3, 2)), "prey": np.zeros((2, 1, 3))})
    with pytest.raises(ValueError, match="teams"):
        env.step({"predator": np.zeros((2, 3, 2))})


def test_defaults_unchanged():
    env = pe.make("tag")
    assert env.team_sizes == {"predator": 3, "prey": 1}
    assert env.obs_dims == {"predator": 16, "prey": 14}
    assert env.num_envs == 1 and env.episode_length == 25 and env.state.landmark_pos.shape[1] == 2
