"""`predprey train` from the command line: run dir handling, resume after SIGKILL, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import torch

from predprey import checkpoint
from predprey.cli import main
from predprey.rundir import RunDir
from train_helpers import ROOT, tiny_config_file


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (same code path as the console script, no startup cost)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_cli_writes_a_run_and_refuses_to_clobber_it(tmp_path, capsys):
    cfg = tiny_config_file(tmp_path, train={"total_env_steps": 400})
    out = tmp_path / "run"
    code, stdout, _ = cli(capsys, "train", "--config", str(cfg), "--out", str(out), "--quiet")
    line = json.loads(stdout)
    assert code == 0 and line["env_steps"] == 400 and "eval/pred_touches_v_evader" in line["eval"]
    run = RunDir(out)
    assert run.config_path.is_file() and run.read_metrics() and run.episodes("train")
    code, _, err = cli(capsys, "train", "--config", str(cfg), "--out", str(out))
    assert code == 2 and "--overwrite" in err
    args = ("--set", "train.seed=3", "--quiet", "--overwrite")
    code, stdout, _ = cli(capsys, "train", "--config", str(cfg), "--out", str(out), *args)
    assert code == 0 and json.loads(stdout)["env_steps"] == 400
    assert "seed: 3" in run.config_path.read_text()


def test_resume_after_sigkill_continues_with_the_buffer(tmp_path, capsys):
    cfg = tiny_config_file(
        tmp_path, train={"total_env_steps": 10**9, "checkpoint_every": 0.5, "eval_every": 10**6}
    )
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "predprey.cli", "train", "--config", str(cfg), "--out", str(out),
           "--time-budget", "600", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = checkpoint.latest_path(RunDir(out))
    try:
        deadline = time.monotonic() + 300  # generous: CI machines are busy
        first = None
        while time.monotonic() < deadline and proc.poll() is None:
            if latest.is_file():
                first = first or latest.stat().st_mtime_ns
                if latest.stat().st_mtime_ns != first:  # a second checkpoint: updates running
                    break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    run = RunDir(out)
    saved = checkpoint.load(run)
    steps0 = saved["env_steps"]
    assert steps0 > 0 and saved["updates"] > 0
    assert checkpoint.load_buffer(run, saved, 20000).total_added == steps0

    code, stdout, _ = cli(capsys, "train", "--resume", str(out), "--time-budget", "3", "--quiet")
    line = json.loads(stdout)
    assert line["env_steps"] > steps0 and line["updates"] > saved["updates"]
    resumed = checkpoint.load(run)
    buf = checkpoint.load_buffer(run, resumed, 20000)
    assert buf.total_added == resumed["env_steps"] == line["env_steps"]  # nothing lost or redone
    rows = run.read_metrics()
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(steps) and steps[-1] == line["env_steps"]
    assert rows[-1]["time"] > saved["time"]  # wall clock continues from the checkpoint
    assert line["time"] > saved["time"]


def test_resume_errors_are_one_clear_line(tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--resume", str(tmp_path / "nope"))
    assert code == 2 and "run directory not found" in err

    cfg = tiny_config_file(tmp_path, train={"total_env_steps": 200})
    out = tmp_path / "run"
    assert cli(capsys, "train", "--config", str(cfg), "--out", str(out), "--quiet")[0] == 0
    run = RunDir(out)
    # the config now describes another world (4 predators): the checkpoint cannot fit
    text = run.config_path.read_text()
    run.config_path.write_text(text.replace("preset: mpe", "preset: mpe\n  num_predators: 4"))
    code, _, err = cli(capsys, "train", "--resume", str(out))
    assert code == 2 and "incompatible checkpoint" in err
    run.config_path.write_text(text)
    checkpoint.latest_path(run).write_bytes(b"not a checkpoint")
    code, _, err = cli(capsys, "train", "--resume", str(out))
    assert code == 2 and "corrupt" in err and str(checkpoint.latest_path(run)) in err
    assert "weights_only" not in err and len(err.strip().splitlines()) == 1
    # a pickle of something other than tensors: never advise loading it unsafely
    torch.save({"format": Fraction(1, 3)}, checkpoint.latest_path(run))
    code, _, err = cli(capsys, "train", "--resume", str(out))
    assert code == 2 and "corrupt or not a predprey file" in err and "weights_only" not in err
    torch.save({"format": 99}, checkpoint.latest_path(run))
    code, _, err = cli(capsys, "train", "--resume", str(out))
    assert code == 2 and "incompatible checkpoint" in err
    code, _, err = cli(capsys, "train", "--resume", str(out), "--set", "algo.gamma=0.9")
    assert code == 2 and "--resume takes its config from the run" in err and "algo.gamma" in err


def test_resume_with_a_new_end_trains_further(tmp_path, capsys):
    cfg = tiny_config_file(tmp_path, train={"total_env_steps": 200})
    out = tmp_path / "run"
    assert cli(capsys, "train", "--config", str(cfg), "--out", str(out), "--quiet")[0] == 0
    args = ("train", "--resume", str(out), "--quiet")
    code, stdout, _ = cli(capsys, *args, "--set", "train.total_env_steps=400")
    assert code == 0 and json.loads(stdout)["env_steps"] == 400
    assert "total_env_steps: 400" in RunDir(out).config_path.read_text()  # kept for later
    code, stdout, _ = cli(capsys, *args)
    assert code == 0 and json.loads(stdout)["env_steps"] == 400  # already at its end


def test_usage_errors(tmp_path, capsys):
    cfg = tiny_config_file(tmp_path)
    r = str(tmp_path / "r")
    code, _, err = cli(
        capsys, "train", "--config", str(cfg), "--out", r, "--set", "algo.batch_sise=5"
    )
    assert code == 2 and "algo.batch_sise" in err and "batch_size" in err
    assert not (tmp_path / "r").exists()  # nothing created for a bad config
    code, _, err = cli(capsys, "train", "--out", r)
    assert code == 2 and "--config" in err
    stranger = tmp_path / "notarun"
    stranger.mkdir()
    (stranger / "data.txt").write_text("keep me")
    code, _, err = cli(capsys, "train", "--config", str(cfg), "--out", str(stranger), "--overwrite")
    assert code == 2 and "not a predprey run" in err
    assert (stranger / "data.txt").is_file()
