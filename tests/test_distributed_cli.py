"""`predprey train --runners K`: a driver killed with SIGKILL leaves a run that `--resume`
finishes (each command starts and stops its own local Ray)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from distributed_harness import tiny_config
from predprey import checkpoint
from predprey.config import dump_config
from predprey.rundir import RunDir

pytest.importorskip("ray")

UNBOUNDED = 10**9  # the first run cannot end by itself: the kill lands mid-run on any machine
AFTER_KILL = 5000  # env steps the resumed run takes past the checkpoint it resumes from


def predprey(*args: str) -> list[str]:
    return [sys.executable, "-m", "predprey.cli", "train", *args, "--quiet"]


def wait_for(condition, timeout: float, proc: subprocess.Popen) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited early: {proc.communicate()}")
        time.sleep(0.1)
    pytest.fail("condition not reached in time")


def checkpoint_steps(run: RunDir) -> int:
    try:
        return int(checkpoint.load(run)["env_steps"])
    except Exception:  # not written yet
        return 0


@pytest.mark.timeout(2400)  # a bound: under a minute idle, far longer on a crowded machine
def test_killed_driver_run_resumes(tmp_path):
    config_path = tmp_path / "tiny.yaml"
    config = tiny_config(UNBOUNDED, train={"checkpoint_every": 0.5, "eval_every": 1000})
    dump_config(config, config_path)
    run = RunDir(tmp_path / "run")
    cmd = predprey("--config", str(config_path), "--out", str(run.path), "--runners", "2")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for(lambda: checkpoint_steps(run) >= 1000, 900, proc)  # a bound for crowded machines
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        proc.communicate()
    at_kill = checkpoint_steps(run)
    assert at_kill >= 1000
    total = at_kill + AFTER_KILL

    end = f"train.total_env_steps={total}"
    done = subprocess.run(
        predprey("--resume", str(run.path), "--runners", "2", "--set", end),
        capture_output=True, text=True, timeout=1200, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["env_steps"] >= total
    payload = checkpoint.load(run)
    assert payload["env_steps"] == summary["env_steps"]
    assert payload["config"]["distributed"]["runners"] == 2
    steps = [r["env_steps"] for r in run.read_metrics() if "perf/env_steps_per_s" in r]
    assert steps == sorted(steps) and steps[-1] >= total  # one history, no rewound rows
    times = [r["time"] for r in run.read_metrics()]
    assert times == sorted(times)  # the clock continues across the crash
    assert_best_snapshots_match_the_evals(run)


def assert_best_snapshots_match_the_evals(run: RunDir) -> None:
    """best.pt holds each team's best-scoring evaluation in the run's metrics (the first of
    ties), across the crash, and `--policy best` loads those weights."""
    import torch

    from predprey.policy import load

    evals = [r for r in run.read_metrics() if "eval/pred_touches_v_evader" in r]
    assert len(evals) >= 5
    best = checkpoint.load_best(run)
    top_pred = max(evals, key=lambda r: r["eval/pred_touches_v_evader"])
    low_prey = min(evals, key=lambda r: r["eval/prey_touches_v_chaser"])
    assert best["predator"]["env_steps"] == top_pred["env_steps"]
    assert best["prey"]["env_steps"] == low_prey["env_steps"]
    chosen = load(run.path, "best").actors.actor_state()
    for team in ("predator", "prey"):
        assert all(torch.equal(chosen[team][k], v) for k, v in best[team]["actor"].items())


def test_address_without_runners_is_a_clear_error(tmp_path):
    from predprey.cli import main

    config_path = tmp_path / "tiny.yaml"
    dump_config(tiny_config(100), config_path)
    args = ["train", "--config", str(config_path), "--out", str(tmp_path / "run")]
    assert main([*args, "--address", "127.0.0.1:6379"]) == 2
    assert main([*args, "--runners", "-1"]) == 2
