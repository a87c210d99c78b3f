"""A two-node Ray cluster on this machine (two raylets): runners land on both nodes and
the run trains through `--address`-style joining."""

from __future__ import annotations

import pytest

from distributed_harness import new_run, tiny_config

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from predprey.build import train  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_runners_spread_over_two_nodes(two_nodes, tmp_path):
    config = tiny_config(2000)
    run = new_run(tmp_path / "run", config)
    result = train(config, run, runners=2, address=two_nodes.address, evals=False)
    assert result["env_steps"] >= 2000 and result["updates"] > 0
    assert len(set(result["runner_nodes"])) == 2
    assert {n["NodeID"] for n in ray.nodes() if n["Alive"]} == set(result["runner_nodes"])
    rows = run.read_metrics()
    for i in range(2):  # (the last window may hold only the learner's final updates)
        assert max(r.get(f"dist/runner_{i}/env_steps_per_s", 0) for r in rows) > 0
    lags = [r["dist/policy_lag"] for r in rows if "dist/policy_lag" in r]
    assert lags and all(lag >= 0 for lag in lags)  # learner version - sampled rows' version
    assert rows[-1]["dist/restarts"] == 0
