"""PPO with `--runners K`: runner actors return rollouts, the learner broadcasts weights each
iteration, and a killed runner is replaced (one local Ray instance for the module)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distributed_harness import new_run
from predprey import checkpoint
from predprey.config import config_from_dict

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(1200)  # a bound for a crowded machine, not an expectation

from predprey.build import build  # noqa: E402
from predprey.distributed.cluster import init_ray  # noqa: E402
from predprey.distributed.onpolicy import RayRolloutSource, _join  # noqa: E402

TINY = {
    "env": {"scenario": "spread", "num_envs": 8, "num_agents": 3},
    "algo": {"name": "ppo", "hidden": [16, 16], "rollout_steps": 13, "epochs": 2,
             "minibatches": 2},
    "train": {"total_env_steps": 416, "eval_every": 208, "eval_episodes": 4, "log_every": 208,
              "checkpoint_every": 1000.0, "record_envs": [0], "record_every": 2,
              "torch_threads": 1},
}  # fmt: skip


@pytest.fixture(scope="module")
def local_ray():
    info = init_ray("", num_cpus=3)
    yield info
    ray.shutdown()


def test_join_keeps_time_major_rows():
    T = 3
    a = {"x": np.arange(T * 2).reshape(T * 2, 1)}  # runner 0: rows (t, e) for e in 0..1
    b = {"x": 100 + np.arange(T * 1).reshape(T, 1)}  # runner 1: one env
    joined = _join([a, b], T)["x"].reshape(T, 3)
    assert joined.tolist() == [[0, 1, 100], [2, 3, 101], [4, 5, 102]]


def test_runners_train_checkpoint_and_replace_a_killed_one(local_ray, tmp_path):
    """Two runners (one killed before its first call): every iteration still has both
    runners' rollouts, the dead one's collected again by its replacement."""
    torch.set_num_threads(1)
    cfg = config_from_dict(TINY)
    run = new_run(tmp_path / "run", cfg)
    trainer = build(cfg, run, runners=2)
    try:
        ray.kill(trainer.source.slots[1]["handle"], no_restart=True)
        result = trainer.run()
    finally:
        trainer.close()
    # 2 runners x 8 envs x 13 steps = 208 env steps per iteration (25-step episodes end)
    assert (result["env_steps"], result["iterations"], result["updates"]) == (416, 2, 8)
    assert result["restarts"] == {"runner": 1} and result["episodes"] == 16
    rows = run.read_metrics()
    assert [r["dist/restarts"] for r in rows if "dist/restarts" in r][0] == 1
    losses = [r for r in rows if "loss/policy/agent" in r]
    assert [r["env_steps"] for r in losses] == [208, 416]
    assert np.isfinite(losses[-1]["return/agent"])
    assert checkpoint.load(run)["env_steps"] == 416
    from predprey.policy import load

    assert load(run.path).act({"agent": np.zeros((3, 14), np.float32)})["agent"].shape == (3, 2)


def test_build_picks_the_ray_rollout_source_for_ppo(local_ray, tmp_path):
    """`predprey train --runners K` with algo.name ppo: OnPolicy over K rollout actors."""
    from predprey.learn.onpolicy import OnPolicy

    cfg = config_from_dict(TINY)
    loop = build(cfg, new_run(tmp_path / "run", cfg), runners=2)
    try:
        assert isinstance(loop.algorithm, OnPolicy)
        assert isinstance(loop.source, RayRolloutSource) and len(loop.source.slots) == 2
    finally:
        loop.close()
