"""The original three-service loop over HTTP on loopback, as real processes:
`serve-buffer` + `run-env` + `train --buffer-url`; plus their one-message refusals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from predprey import policy
from predprey.cli import main
from predprey.rundir import RunDir
from predprey.service.client import BufferClient
from predprey.service.process import free_port, start_server
from train_helpers import ROOT, json_line, predprey, tiny_config_file

# the learner ends once it made the (1800 - 200 warm-up) * 8 / 64 = 200 updates owed to
# the first 1800 rows (batch 64, one update per 8 env steps); the env process runs on
ROWS, UPDATES = 1800, 200
LEARN = {"total_env_steps": ROWS, "eval_every": 10**6, "checkpoint_every": 1000.0}


def start_run_env(url: str, config, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "predprey.cli", "run-env", "--buffer-url", url,
           "--config", str(config), "--report-every", "1", *args]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.timeout(300)  # ~30 s; three interpreters start, so slower on a busy machine
def test_env_process_feeds_the_learner_and_acts_with_its_newer_policies(tmp_path):
    cfg = tiny_config_file(tmp_path, train=LEARN)
    out = tmp_path / "run"
    server = start_server(tmp_path / "data")
    env = start_run_env(server.url, cfg, "--seed", "1", "--time-budget", "150",
                        "--steps-per-post", "25")  # 4 envs: 100 rows per post  # fmt: skip
    try:
        train = predprey("train", "--buffer-url", server.url, "--config", str(cfg),
                         "--out", str(out), "--time-budget", "60", "--quiet")  # fmt: skip
        learned = json_line(train)
        env.send_signal(signal.SIGTERM)  # run-env ends its loop and reports
        stdout, stderr = env.communicate(timeout=60)
        with BufferClient(server.url) as c:
            stats = c.stats()
    finally:
        env.kill()
        server.stop(signal.SIGKILL)
    assert env.returncode == 0, stderr
    fed = json.loads(stdout.strip().splitlines()[-1])
    # transitions arrived: every one the env process posted was acknowledged and is held
    assert fed["env_steps"] > 1000 and stats["total_recorded"] == fed["env_steps"]
    assert ROWS <= learned["env_steps"] <= stats["total_recorded"]
    # the learner updated at the configured ratio, relative to the service's insert count
    assert learned["updates"] == UPDATES
    assert "eval/pred_touches_v_evader" in learned["eval"]
    # ...published every update to the service, and the env process acted with newer ones
    assert stats["policies"] == {"predator": learned["updates"], "prey": learned["updates"]}
    assert fed["policy_loads"] >= 2
    assert 0 < fed["first_policy_version"] < fed["policy_version"] <= learned["updates"]
    assert "policy_version=" in stderr
    # ...and kept to the learner's pace: it waited, and it posted at most warm-up + slack
    # (400 rows) + one post beyond the rows the learner's 200 batches are owed
    # (see test_service_env_loop)
    assert fed["waits"] > 0 and stats["total_recorded"] <= 100 + (3264 + 200 * 64) // 8 + 100
    # the run directory is the single-process trainer's: metrics, checkpoint, policy
    run = RunDir(out)
    rows = run.read_metrics()
    assert any("loss/critic/predator" in r and r["remote/published_version"] > 0 for r in rows)
    assert policy.load(out).version == learned["updates"]


def test_unreachable_buffer_is_one_message_and_no_run_dir(tmp_path, capsys):
    cfg = tiny_config_file(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["run-env", "--buffer-url", url, "--config", str(cfg), "--retry-seconds", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the buffer service" in err and len(err.splitlines()) == 1
    out = tmp_path / "run"
    code = main(["train", "--buffer-url", url, "--config", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the buffer service" in err and not out.exists()


def test_buffer_of_another_shape_or_learner_is_refused_with_one_message(tmp_path, capsys):
    cfg = tiny_config_file(tmp_path)
    widths = {"State": 3, "Action": 2, "Reward": 1, "Next State": 3}
    server = start_server(tmp_path / "data", "--schema", json.dumps(widths))
    try:
        code = main(["run-env", "--buffer-url", server.url, "--config", str(cfg)])
        err = capsys.readouterr().err
        assert code == 2 and "State: 3 (config needs 62)" in err and len(err.splitlines()) == 1
        args = ["train", "--buffer-url", server.url, "--config", str(cfg), "--quiet", "--out"]
        code = main([*args, str(tmp_path / "a")])
        assert code == 2 and "State: 3 (config needs 62)" in capsys.readouterr().err
        with BufferClient(server.url) as c:
            c.put_policy("predator", 5, {"w": [1.0]})
        code = main([*args, str(tmp_path / "b")])
        err = capsys.readouterr().err
        assert code == 2 and "already holds policies {'predator': 5}" in err
        assert not (tmp_path / "b").exists()
    finally:
        server.stop(signal.SIGKILL)
