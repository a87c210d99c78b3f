"""Distributed training survives actors killed with SIGKILL (one local Ray for the module)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from distributed_harness import Killer, actor_pid, new_run, run_while_killing, tiny_config
from predprey import checkpoint

ray = pytest.importorskip("ray")

# A bound, not an expectation: each test takes well under a minute on an idle 2-core machine,
# but a crowded one (load 12 on 2 cores, measured) took over 10 minutes.
pytestmark = pytest.mark.timeout(2400)

from predprey.build import build  # noqa: E402
from predprey.distributed.cluster import init_ray  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    info = init_ray("", num_cpus=4)
    yield info
    ray.shutdown()


UNBOUNDED = 10**9
AFTER_KILL = 1500  # env steps the run takes after the kill before it may end


def train_with_killer(path, config, runners, when, which):
    """Train with an unbounded budget; once `when` holds, SIGKILL `which` and only then let
    the run end, AFTER_KILL env steps later. Returns the run, the trainer and its result."""
    config = config.replace(train=dataclasses.replace(config.train, total_env_steps=UNBOUNDED))
    run = new_run(path, config)
    trainer = build(config, run, runners=runners, evals=False)
    at_kill = {}

    def end_later():
        at_kill["env_steps"] = trainer.env_steps
        trainer.total_env_steps = trainer.env_steps + AFTER_KILL

    def end_now():
        trainer.total_env_steps = 0

    pid = actor_pid(which(trainer))  # before the run: the actor is idle and answers at once
    killer = Killer(lambda: when(trainer, run), pid, end_later, end_now)
    result = run_while_killing(trainer, killer)
    # the kill landed while the run was going: it went on past the kill to its new end
    assert result["env_steps"] >= at_kill["env_steps"] + AFTER_KILL
    return run, trainer, result


def restart_rows(run):
    return [r for r in run.read_metrics() if "dist/restarts" in r]


def assert_buffer_holds_every_acknowledged_row(run, result):
    assert result["lost_rows"] == 0
    payload = checkpoint.load(run)
    buffer = checkpoint.load_buffer(run, payload, capacity=100_000)
    assert buffer.total_added == result["acked_rows"] == result["env_steps"]
    assert payload["env_steps"] == result["env_steps"]


def test_killed_runner_is_replaced_and_the_run_finishes(local_ray, tmp_path):
    config = tiny_config()
    run, trainer, result = train_with_killer(
        tmp_path / "run", config, runners=2,
        when=lambda t, run: t.env_steps >= 1200,
        which=lambda t: t.source.fleet.slots[1].handle,
    )  # fmt: skip
    assert result["restarts"] == {"runner": 1, "buffer": 0, "learner": 0}
    assert restart_rows(run)[-1]["dist/restarts"] == 1
    slot = trainer.source.fleet.slots[1]
    assert slot.incarnation == 1 and slot.version > 0  # the new runner got learned weights
    assert_buffer_holds_every_acknowledged_row(run, result)


def _checkpoint_updates(run) -> int:
    try:
        return int(checkpoint.load(run).get("updates", 0))
    except Exception:  # not written yet
        return 0


def test_killed_learner_is_restored_from_the_checkpoint(local_ray, tmp_path):
    config = tiny_config()
    seen = {}

    def when(t, run):
        seen["updates"] = t.updates
        return _checkpoint_updates(run) > 0 and t.updates >= 20

    run, trainer, result = train_with_killer(
        tmp_path / "run", config, runners=1, when=when, which=lambda t: t.source.fleet.learner
    )
    assert result["restarts"] == {"runner": 0, "buffer": 0, "learner": 1}
    event = next(r for r in restart_rows(run) if r["dist/restarts"] == 1)
    assert 0 < event["updates"] <= seen["updates"]  # back to the checkpoint, not to scratch
    assert result["updates"] > event["updates"]  # and training went on
    assert_buffer_holds_every_acknowledged_row(run, result)


def test_killed_buffer_loses_no_acknowledged_row(local_ray, tmp_path):
    config = tiny_config()

    def when(t, run):
        """Just after a checkpoint (the next is >= 0.5 s away), once the log holds rows."""
        latest = checkpoint.latest_path(run)
        if not latest.is_file() or time.time() - latest.stat().st_mtime > 0.5:
            return False
        return ray.get(t.source.fleet.buffer.stats.remote()).wal_bytes > 0

    run, trainer, result = train_with_killer(
        tmp_path / "run", config, runners=1, when=when, which=lambda t: t.source.fleet.buffer
    )
    assert result["restarts"] == {"runner": 0, "buffer": 1, "learner": 0}
    assert trainer.source.fleet.buffer_stats.replayed_rows > 0  # rows came back from the log
    assert_buffer_holds_every_acknowledged_row(run, result)
