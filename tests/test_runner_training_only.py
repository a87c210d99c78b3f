"""What only training worlds do: train.spare_fraction (in the first envs one landmark lies
on another in every episode, one agent to spare) and train.scripted_fraction's scripted
opponents; evaluation and simulate (`Runner(training=False)`) never."""

from __future__ import annotations

import numpy as np
import pytest

from predprey.config import ConfigError, config_from_dict
from predprey.runner import Runner

ENV = {"scenario": "spread", "num_envs": 8, "num_agents": 4, "obs": "local", "density": 1.0,
       "episode_length": 5}  # fmt: skip


def _config(fraction, **env):
    return config_from_dict({"env": {**ENV, **env}, "train": {"spare_fraction": fraction}})


def _stacked(lm):  # [E, L, 2] -> [E] whether landmark L-1 lies on landmark 0
    return np.all(lm[:, -1] == lm[:, 0], axis=-1)


def test_the_first_envs_spare_an_agent_in_every_episode_and_the_rest_never():
    runner = Runner(_config(0.25), seed=3)
    env = runner.env
    rng = np.random.default_rng(0)
    for step in range(12):  # two autoresets (5-step episodes)
        expect = np.arange(8) < 2
        assert (_stacked(env.state.landmark_pos) == expect).all(), step
        env.step({"agent": rng.uniform(-1, 1, (8, 4, 2)).astype(np.float32)})
    # the observation sees both copies: two landmark slots at the same place in env 0
    lm = env.state.landmark_pos
    assert np.linalg.norm(lm[0, 0] - lm[0, 3]) == 0 and np.linalg.norm(lm[2, 0] - lm[2, 3]) > 0


def test_simulate_and_evaluation_worlds_are_left_alone():
    cfg = _config(1.0)
    assert not _stacked(Runner(cfg, seed=3, training=False).env.state.landmark_pos).any()
    env = cfg.env.make(num_envs=8, seed=3)  # what evaluate builds
    env.reset(seed=3)
    assert not _stacked(env.state.landmark_pos).any()
    assert _stacked(Runner(cfg, seed=3).env.state.landmark_pos).all()


@pytest.mark.parametrize(
    "env, fraction, message",
    [({"scenario": "tag"}, 0.5, "train.spare_fraction applies only to scenario spread"),
     (ENV, 1.5, "train.spare_fraction must be in \\[0, 1\\]")],
)  # fmt: skip
def test_bad_spare_fraction_is_one_clear_error(env, fraction, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"env": env, "train": {"spare_fraction": fraction}})


def test_simulate_runner_has_no_scripted_opponents():
    """A bug fixed: `simulate` with `--num-envs` ran `train.scripted_fraction`'s scripted
    opponents in its last envs (tag_ppo.yaml: random prey in a quarter of them)."""
    cfg = config_from_dict(
        {"env": {"scenario": "tag", "num_envs": 8},
         "train": {"scripted_fraction": 0.25, "scripted_policy": "random"}}
    )  # fmt: skip
    assert Runner(cfg, seed=0).scripted_envs == 2
    assert Runner(cfg, seed=0, training=False).scripted_envs == 0
