"""Train on 4, run on 80: a shared policy on local observations acts at any number of agents;
per-agent networks and `mpe` observations are told apart with a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from predprey import policy as policy_mod
from predprey.build import build
from predprey.cli import main
from predprey.config import ConfigError, config_from_dict, dump_config, load_config
from predprey.learn.spec import TeamSpec
from predprey.rundir import RunDir
from train_helpers import tiny_config_file

SPREAD = {"scenario": "spread", "num_envs": 4, "obs": "local", "num_agents": 4,
          "num_landmarks": 4, "density": 1.0}  # fmt: skip
TAG = {"scenario": "tag", "num_envs": 4, "obs": "local", "num_predators": 2, "num_prey": 1,
       "num_obstacles": 1, "density": 1.0}  # fmt: skip


def train_tiny(tmp, name, env, algo):
    torch.set_num_threads(1)
    (tmp / name).mkdir()
    data = yaml.safe_load(tiny_config_file(tmp / name, train={"total_env_steps": 400}).read_text())
    data["env"], data["algo"] = env, {**data["algo"], **algo}
    cfg = config_from_dict(data)
    run = RunDir(tmp / name / "run").create()
    dump_config(cfg, run.config_path)
    build(cfg, run).run()
    return run


@pytest.fixture(scope="module")
def spread_run(tmp_path_factory):
    """Shared actor, local critic (DDPG per agent), 4 agents."""
    tmp = tmp_path_factory.mktemp("transfer")
    return train_tiny(tmp, "spread", SPREAD, {"share_params": True, "critic": "local"})


@pytest.fixture(scope="module")
def per_agent_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transfer")
    return train_tiny(tmp, "tag", TAG, {"share_params": False})


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_shared_policy_acts_for_any_number_of_agents(spread_run):
    p4 = policy_mod.load(spread_run.path)
    p80 = policy_mod.load(spread_run.path, env=["num_agents=80", "env.num_landmarks=80"])
    assert p80.config.env.params["num_agents"] == 80
    env = p80.config.env.make(num_envs=3, seed=1)
    assert env.bodies.arena[1] == pytest.approx(2 * 0.5 * np.sqrt(80))  # density held
    obs = env.reset()["agent"]  # [3, 80, d]
    a = p80.act({"agent": obs})["agent"]
    assert a.shape == (3, 80, 2) and np.abs(a).max() <= 1
    # the one network, row by row: the N=4 policy on the same rows in groups of 4 agrees
    rows = p4.act({"agent": obs.reshape(60, 4, -1)})["agent"].reshape(3, 80, 2)
    np.testing.assert_allclose(a, rows, atol=1e-6)
    assert p4.act({"agent": obs[0, :7]})["agent"].shape == (7, 2)  # any N', one world


def test_evaluate_and_simulate_at_80(spread_run, capsys):
    args = ("--set", "env.num_agents=80", "--set", "env.num_landmarks=80")
    code, out, err = cli(capsys, "evaluate", str(spread_run.path), "--episodes", "3", *args)
    assert code == 0, err
    line = json.loads(out)
    assert line["env"] == {"num_agents": 80, "num_landmarks": 80} and line["episodes"] == 3
    assert 0 <= line["coverage"] <= 1 and line["landmark_dist"] > 0
    assert line["collisions_per_agent_step"] >= 0 and line["reward_per_agent_step"] < 0
    code, out, err = cli(capsys, "simulate", str(spread_run.path), *args)
    assert code == 0, err
    path = json.loads(out)["paths"][0]
    assert np.load(path, allow_pickle=True)["pos"].shape[1:] == (80, 2)


def test_animate_plays_a_new_episode_at_another_size(spread_run, capsys, tmp_path):
    out = tmp_path / "n12.gif"
    code, stdout, err = cli(capsys, "animate", str(spread_run.path), "--set",
                            "env.num_agents=12", "--set", "env.num_landmarks=12", "--out",
                            str(out))  # fmt: skip
    assert code == 0, err
    assert out.stat().st_size > 1000 and stdout.strip() == str(out)
    code, _, err = cli(capsys, "animate", str(spread_run.path))
    assert code == 2 and "--env-index is required" in err


def test_per_agent_networks_refuse_other_team_sizes(per_agent_run, capsys):
    code, _, err = cli(capsys, "evaluate", str(per_agent_run.path), "--prey", "evader",
                       "--episodes", "2", "--set", "env.num_predators=12")  # fmt: skip
    assert code == 2 and "share_params" in err and "12" in err
    # the same sizes in a bigger world (another density) are fine
    code, out, err = cli(capsys, "evaluate", str(per_agent_run.path), "--prey", "evader",
                         "--episodes", "2", "--set", "env.density=0.5")  # fmt: skip
    assert code == 0, err
    assert "touches_per_prey_step" in json.loads(out)
    p = policy_mod.load(per_agent_run.path)
    with pytest.raises(ValueError, match="share_params"):
        p.act({"predator": np.zeros((5, p.teams["predator"].obs_dim))})


def test_other_observation_sizes_and_sections_are_refused(spread_run):
    with pytest.raises(ConfigError, match="only env.KEY=VALUE"):
        policy_mod.load(spread_run.path, env=["algo.hidden=[8]"])
    with pytest.raises(ConfigError, match="k_\\* slots"):
        policy_mod.load(spread_run.path, env=["k_landmarks=2"])
    cfg = load_config(None, ["env.scenario=spread", "env.num_agents=5", "algo.share_params=true"])
    trained = (TeamSpec("agent", 4, 4 + 2 * 4 + 2 * 3),)  # mpe obs of 4 agents
    with pytest.raises(ConfigError, match="obs: default"):
        policy_mod.check_transfer(trained, cfg)
