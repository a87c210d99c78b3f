"""The one training loop: its in-process pacing equals the old update-to-data credit, its
env-step budget can move while it runs, and the single-process path needs no Ray or HTTP."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from predprey.build import build
from predprey.config import load_config
from predprey.learn.rate_limiter import UpdateCredit
from predprey.rundir import RunDir
from train_helpers import ROOT, tiny_config_file


def credit_updates(steps_per_update, batch, warmup, num_envs, iterations) -> list[int]:
    """Updates after each vector step as the single-process loop counted them before the one
    loop: credit += E once not warming up and the buffer holds a batch."""
    env_steps = credit = updates = 0
    out = []
    for _ in range(iterations):
        warm = env_steps < warmup
        env_steps += num_envs
        if not warm and env_steps >= batch:
            credit += num_envs
            while credit >= steps_per_update:
                credit -= steps_per_update
                updates += 1
        out.append(updates)
    return out


@pytest.mark.parametrize(
    "steps_per_update, batch, warmup, num_envs",
    [(8, 64, 200, 4), (100, 1024, 25600, 32), (7, 512, 0, 3), (50, 64, 10, 32), (1, 16, 5, 1)],
)
def test_update_credit_pays_the_updates_the_stateful_credit_paid(
    steps_per_update, batch, warmup, num_envs
):
    pace = UpdateCredit(steps_per_update, batch, warmup, num_envs)
    want = credit_updates(steps_per_update, batch, warmup, num_envs, 2000)
    updates, got = 0, []
    for i in range(2000):
        updates += pace.batches_allowed((i + 1) * num_envs, updates * batch)
        got.append(updates)
    assert got == want


def test_the_env_step_budget_is_read_while_the_loop_runs(tmp_path):
    cfg = load_config(tiny_config_file(tmp_path), ["train.total_env_steps=400"])
    trainer = build(cfg, RunDir(tmp_path / "run").create(), evals=False)
    trainer.total_env_steps = 600  # raised after construction, before or while it runs
    result = trainer.run()
    assert result["env_steps"] == 600 and result["updates"] == (600 - 200) // 8
    assert result["profile"]["updates"] > 0 and "time_split" in result["profile"]


def test_single_process_training_imports_neither_ray_nor_http(tmp_path):
    config = tiny_config_file(tmp_path, train={"total_env_steps": 240, "eval_every": 10**9})
    code = f"""
import sys
from predprey.config import load_config
from predprey.rundir import RunDir
from predprey.build import build
build(load_config({str(config)!r}), RunDir({str(tmp_path / "run")!r}).create()).run()
heavy = sorted(m for m in ("ray", "httpx", "fastapi", "uvicorn") if m in sys.modules)
assert not heavy, heavy
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr


def test_profile_shares_add_up():
    from predprey.loop import Profile

    p = Profile()
    p.add(2.0, 100, 4, {"env": 0.0, "learn": 1.0}, {"env": 0.5, "learn": 2.0})
    d = p.to_dict(concurrent=False)
    assert d["env_steps_per_s"] == 50 and d["ms_per_update"] == 250
    assert np.isclose(sum(d["time_split"].values()), 1.0)
    assert set(p.to_dict(concurrent=True)["busy"]) == {"env", "learn"}
