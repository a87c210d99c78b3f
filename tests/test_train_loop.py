"""The single-process training loop: run directory contents, update schedule, determinism
and exact continuation after a checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from predprey import checkpoint
from predprey.build import build
from predprey.config import dump_config, load_config
from predprey.rundir import RunDir, load_episode
from train_helpers import tiny_config_file

VOLATILE = ("time", "perf/")  # wall-clock dependent keys


def _train(cfg, path, resume=False):
    torch.set_num_threads(1)
    run = RunDir(path)
    if not resume:
        run.create()
    return build(cfg, run, resume=resume).run()


def _stable(rows):
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("short")
    cfg = load_config(tiny_config_file(tmp))
    result = _train(cfg, tmp / "run")
    return cfg, RunDir(tmp / "run"), result


def test_short_run_fills_the_run_directory(short_run):
    cfg, run, result = short_run
    assert result["env_steps"] == 1600
    # updates start after the 200-step warm-up: (1600 - 200) / 8 env steps per update
    assert result["updates"] == (1600 - 200) // 8
    rows = run.read_metrics()
    assert rows and all({"env_steps", "updates", "time"} <= set(r) for r in rows)
    train_rows = [r for r in rows if "return/predator" in r]
    assert [r["env_steps"] for r in train_rows] == [200, 400, 600, 800, 1000, 1200, 1400, 1600]
    last = train_rows[-1]
    for key in ("loss/critic/predator", "loss/actor/prey", "return/prey", "touches_per_episode",
                "perf/env_steps_per_s", "perf/updates_per_s"):  # fmt: skip
        assert math.isfinite(last[key]), key
    evals = [r for r in rows if "eval/pred_touches_v_evader" in r]
    assert [r["env_steps"] for r in evals] == [400, 800, 1200, 1600]
    assert all("eval/prey_touches_v_chaser" in r for r in evals)
    assert list(run.tb_dir.glob("events.out.tfevents.*"))
    assert checkpoint.latest_path(run).is_file()


def test_recorded_episodes_follow_the_rundir_format(short_run):
    cfg, run, _ = short_run
    refs = run.episodes("train")
    # 1600 steps / 4 envs / 25 steps = 16 episodes per env; every 3rd (0, 3, ..., 15) of envs 0, 1
    assert {(r.episode, r.env_index) for r in refs} == {
        (k, e) for k in range(0, 16, 3) for e in (0, 1)
    }
    ep = load_episode(refs[-1].path)
    assert ep["pos"].shape == (26, 4, 2) and ep["pos"].dtype == np.float32
    assert ep["alive"].shape == (26, 4) and ep["touches"].shape == (25,)
    assert ep["landmark_pos"].shape == (2, 2)
    assert ep["meta"]["teams"] == ["predator", "prey"] and ep["meta"]["source"] == "train"
    # consecutive recorded positions move by at most max_speed * dt (no reset inside)
    step = np.linalg.norm(np.diff(ep["pos"], axis=0), axis=-1)
    assert step.max() <= 1.3 * 0.1 + 1e-5


def test_checkpoint_holds_buffer_counters_and_rng(short_run):
    cfg, run, _ = short_run
    payload = checkpoint.load(run)
    assert payload["env_steps"] == 1600 and payload["updates"] == (1600 - 200) // 8
    buf = checkpoint.load_buffer(run, payload, cfg.buffer.capacity)
    assert buf.total_added == 1600 and len(buf) == 1600
    assert set(payload["rng"]) == {"collect", "sample"}


def test_same_seed_gives_identical_metrics(short_run, tmp_path):
    cfg, run, _ = short_run
    _train(cfg, tmp_path / "again")
    assert _stable(RunDir(tmp_path / "again").read_metrics()) == _stable(run.read_metrics())


def test_other_seed_gives_other_metrics(short_run, tmp_path):
    cfg, run, _ = short_run
    other = load_config(tiny_config_file(tmp_path), ["train.seed=1"])
    _train(other, tmp_path / "other")
    assert _stable(RunDir(tmp_path / "other").read_metrics()) != _stable(run.read_metrics())


def test_resume_continues_exactly_where_the_checkpoint_left(short_run, tmp_path):
    """Stop at 800 env steps, resume to 1600: same metrics as the uninterrupted run."""
    cfg, run, _ = short_run
    half = load_config(tiny_config_file(tmp_path), ["train.total_env_steps=800"])
    _train(half, tmp_path / "split")
    assert checkpoint.load(RunDir(tmp_path / "split"))["env_steps"] == 800
    result = _train(cfg, tmp_path / "split", resume=True)
    assert result["env_steps"] == 1600
    split_rows = RunDir(tmp_path / "split").read_metrics()
    assert _stable(split_rows) == _stable(run.read_metrics())
    times = [r["time"] for r in split_rows]
    assert times == sorted(times)  # `time` continues across the resume
    # the best-policy snapshots survive the resume and match the uninterrupted run's
    whole, split = (checkpoint.load_best(r) for r in (run, RunDir(tmp_path / "split")))
    assert {t: b["env_steps"] for t, b in whole.items()} == {
        t: b["env_steps"] for t, b in split.items()
    }


def test_best_snapshot_holds_each_teams_best_scoring_actor(short_run):
    from predprey.policy import load

    cfg, run, _ = short_run
    evals = [r for r in run.read_metrics() if "eval/pred_touches_v_evader" in r]
    assert len(evals) >= 2
    best = checkpoint.load_best(run)
    assert set(best) == {"predator", "prey"}
    top_pred = max(evals, key=lambda r: r["eval/pred_touches_v_evader"])  # first of ties
    low_prey = min(evals, key=lambda r: r["eval/prey_touches_v_chaser"])
    assert best["predator"]["env_steps"] == top_pred["env_steps"]
    assert best["prey"]["env_steps"] == low_prey["env_steps"]
    assert best["prey"]["value"] == low_prey["eval/prey_touches_v_chaser"]
    dump_config(cfg, run.config_path)  # policy.load reads the run's config
    latest, chosen = load(run.path), load(run.path, "best")
    for team in ("predator", "prey"):
        got = chosen.actors.actor_state()[team]
        assert all(torch.equal(got[k], v) for k, v in best[team]["actor"].items())
    obs = {"predator": np.zeros((3, 16), np.float32)}
    assert chosen.act(obs)["predator"].shape == latest.act(obs)["predator"].shape == (3, 2)
    with pytest.raises(ValueError, match="unknown policy"):
        load(run.path, "newest")


def test_resume_redoes_metrics_past_the_checkpointed_loop_state(short_run, tmp_path):
    """A concurrent buffer (Ray) may have inserted more env steps than the loop had seen when
    its state (schedule, best snapshots) was taken: rows past that state, an evaluation the
    restored best snapshots never saw among them, are dropped and redone."""
    import shutil
    from types import SimpleNamespace

    from predprey.loop import TrainLoop

    cfg, run, _ = short_run
    copy = RunDir(shutil.copytree(run.path, tmp_path / "run"))
    payload = checkpoint.load(copy)
    assert payload["loop_env_steps"] == payload["env_steps"] == 1600  # one process: equal
    payload["loop_env_steps"] = 1000  # the loop's state trailed the buffer's count
    assert any(1000 < r["env_steps"] <= 1600 for r in copy.read_metrics())
    loop = TrainLoop(cfg, copy)
    loop.payload = payload  # as if read from the checkpoint
    source = SimpleNamespace(inserted=payload["env_steps"], updates=0, load_state_dict=print)
    loop.attach(None, source)
    rows = copy.read_metrics()
    assert rows and max(r["env_steps"] for r in rows) <= 1000
