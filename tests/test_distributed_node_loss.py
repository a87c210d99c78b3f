"""A worker node lost in the middle of a run: on a simulated three-node cluster (a head and
two worker nodes, three raylets on this machine), the node of one runner is removed once
the run is provably training; its runner is re-placed on a surviving node and the run
completes with every acknowledged row."""

from __future__ import annotations

import dataclasses
import time

import pytest

from distributed_harness import new_run, run_with_fault, tiny_config
from predprey import checkpoint

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from predprey.build import build  # noqa: E402
from predprey.distributed.cluster import init_ray  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

UNBOUNDED = 10**9
AFTER_LOSS = 1500  # env steps the run takes after its runner was re-placed
WATCH_SECONDS = 1200.0  # bound on each wait of the watcher


@pytest.fixture
def three_nodes():
    """Head: one CPU, taken by the learner (the buffer needs none), so runners (one CPU
    each, spread) land on the worker nodes: two CPUs each, room for one more runner."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    init_ray(cluster.address)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def wait(cond) -> None:
    end = time.monotonic() + WATCH_SECONDS
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the run did not get there in time")
        time.sleep(0.05)


def test_lost_node_runners_are_replaced_and_the_run_completes(three_nodes, tmp_path):
    cluster, workers = three_nodes
    config = tiny_config()
    config = config.replace(train=dataclasses.replace(config.train, total_env_steps=UNBOUNDED))
    run = new_run(tmp_path / "run", config)
    trainer = build(config, run, runners=2, evals=False)
    fleet = trainer.source.fleet
    worker_ids = {n.node_id for n in workers}
    assert set(fleet.runner_nodes()) == worker_ids  # one runner on each worker node

    def remove_node(state):
        """Once both runners' first calls are acknowledged (the run trains on both nodes),
        remove runner 1's node; once that runner is re-placed, end AFTER_LOSS env steps
        later. The budget is unbounded, so the loss lands mid-run on any machine."""
        wait(lambda: trainer.env_steps >= 2 * fleet.chunk)
        node_id = fleet.slots[1].node_id
        node = next(n for n in workers if n.node_id == node_id)
        lost = [s.index for s in fleet.slots if s.node_id == node_id]
        state["at_loss"] = trainer.env_steps
        cluster.remove_node(node, allow_graceful=False)
        state["removed"] = (node_id, lost)
        wait(lambda: fleet.restarts["runner"] >= len(lost))
        trainer.total_env_steps = trainer.env_steps + AFTER_LOSS

    result, state = run_with_fault(trainer, remove_node)
    dead, lost = state["removed"]
    assert lost == [1]

    # it went on past the loss, its runner re-placed on the surviving worker node
    assert result["env_steps"] >= state["at_loss"] + AFTER_LOSS
    assert result["restarts"] == {"runner": 1, "buffer": 0, "learner": 0}
    assert set(result["runner_nodes"]) == worker_ids - {dead}
    assert fleet.slots[1].incarnation == 1
    rows = [r for r in run.read_metrics() if "dist/restarts" in r]
    assert rows[-1]["dist/restarts"] == 1 and rows[-1]["env_steps"] > state["at_loss"]

    # no acknowledged row lost
    assert result["lost_rows"] == 0
    payload = checkpoint.load(run)
    buffer = checkpoint.load_buffer(run, payload, capacity=100_000)
    assert buffer.total_added == result["acked_rows"] == result["env_steps"]
    assert payload["env_steps"] == result["env_steps"]
