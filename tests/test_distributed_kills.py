"""Kills the other fault tests leave out, each landing while the run is provably training:
a PPO runner SIGKILLed in the middle of a rollout, the PPO driver (`predprey train
--runners`) killed and resumed, the HTTP learner (`train --buffer-url`) killed and resumed,
and `distributed.max_restarts` exhausted (one line, non-zero exit, checkpoint kept).

Victims are found as a user would find them: Ray's process titles (`ray::RolloutActor.collect`
while a collect runs) among the descendants of the process that started Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from distributed_harness import new_run, run_with_fault, tiny_config
from predprey import checkpoint
from predprey.config import config_from_dict
from predprey.rundir import RunDir
from train_helpers import ROOT, TINY

ray = pytest.importorskip("ray")

from predprey.bench.chaos import kill_session, ray_actors  # noqa: E402
from predprey.build import build  # noqa: E402
from predprey.distributed.cluster import init_ray  # noqa: E402
from predprey.service.client import BufferClient  # noqa: E402
from predprey.service.process import start_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

UNBOUNDED = 10**9
WAIT_SECONDS = 1200.0  # bound on each wait: a crowded machine, not an expectation
PPO = {
    "env": {"scenario": "spread", "num_envs": 8, "num_agents": 3},
    "algo": {"name": "ppo", "hidden": [16, 16], "rollout_steps": 50, "epochs": 2,
             "minibatches": 2},
    "train": {"total_env_steps": UNBOUNDED, "eval_every": 10**9, "log_every": 400,
              "checkpoint_every": 1.0, "record_envs": [0], "record_every": 2,
              "torch_threads": 1},
}  # fmt: skip
ITERATION = 2 * 8 * 50  # env steps of one PPO iteration with 2 runners


def wait_for(cond, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll `cond` (bounded in time); fail early if `proc` ended meanwhile."""
    end = time.monotonic() + WAIT_SECONDS
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > end:
            raise TimeoutError(f"no {what} within {WAIT_SECONDS:.0f} s")
        time.sleep(0.05)


def kill_in_call(root: int, title: str) -> int | None:
    """SIGKILL a process under `root` whose title is `title` (`ray::Class.method`: that call
    is running). Each candidate is stopped (SIGSTOP) and its title read again before the
    kill, so the call was provably in flight when it died. Returns the pid, or None."""
    for pid, seen in ray_actors(root):
        if seen.split(".")[0] != title.split(".")[0]:
            continue  # another class: leave it running
        try:
            os.kill(pid, signal.SIGSTOP)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                now = f.read().replace(b"\0", b" ").decode(errors="replace").split()
            if now and now[0] == title:
                os.kill(pid, signal.SIGKILL)
                return pid
            os.kill(pid, signal.SIGCONT)
        except (ProcessLookupError, FileNotFoundError):
            continue
    return None


def metrics(run: Path) -> list[dict]:
    f = run / "metrics.jsonl"
    if not f.is_file():
        return []
    rows = []
    for line in f.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return rows


def latest_payload(run: Path) -> dict | None:
    try:
        return checkpoint.load(RunDir(run))
    except Exception:  # not written yet, or being replaced
        return None


def cli(*args: str) -> subprocess.Popen:
    """`predprey ARGS` in its own session (so its Ray processes can be cleaned up)."""
    return subprocess.Popen(
        [sys.executable, "-m", "predprey.cli", *args], cwd=ROOT, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of `proc`'s session (a killed driver leaves Ray's processes)."""
    kill_session(proc.pid)
    proc.communicate(timeout=60)


def config_file(tmp_path: Path, data: dict, **sections) -> Path:
    data = {k: dict(v) for k, v in data.items()}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# -- a PPO runner killed in the middle of a rollout ------------------------------------
@pytest.fixture
def local_ray():
    info = init_ray("", num_cpus=3)
    yield info
    ray.shutdown()


def test_ppo_runner_killed_mid_rollout_is_replaced(local_ray, tmp_path):
    cfg = config_from_dict(PPO)
    run = new_run(tmp_path / "run", cfg)
    trainer = build(cfg, run, runners=2, evals=False)

    def kill_mid_rollout(state):  # after a first iteration, while a collect call runs
        wait_for(lambda: trainer.env_steps >= ITERATION, "first iteration")
        wait_for(lambda: kill_in_call(os.getpid(), "ray::RolloutActor.collect"), "collect")
        state["at_kill"] = trainer.env_steps
        trainer.total_env_steps = trainer.env_steps + 2 * ITERATION

    result, state = run_with_fault(trainer, kill_mid_rollout)
    assert result["restarts"] == {"runner": 1}
    assert result["env_steps"] >= state["at_kill"] + 2 * ITERATION
    # every iteration learned from both runners' full rollouts: the cut one was redone
    assert result["env_steps"] == result["iterations"] * ITERATION
    slots = trainer.source.slots
    assert slots[0]["incarnation"] + slots[1]["incarnation"] == 1


# -- a learner killed before any checkpoint ----------------------------------------------
def test_killed_learner_restarts_from_its_snapshot_not_from_scratch(local_ray, tmp_path):
    """No checkpoint is written before the end: the new learner starts from the state the
    killed one last snapshotted into the object store (`Fleet.snapshots`)."""
    cfg = tiny_config(UNBOUNDED, train={"checkpoint_every": 10.0**6})
    run = new_run(tmp_path / "run", cfg)
    trainer = build(cfg, run, runners=1, evals=False)
    f = trainer.source.fleet

    def kill_learner(state):
        wait_for(lambda: f.snapshots and ray.wait(f.snapshots[-1:], timeout=0)[0], "snapshot")
        state["snapshot"] = ray.get(f.snapshots[-1])["updates"]
        wait_for(lambda: kill_in_call(os.getpid(), "ray::LearnerActor.train"), "train call")
        state["checkpoint"] = checkpoint.latest_path(run).is_file()
        trainer.total_env_steps = trainer.env_steps + 1500

    result, state = run_with_fault(trainer, kill_learner)
    assert state["checkpoint"] is False and state["snapshot"] > 0
    assert result["restarts"] == {"runner": 0, "buffer": 0, "learner": 1}
    event = next(r for r in run.read_metrics() if r.get("dist/restarts/learner") == 1)
    assert event["updates"] >= state["snapshot"]  # not from scratch
    assert result["lost_rows"] == 0


# -- a replacement killed while it starts -------------------------------------------------
def test_replacement_runner_killed_while_starting_is_replaced_again(local_ray, tmp_path):
    cfg = tiny_config(UNBOUNDED)
    run = new_run(tmp_path / "run", cfg)
    trainer = build(cfg, run, runners=1, evals=False)

    def kill_twice(state):
        wait_for(lambda: trainer.env_steps > 0, "env steps")
        wait_for(lambda: kill_in_call(os.getpid(), "ray::RunnerActor.collect"), "collect")
        wait_for(lambda: kill_in_call(os.getpid(), "ray::RunnerActor.__init__"), "start")
        state["at_kill"] = trainer.env_steps
        trainer.total_env_steps = trainer.env_steps + 1500

    result, state = run_with_fault(trainer, kill_twice)
    assert result["restarts"] == {"runner": 2, "buffer": 0, "learner": 0}
    assert result["env_steps"] >= state["at_kill"] + 1500 and result["lost_rows"] == 0


# -- the PPO driver killed and resumed ------------------------------------------------
def test_ppo_driver_killed_and_resumed(tmp_path):
    run = tmp_path / "run"
    proc = cli("train", "--config", str(config_file(tmp_path, PPO)), "--out", str(run),
               "--runners", "2", "--quiet")  # fmt: skip
    try:
        # training (a metrics line) and a checkpoint written, then past it, mid-rollout
        wait_for(lambda: metrics(run) and latest_payload(run), "checkpoint", proc)
        steps = latest_payload(run)["env_steps"]
        wait_for(lambda: metrics(run)[-1]["env_steps"] > steps, "progress", proc)
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(60) == -signal.SIGKILL
    finally:
        kill_group(proc)

    saved = checkpoint.load(RunDir(run))
    end = saved["env_steps"] + 2 * ITERATION
    result = resume(run, "--set", f"train.total_env_steps={end}")
    assert result["env_steps"] == end and result["restarts"] == {"runner": 0}
    payload = checkpoint.load(RunDir(run))
    assert payload["env_steps"] == end and payload["distributed"]["sessions"] == 1
    assert payload["updates"] > saved["updates"]
    steps = [r["env_steps"] for r in metrics(run)]
    assert steps == sorted(steps) and steps[-1] == end  # rows after the checkpoint were cut


def resume(run, *args: str) -> dict:
    """`predprey train --resume RUN ARGS` to its end; its summary line."""
    proc = cli("train", "--resume", str(run), *args, "--quiet")
    try:
        out, err = proc.communicate(timeout=WAIT_SECONDS)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


# -- the HTTP learner killed and resumed ------------------------------------------------
def http_updates(rows: int) -> int:
    return (rows - 200) * 8 // 64  # TINY: warm-up 200, one update of 64 rows per 8 rows


def test_http_learner_killed_and_resumed(tmp_path):
    cfg = config_file(tmp_path, TINY, train={"total_env_steps": UNBOUNDED,
                                             "checkpoint_every": 1.0})  # fmt: skip
    server = start_server(tmp_path / "data")
    env = cli("run-env", "--buffer-url", server.url, "--config", str(cfg), "--seed", "1")
    run = tmp_path / "run"
    learner = cli("train", "--config", str(cfg), "--out", str(run), "--buffer-url", server.url,
                  "--quiet")  # fmt: skip
    try:
        wait_for(lambda: (latest_payload(run) or {}).get("updates", 0) > 0, "checkpoint",
                 learner)  # fmt: skip
        with BufferClient(server.url) as c:
            published = max(c.policy_versions().values(), default=0)
            wait_for(lambda: max(c.policy_versions().values()) > published, "publish", learner)
        assert learner.poll() is None
        os.kill(learner.pid, signal.SIGKILL)
        assert learner.wait(60) == -signal.SIGKILL
        kill_group(learner)

        saved = checkpoint.load(RunDir(run))
        with BufferClient(server.url) as c:
            rows = int(c.stats()["total_recorded"])  # the env process may still post
        result = resume(run, "--buffer-url", server.url, "--set",
                        f"train.total_env_steps={rows}")  # fmt: skip
        # the learner went on from its checkpoint to every update the rows owe, no more
        assert saved["updates"] <= result["updates"] == http_updates(rows)
        assert result["env_steps"] >= rows
        with BufferClient(server.url) as c:  # and published them over the killed one's
            assert min(c.policy_versions().values()) == result["updates"]
    finally:
        env.send_signal(signal.SIGTERM)
        try:
            env.communicate(timeout=60)
        finally:
            kill_group(env)
            server.stop(signal.SIGKILL)


# -- distributed.max_restarts exhausted -------------------------------------------------
def test_max_restarts_exhausted_stops_with_one_line_and_keeps_the_checkpoint(tmp_path):
    off_policy = {**TINY, "train": {**TINY["train"], "total_env_steps": UNBOUNDED,
                                    "checkpoint_every": 1.0, "eval_every": 10**9}}  # fmt: skip
    cfg = config_file(tmp_path, off_policy, distributed={"max_restarts": 1})
    run = tmp_path / "run"
    proc = cli("train", "--config", str(cfg), "--out", str(run), "--runners", "1", "--quiet")
    try:
        for restarts in (0, 1):  # kill the runner, then its replacement, each mid-collect
            wait_for(lambda: latest_payload(run) and metrics(run), "checkpoint", proc)
            wait_for(lambda r=restarts: metrics(run)[-1].get("dist/restarts") == r,
                     f"{restarts} restarts", proc)  # fmt: skip
            wait_for(lambda: kill_in_call(proc.pid, "ray::RunnerActor.collect"), "collect", proc)
        out, err = proc.communicate(timeout=WAIT_SECONDS)
    finally:
        kill_group(proc)
    assert proc.returncode not in (0, None)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("predprey train")]
    assert lines == [
        "predprey train: error: runner actors died 2 times, more than "
        "distributed.max_restarts=1; stopping (the latest checkpoint is kept)"
    ], err
    payload = checkpoint.load(RunDir(run))  # kept, and loadable with its buffer
    buffer = checkpoint.load_buffer(RunDir(run), payload, capacity=20000)
    assert payload["env_steps"] == buffer.total_added > 0
    assert payload["distributed"]["restarts"]["runner"] <= 1
