"""`predprey evaluate`, `predprey simulate` and `predprey.policy.load` on a tiny trained run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import predprey.env as pe
from predprey import policy as policy_mod
from predprey.build import build
from predprey.cli import main
from predprey.config import load_config
from predprey.rundir import RunDir, RunDirError, load_episode
from train_helpers import tiny_config_file


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalrun")
    torch.set_num_threads(1)
    cfg = load_config(tiny_config_file(tmp, train={"total_env_steps": 400}))
    run = RunDir(tmp / "run").create()
    from predprey.config import dump_config

    dump_config(cfg, run.config_path)
    build(cfg, run).run()
    return run


def cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_prints_one_json_line(run_dir, capsys):
    args = ("evaluate", str(run_dir.path), "--prey", "evader", "--episodes", "12", "--seed", "5")
    code, out, _ = cli(capsys, *args)
    assert code == 0 and len(out.strip().splitlines()) == 1
    line = json.loads(out)
    assert line["predator"] == "learned" and line["prey"] == "evader"
    assert line["episodes"] == 12 and line["episode_length"] == 25.0
    t = line["touches_per_episode"]
    assert t["mean"] >= 0 and math.isfinite(t["ci95"])
    assert set(line["returns"]) == {"predator", "prey"}
    assert json.loads(cli(capsys, *args)[1]) == line  # same seed, same answer
    best = json.loads(cli(capsys, *args, "--policy", "best")[1])
    assert best["policy"] == "best" and best["episodes"] == 12


def test_scripted_matchups_tell_teams_apart(run_dir, capsys):
    """Chasers touch still prey far more often than random predators do."""
    common = ("evaluate", str(run_dir.path), "--episodes", "40", "--prey", "still")
    chase = json.loads(cli(capsys, *common, "--predators", "chaser")[1])
    rand = json.loads(cli(capsys, *common, "--predators", "random")[1])
    assert chase["touches_per_episode"]["mean"] > rand["touches_per_episode"]["mean"] + 1.0
    assert chase["returns"]["predator"] > rand["returns"]["predator"]


def test_evaluate_errors(run_dir, capsys, tmp_path):
    code, _, err = cli(capsys, "evaluate", str(tmp_path / "missing"))
    assert code == 2 and "run directory not found" in err
    code, _, err = cli(capsys, "evaluate", str(run_dir.path), "--episodes", "0")
    assert code == 2 and "--episodes" in err
    with pytest.raises(SystemExit):  # argparse rejects an unknown opponent
        main(["evaluate", str(run_dir.path), "--prey", "chaser"])


def test_simulate_writes_trajectories(run_dir, capsys):
    args = ("simulate", str(run_dir.path), "--seed", "7", "--episodes", "2", "--env-index", "2",
            "--num-envs", "3")  # fmt: skip
    code, out, _ = cli(capsys, *args)
    summary = json.loads(out)
    assert code == 0 and summary["episodes"] == 2 and len(summary["paths"]) == 2
    refs = run_dir.episodes("simulate")
    assert [(r.episode, r.env_index) for r in refs] == [(0, 2), (1, 2)]
    ep = load_episode(refs[0].path)
    assert ep["meta"]["source"] == "simulate" and ep["pos"].shape == (26, 4, 2)
    assert int(ep["touches"].sum()) == summary["recorded_touches"][0]
    json.loads(cli(capsys, *args)[1])  # a second simulation is numbered after the first
    assert [r.episode for r in run_dir.episodes("simulate")] == [0, 1, 2, 3]
    code, _, err = cli(capsys, "simulate", str(run_dir.path), "--env-index", "4", "--num-envs", "2")
    assert code == 2 and "--env-index" in err


def test_policy_load_acts_on_single_and_batched_observations(run_dir):
    policy = policy_mod.load(run_dir.path)
    rng = np.random.default_rng(0)
    obs = {"predator": rng.normal(size=(5, 3, 16)), "prey": rng.normal(size=(5, 1, 14))}
    batched = policy.act(obs)
    assert batched["predator"].shape == (5, 3, 2) and batched["prey"].shape == (5, 1, 2)
    assert all(np.abs(a).max() <= 1.0 for a in batched.values())
    single = policy.act({"predator": obs["predator"][2]})  # one world, one team
    assert set(single) == {"predator"}
    np.testing.assert_allclose(single["predator"], batched["predator"][2], atol=1e-6)
    noisy = policy.act(obs, deterministic=False, rng=np.random.default_rng(1))
    assert not np.allclose(noisy["predator"], batched["predator"])
    with pytest.raises(ValueError, match="predator"):
        policy.act({"predator": np.zeros((3, 15))})
    with pytest.raises(RunDirError):
        policy_mod.load(run_dir.path / "nope")


def test_policy_drives_mpe2_simple_tag(run_dir):
    simple_tag_v3 = pytest.importorskip("mpe2.simple_tag_v3")
    policy = policy_mod.load(run_dir.path)
    env = simple_tag_v3.parallel_env(max_cycles=25, continuous_actions=True)
    obs, _ = env.reset(seed=0)
    preds = [f"adversary_{i}" for i in range(3)]
    steps = 0
    while env.agents:
        forces = policy.act(
            {"predator": np.stack([obs[a] for a in preds]), "prey": np.stack([obs["agent_0"]])}
        )  # {"predator": [3, 2], "prey": [1, 2]}
        by_agent = dict(
            zip([*preds, "agent_0"], [*forces["predator"], *forces["prey"]], strict=True)
        )
        actions = {
            a: np.array([0, max(-f[0], 0), max(f[0], 0), max(-f[1], 0), max(f[1], 0)], np.float32)
            for a, f in by_agent.items()
        }  # force -> mpe2's [noop, -x, +x, -y, +y]
        obs, rewards, *_ = env.step(actions)
        assert all(np.isfinite(r) for r in rewards.values())
        steps += 1
    assert steps == 25


def test_evaluation_noise_is_independent_of_the_starting_positions():
    """Regression: evaluation seeded the env and the scripted policies' generator with the
    same seed, so env 0's first random actions replayed its predators' starting positions
    (correlation ~0.7 over seeds; independent streams give ~0)."""
    from predprey.evaluate import run_episodes

    class FirstStep:  # records the reset observation and the first actions
        def __init__(self, env):
            self.env, self.first = env, None

        def __getattr__(self, name):
            return getattr(self.env, name)

        def reset(self, seed=None):
            self.obs = self.env.reset(seed=seed)
            return self.obs

        def step(self, act):
            if self.first is None:
                self.first = act
            return self.env.step(act)

    pos, act = [], []
    for seed in range(200):
        env = FirstStep(pe.make("tag", num_envs=1, seed=0))
        run_episodes(env, {"predator": "random", "prey": "random"}, None, 1, seed)
        pos.append(env.obs["predator"][0, 0, 2])  # predator 0's x at the start
        act.append(env.first["predator"][0, 0, 0])  # its first x action
    assert abs(np.corrcoef(pos, act)[0, 1]) < 0.3
