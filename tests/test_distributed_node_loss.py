"""A worker node lost in the middle of a run: on a simulated three-node cluster (a head and
two worker nodes, three raylets on this machine), the node of one runner is removed once
the run is provably training; its runner is re-placed on a surviving node and the run
completes with every acknowledged row."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from distributed_harness import new_run, tiny_config
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


class NodeRemover(threading.Thread):
    """Once the run has inserted rows from its runners, remove the worker node of runner 1;
    once the run has re-placed that runner, let it end AFTER_LOSS env steps later. The run
    cannot end before (unbounded budget), so the loss lands mid-run however fast or slow
    the machine; if it never does, the run is ended and the test fails."""

    def __init__(self, cluster, workers, trainer):
        super().__init__(daemon=True)
        self.cluster, self.workers, self.trainer = cluster, workers, trainer
        self.removed, self.at_loss, self.error = None, None, None

    def _wait(self, cond) -> None:
        end = time.monotonic() + WATCH_SECONDS
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the run did not get there in time")
            time.sleep(0.05)

    def run(self) -> None:
        t = self.trainer
        try:
            # both runners' first calls acknowledged: the run is training on both nodes
            self._wait(lambda: t.env_steps >= 2 * t.source.fleet.chunk)
            node_id = t.source.fleet.slots[1].node_id
            node = next(n for n in self.workers if n.node_id == node_id)
            lost = [s.index for s in t.source.fleet.slots if s.node_id == node_id]
            self.at_loss = t.env_steps
            self.cluster.remove_node(node, allow_graceful=False)
            self.removed = (node_id, lost)
            self._wait(lambda: t.source.fleet.restarts["runner"] >= len(lost))
            t.total_env_steps = t.env_steps + AFTER_LOSS
        except BaseException as e:  # reported by the test
            self.error = e
            t.total_env_steps = 0


def test_lost_node_runners_are_replaced_and_the_run_completes(three_nodes, tmp_path):
    cluster, workers = three_nodes
    config = tiny_config()
    config = config.replace(train=dataclasses.replace(config.train, total_env_steps=UNBOUNDED))
    run = new_run(tmp_path / "run", config)
    trainer = build(config, run, runners=2, evals=False)
    worker_ids = {n.node_id for n in workers}
    assert set(trainer.source.fleet.runner_nodes()) == worker_ids  # one runner on each worker node

    remover = NodeRemover(cluster, workers, trainer)
    remover.start()
    try:
        result = trainer.run()
    finally:
        trainer.close()
    remover.join(5)
    assert remover.error is None and remover.removed is not None, remover.error
    dead, lost = remover.removed
    assert lost == [1]

    # it went on past the loss, its runner re-placed on the surviving worker node
    assert result["env_steps"] >= remover.at_loss + AFTER_LOSS
    assert result["restarts"] == {"runner": 1, "buffer": 0, "learner": 0}
    assert set(result["runner_nodes"]) == worker_ids - {dead}
    assert trainer.source.fleet.slots[1].incarnation == 1
    rows = [r for r in run.read_metrics() if "dist/restarts" in r]
    assert rows[-1]["dist/restarts"] == 1 and rows[-1]["env_steps"] > remover.at_loss

    # no acknowledged row lost
    assert result["lost_rows"] == 0
    payload = checkpoint.load(run)
    buffer = checkpoint.load_buffer(run, payload, capacity=100_000)
    assert buffer.total_added == result["acked_rows"] == result["env_steps"]
    assert payload["env_steps"] == result["env_steps"]
