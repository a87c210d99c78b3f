"""Opponent mixing: a fraction of the training envs has one team follow a scripted policy."""

from __future__ import annotations

import numpy as np
import pytest

from predprey.config import ConfigError, load_config
from predprey.runner import Runner
from train_helpers import tiny_config_file


def test_last_envs_follow_the_scripted_policy(tmp_path):
    sets = ["train.scripted_fraction=0.5", "train.scripted_policy=still"]
    cfg = load_config(tiny_config_file(tmp_path), sets)  # 4 envs: the last 2 are scripted
    runner = Runner(cfg, seed=0)
    res = runner.collect(5, noise_std=0.1, rng=np.random.default_rng(0))
    prey = res.transitions["act/prey"].reshape(5, 4, 1, 2)  # [steps, E, n_prey, 2]
    assert np.all(prey[:, 2:] == 0.0)  # still prey: stored actions are the executed ones
    assert np.all(np.abs(prey[:, :2]).sum(-1) > 0)  # the learned prey act (with noise)
    preds = res.transitions["act/predator"].reshape(5, 4, 3, 2)
    assert np.all(np.abs(preds[:, 2:]).sum(-1) > 0)  # the other team is untouched


def test_mixing_errors_name_the_key(tmp_path):
    path = tiny_config_file(tmp_path)
    with pytest.raises(ConfigError, match="train.scripted_fraction"):
        load_config(path, ["train.scripted_fraction=1.5"])
    with pytest.raises(ConfigError, match="train.scripted_policy"):
        load_config(path, ["train.scripted_fraction=0.5", "train.scripted_policy=dance"])
    with pytest.raises(ConfigError, match="train.scripted_team: 'wolves' is not a team of tag"):
        load_config(path, ["train.scripted_fraction=0.5", "train.scripted_team=wolves"])
