"""What only training worlds do: train.scripted_fraction's scripted opponents; simulate
(`Runner(training=False)`) never."""

from __future__ import annotations

from predprey.config import config_from_dict
from predprey.runner import Runner


def test_simulate_runner_has_no_scripted_opponents():
    """A bug fixed: `simulate` with `--num-envs` ran `train.scripted_fraction`'s scripted
    opponents in its last envs (tag_ppo.yaml: random prey in a quarter of them)."""
    cfg = config_from_dict(
        {"env": {"scenario": "tag", "num_envs": 8},
         "train": {"scripted_fraction": 0.25, "scripted_policy": "random"}}
    )  # fmt: skip
    assert Runner(cfg, seed=0).scripted_envs == 2
    assert Runner(cfg, seed=0, training=False).scripted_envs == 0
