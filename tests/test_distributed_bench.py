"""`predprey bench train --runners 0,1`: one line per runner count with sampling and
training throughput, their ratios, and the per-call costs (a tiny config, short runs)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from distributed_harness import tiny_config

ray = pytest.importorskip("ray")

from predprey.bench.train import scaling  # noqa: E402
from predprey.distributed.cluster import init_ray, local_object_store_bytes  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    info = init_ray("", num_cpus=3)
    yield info
    ray.shutdown()


def test_local_instance_has_a_small_object_store(local_ray):
    """Not Ray's default (30% of RAM): a store sized to what is in flight gets reused, so
    puts land on pages the putting process has mapped already."""
    store = ray.cluster_resources()["object_store_memory"]
    assert store == pytest.approx(local_object_store_bytes(3), rel=0.01)
    assert store < 1 << 30


def test_scaling_lines(local_ray):
    config = tiny_config(10**9, distributed={"steps_per_call": 10}, train={"record_envs": []})
    args = argparse.Namespace(
        runners=[0, 1], repeats=1, seconds=3.0, sample_seconds=1.0, config="tiny"
    )
    zero, one, costs = scaling(config, args)
    assert (zero["runners"], one["runners"]) == (0, 1)
    for line in (zero, one):
        assert line["sampling_env_steps_per_s"] > 0
        assert line["train_env_steps_per_s"] > 0 and line["train_updates_per_s"] > 0
        # the rate limit keeps the config's update-to-data ratio (20 env steps per update)
        ratio = line["train_env_steps_per_s"] / line["train_updates_per_s"]
        assert 10 < ratio < 40, line
    assert one["sampling_vs_single_process"] == pytest.approx(
        one["sampling_env_steps_per_s"] / zero["sampling_env_steps_per_s"]
    )
    assert 0 < one["sampling_busy"]["runner"] <= 1.05
    assert set(one["sampling_cores"]) == {"runners", "buffer", "driver"}
    assert one["sampling_cpu_ms_per_1k_steps"]["runners"] > 0
    assert zero["sampling_cpu_ms_per_1k_steps"]["process"] > 0
    assert costs["bench"] == "train_call_costs"
    assert costs["transitions_rows"] == 10 * 8  # steps per call x envs per runner
    assert costs["transitions_bytes"] > 0 and costs["weights_bytes"] > 0
    assert costs["transitions_push_ms"] > 0 and costs["weights_pull_ms"] > 0


def test_a_runner_actors_actions_do_not_replay_its_envs_random_stream(local_ray):
    """Regression: the runner actor seeded its env and its action generator with the same
    seed, so env 0's first warm-up actions were its predators' starting positions."""
    from predprey.distributed.actors import RunnerActor

    cfg = tiny_config(env={"scenario": "tag", "preset": "mpe"})  # positions: obs[..., 2:4]
    runner = RunnerActor.remote(cfg, 5, False, 1)
    transitions, _ = runner.collect.remote(1, 0.1, True, 0)
    t = ray.get(transitions, timeout=120)
    positions = t["obs/predator"][0, :, 2:4]  # env 0's predators' starting positions [3, 2]
    assert not np.allclose(t["act/predator"][0], positions, atol=1e-3)
    ray.kill(runner)
