"""Helpers for the distributed tests: tiny configs and killing actors with SIGKILL."""

from __future__ import annotations

import os
import signal
import threading
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from predprey.config import config_from_dict, dump_config  # noqa: E402
from predprey.rundir import RunDir  # noqa: E402


def tiny_config(total_env_steps: int = 3000, **sections):
    """A config that trains in seconds: 8 envs per runner, a 32x32 MLP, batch 64."""
    data = {
        "env": {"num_envs": 8},
        "algo": {"batch_size": 64, "hidden": [32, 32], "env_steps_per_update": 20},
        "buffer": {"capacity": 20000, "warmup": 400},
        "train": {
            "total_env_steps": total_env_steps,
            "log_every": 500,
            "eval_every": 10**9,
            "eval_episodes": 4,
            "checkpoint_every": 1.0,
            "record_envs": [0],
            "record_every": 10,
        },
        "distributed": {"steps_per_call": 25},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


def new_run(path, config) -> RunDir:
    run = RunDir(path).create()
    dump_config(config, run.config_path)
    return run


def actor_pid(handle, timeout: float = 600.0) -> int:
    """The pid of a Ray actor's process (asked while the actor is idle: a busy actor answers
    only after its running call, which on a crowded machine can take minutes)."""
    import ray

    return ray.get(handle.pid.remote(), timeout=timeout)


class Killer(threading.Thread):
    """Once `when()` is true, SIGKILL process `pid` (polled, bounded in time), then call
    `after()`. The run it watches must be unable to end on its own (an unbounded env-step
    budget): `after` sets the real end, so the kill lands mid-run on any machine, however
    fast or slow. If the kill never lands (error or timeout), `give_up()` ends the run and
    the test fails on `killed_pid is None`."""

    def __init__(self, when, pid: int, after, give_up, timeout=1200.0):
        super().__init__(daemon=True)
        self.when, self.pid, self.after, self.give_up = when, pid, after, give_up
        self.timeout = timeout
        self.killed_pid: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        end = time.monotonic() + self.timeout
        try:
            while time.monotonic() < end:
                if self.when():
                    os.kill(self.pid, signal.SIGKILL)
                    self.killed_pid = self.pid
                    self.after()
                    return
                time.sleep(0.05)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            if self.killed_pid is None:
                self.give_up()


def run_with_fault(trainer, fault) -> tuple[dict, dict]:
    """Run `trainer` while `fault(state)` runs in a thread: it waits for its moment, injects
    the fault and sets the run's new end (the runs have unbounded budgets, so the fault
    lands mid-run however fast or slow the machine). If it raises, the run ends at once and
    the test fails. The trainer's actors are released whatever happens."""
    state: dict = {}

    def target() -> None:
        try:
            fault(state)
        except BaseException as e:  # reported below
            state["error"] = e
            trainer.total_env_steps = 0

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        result = trainer.run()
    finally:
        trainer.close()
    thread.join(5)
    assert "error" not in state, state["error"]
    return result, state


def run_while_killing(trainer, killer: Killer) -> dict:
    """Run a Ray trainer while `killer` waits for its moment and kills; the kill must have
    landed."""
    result, _ = run_with_fault(trainer, lambda state: killer.run())
    assert killer.error is None and killer.killed_pid is not None, killer.error
    return result
