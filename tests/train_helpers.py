"""Tiny training configs shared by the train/CLI tests (seconds, not minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "env": {"scenario": "tag", "num_envs": 4, "preset": "mpe"},
    "algo": {"hidden": [16, 16], "batch_size": 64, "env_steps_per_update": 8},
    "buffer": {"capacity": 20000, "warmup": 200},
    "train": {
        "seed": 0, "total_env_steps": 1600, "eval_every": 400, "eval_episodes": 8,
        "log_every": 200, "checkpoint_every": 1000.0, "record_every": 3, "record_envs": [0, 1],
        "torch_threads": 1,
    },
}  # fmt: skip


def tiny_config_file(tmp_path: Path, **sections) -> Path:
    data = {k: dict(v) for k, v in TINY.items()}
    for name, values in sections.items():
        data[name].update(values)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def predprey(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (as a user would); returns the completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "predprey.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )  # fmt: skip


def json_line(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def build_run(tmp_path: Path, data: dict, name: str = "run", resume: bool = False):
    """A TrainLoop for config dict `data` in tmp_path/name (a new run dir, or `resume`)."""
    import torch

    from predprey.build import build
    from predprey.config import config_from_dict
    from predprey.rundir import RunDir

    torch.set_num_threads(1)
    run = RunDir(tmp_path / name)
    if not resume:
        run.path.mkdir(parents=True, exist_ok=True)
        run.config_path.write_text(yaml.safe_dump(data))
        run.create()
    return build(config_from_dict(data), run, resume=resume)
