"""PPO on the one training loop: the run directory, exact resume, policy.load, the CLI, and
a short seeded run that learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from predprey import checkpoint
from predprey.build import build
from predprey.config import config_from_dict, dump_config, load_config
from predprey.evaluate import training_evals
from predprey.learn.ppo import PPOLearner
from predprey.rundir import RunDir
from train_helpers import json_line, predprey

VOLATILE = ("time", "perf/")
TINY = {
    "env": {"scenario": "tag", "num_envs": 8, "preset": "mpe"},
    "algo": {"name": "ppo", "hidden": [16, 16], "rollout_steps": 8, "epochs": 2,
             "minibatches": 2, "separation": ["agent", "team", "group"], "group_size": 2,
             "critic": "central"},
    "train": {"seed": 0, "total_env_steps": 256, "eval_every": 128, "eval_episodes": 8,
              "log_every": 64, "checkpoint_every": 1000.0, "record_every": 3,
              "record_envs": [0, 1], "torch_threads": 1},
}  # fmt: skip


def _config(**train):
    data = {k: dict(v) for k, v in TINY.items()}
    data["train"].update(train)
    return config_from_dict(data)


def _train(cfg, path, resume=False):
    torch.set_num_threads(1)
    run = RunDir(path)
    if not resume:
        run.create()
        dump_config(cfg, run.config_path)
    return build(cfg, run, resume=resume).run()


def _stable(rows):
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppo") / "run"
    result = _train(_config(), path)
    return RunDir(path), result


def test_run_directory_metrics_and_checkpoint(tiny_run):
    run, result = tiny_run
    # 4 iterations of 8 envs x 8 steps; 2 epochs x 2 minibatches each
    assert (result["env_steps"], result["updates"], result["iterations"]) == (256, 16, 4)
    rows = [r for r in run.read_metrics() if "loss/policy/predator" in r]
    assert [r["env_steps"] for r in rows] == [64, 128, 192, 256]
    for team in ("predator", "prey"):
        for key in ("loss/policy", "loss/value", "entropy", "approx_kl", "clip_frac",
                    "explained_variance", "return"):  # fmt: skip
            assert math.isfinite(rows[-1][f"{key}/{team}"]), (key, team)
    evals = [r for r in run.read_metrics() if "eval/pred_touches_v_evader" in r]
    assert [r["env_steps"] for r in evals] == [128, 256]
    assert list(run.tb_dir.glob("events.out.tfevents.*"))
    payload = checkpoint.load(run)
    assert payload["env_steps"] == 256 and payload["buffer_file"] is None
    assert set(checkpoint.load_best(run)) == {"predator", "prey"}


def test_resume_continues_exactly(tiny_run, tmp_path):
    """Stop after 2 iterations, resume to 4: same weights and metrics as without a stop."""
    run, _ = tiny_run
    _train(_config(total_env_steps=128), tmp_path / "split")
    assert checkpoint.load(RunDir(tmp_path / "split"))["env_steps"] == 128
    result = _train(_config(), tmp_path / "split", resume=True)
    assert result["env_steps"] == 256
    split = RunDir(tmp_path / "split")
    assert _stable(split.read_metrics()) == _stable(run.read_metrics())
    whole_state, split_state = (checkpoint.load(r)["learner"] for r in (run, split))
    for part in ("actors", "critics", "log_std"):
        for team, sd in whole_state[part].items():
            other = split_state[part][team]
            if isinstance(sd, torch.Tensor):
                assert torch.equal(sd, other), (part, team)
            else:
                assert all(torch.equal(v, other[k]) for k, v in sd.items()), (part, team)


def test_policy_load_acts_with_the_mean(tiny_run):
    from predprey.policy import load

    run, _ = tiny_run
    policy = load(run.path)
    learner = PPOLearner(policy.teams.values(), policy.config.algo)
    learner.load_state_dict(checkpoint.load(run)["learner"])
    env = policy.config.env.make(num_envs=3, seed=4)
    obs = env.observe()
    got, want = policy.act(obs), learner.act(obs)
    for team in ("predator", "prey"):
        np.testing.assert_array_equal(got[team], want[team])
        assert np.abs(got[team]).max() <= 1.0
    assert load(run.path, "best").act(obs)["predator"].shape == (3, 3, 2)


def test_cli_trains_evaluates_and_refuses_the_http_buffer(tmp_path, monkeypatch, capsys):
    """Train and evaluate through the CLI; --buffer-url (off-policy data) is refused."""
    cfg = tmp_path / "ppo.yaml"
    data = {k: dict(v) for k, v in TINY.items()}
    data["env"] = {"scenario": "spread", "num_envs": 8, "num_agents": 3}
    cfg.write_text(yaml.safe_dump(data))
    run = str(tmp_path / "r")
    out = json_line(predprey("train", "--config", str(cfg), "--out", run, "--quiet"))
    assert out["env_steps"] == 256
    ev = predprey("evaluate", run, "--episodes", "4")
    assert ev.returncode == 0, ev.stderr
    import predprey.service.remote_train as remote_train
    from predprey.cli import main

    monkeypatch.setattr(remote_train, "connect", lambda *a, **k: object())
    args = ["train", "--config", str(cfg), "--out", str(tmp_path / "r2")]
    assert main([*args, "--buffer-url", "http://127.0.0.1:9"]) == 2
    assert "ppo learns on-policy" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_ppo_learns_spread(tmp_path):
    """A seeded ~100k-step run (about 15 s on one core) clearly beats the untrained policy."""
    cfg = load_config(
        "configs/spread_ppo.yaml",
        ["env.num_envs=256", "algo.rollout_steps=25", "algo.epochs=2", "algo.minibatches=2",
         "algo.actor_lr=3e-3", "algo.critic_lr=3e-3", "train.total_env_steps=102400",
         "train.eval_every=1000000000", "train.eval_episodes=200"],
    )  # fmt: skip
    torch.set_num_threads(1)
    run = RunDir(tmp_path / "run")
    run.create()
    trainer = build(cfg, run, checkpoints=False)
    before = training_evals(cfg, trainer.source.learner, 200, 12345)
    after = trainer.run()["eval"]
    gain = after["eval/return/agent"] - before["eval/return/agent"]
    assert gain > 3.0, (before, after)  # return per agent over 25 steps; untrained ~ -27
    assert after["eval/landmark_dist"] < before["eval/landmark_dist"] - 0.1


def test_resume_refuses_a_maddpg_checkpoint(tiny_run, tmp_path):
    """A run trained by another learner is a clear error, not a traceback."""
    from predprey.rundir import RunDirError

    run, _ = tiny_run
    payload = checkpoint.load(run)
    payload["learner"] = {k: v for k, v in payload["learner"].items() if k != "log_std"}
    other = RunDir(tmp_path / "other").create()
    checkpoint.save(other, payload)
    with pytest.raises(RunDirError, match="lacks \\['log_std'\\]"):
        build(_config(), other, resume=True)


def test_anneal_lr_falls_linearly_over_the_env_step_budget(tmp_path, monkeypatch):
    """`algo.anneal_lr`: before each iteration the learning rates are set to (1 - the
    fraction of the budget spent) x actor_lr / critic_lr; 256 env steps in iterations of
    64 give 1, 3/4, 1/2, 1/4, and the optimizers hold the last of them."""
    scales = []
    set_scale = PPOLearner.set_lr_scale
    monkeypatch.setattr(
        PPOLearner, "set_lr_scale", lambda self, s: (scales.append(s), set_scale(self, s))[1]
    )
    data = {k: dict(v) for k, v in TINY.items()}
    data["algo"].update(anneal_lr=True, actor_lr=2e-3, critic_lr=1e-3)
    path = tmp_path / "run"
    _train(config_from_dict(data), path)
    assert scales == [1.0, 0.75, 0.5, 0.25]
    payload = checkpoint.load(RunDir(path))
    opt = {k: v for k, v in payload.items() if k != "format"}
    found = [g["lr"] for g in _find(opt, "param_groups")]
    assert found and sorted(found) == pytest.approx([0.25e-3, 0.5e-3])  # critic, actor
    data["algo"]["anneal_lr"] = False  # off: the rates are never touched
    scales.clear()
    _train(config_from_dict(data), tmp_path / "off")
    assert scales == []


def test_anneal_lr_over_a_time_budget_reaches_zero_by_its_end():
    """With a time budget the fraction is the budget's seconds spent (whichever is further)."""
    import time

    from predprey.loop import TrainLoop

    loop = TrainLoop.__new__(TrainLoop)
    loop.total_env_steps, loop.time_budget = 10**9, 10.0
    loop.source = type("S", (), {"inserted": 0})()
    loop.started = time.perf_counter() - 5.0
    assert 0.5 <= loop.fraction_done() < 0.6
    loop.started -= 100.0
    assert loop.fraction_done() == 1.0
    loop.source.inserted = 10**9 // 4
    loop.time_budget = 0.0  # no time budget: env steps alone
    assert loop.fraction_done() == 0.25


def _find(tree, key):
    """Every value under `key` in nested dicts (the optimizers' param_groups)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from (v if k == key else _find(v, key))
