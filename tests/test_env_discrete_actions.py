"""Our own worlds in mpe2's discrete action space (`env.discrete_actions: true`): one-hot
moves push as the same full forces, scripted policies pick the nearest move, and the
discrete learners train there."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from predprey.cli import main
from predprey.env import make, scripted
from predprey.env.vec import MOVES, forces_to_choices


@pytest.mark.parametrize("scenario, params", [("tag", {"preset": "mpe"}), ("spread", {})])
def test_a_one_hot_move_steps_like_its_full_force(scenario, params):
    disc = make(scenario, num_envs=3, seed=5, discrete_actions=True, **params)
    cont = make(scenario, num_envs=3, seed=5, **params)
    assert set(disc.act_dims.values()) == {5} and disc.discrete == frozenset(disc.teams)
    rng = np.random.default_rng(0)
    for _ in range(30):  # through an episode end (tag mpe: 25 steps)
        choice = {t: rng.integers(0, 5, (3, n)) for t, n in disc.team_sizes.items()}
        a = disc.step({t: np.eye(5)[c] for t, c in choice.items()})
        b = cont.step({t: MOVES[c] for t, c in choice.items()})
        assert all(np.array_equal(a.obs[t], b.obs[t]) for t in a.obs)
        assert all(np.array_equal(a.reward[t], b.reward[t]) for t in a.reward)


def test_forces_map_to_the_nearest_move_and_zero_to_no_op():
    f = np.array([[0.0, 0.0], [-0.9, 0.2], [0.3, 0.1], [0.1, -0.5], [-0.2, 0.7]])
    assert forces_to_choices(f).argmax(-1).tolist() == [0, 1, 2, 3, 4]


def test_scripted_policies_act_in_the_discrete_space():
    env = make("tag", num_envs=4, seed=0, preset="mpe", discrete_actions=True)
    act = scripted.act("chaser", env, "predator", np.random.default_rng(0))
    assert act.shape == (4, 3, 5) and (act.sum(-1) == 1).all()


@pytest.mark.parametrize(
    "env, algo",
    [
        ({"scenario": "tag", "preset": "mpe", "discrete_actions": True},
         {"hidden": [16, 16], "batch_size": 32, "env_steps_per_update": 4}),
        ({"scenario": "spread", "discrete_actions": True},
         {"name": "ppo", "hidden": [16, 16], "rollout_steps": 8, "minibatches": 2}),
    ],
)  # fmt: skip
def test_discrete_learners_train_in_our_worlds(tmp_path, capsys, env, algo):
    data = {"env": {**env, "num_envs": 4}, "algo": algo,
            "train": {"total_env_steps": 320, "eval_every": 320, "eval_episodes": 4,
                      "log_every": 160, "record_envs": [0], "scripted_fraction": 0.0}}  # fmt: skip
    if algo.get("name") != "ppo":
        data["buffer"] = {"warmup": 64, "capacity": 10000}
        data["train"]["scripted_fraction"] = 0.25  # scripted prey act in one-hot too
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(data))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["env_steps"] == 320 and line["updates"] > 0 and line["eval"]
