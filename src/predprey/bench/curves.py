"""Learning curves for the benches that train (`bench jaxmarl`, `bench ablation`): a
`predprey train` run in a fresh process, one metrics.jsonl key as rows of
{time, env_steps, score}, and the final score of a curve."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def train(config: str, run_dir: Path, seconds: float, seed: int, sets: Sequence[str]) -> None:
    """`predprey train --config CONFIG --out RUN_DIR --time-budget SECONDS --seed SEED
    --set ...` as a user runs it; a failure ends the bench with its stderr's tail."""
    cmd = [sys.executable, "-m", "predprey.cli", "train", "--config", config,
           "--out", str(run_dir), "--time-budget", str(seconds), "--seed", str(seed),
           "--quiet"]  # fmt: skip
    for kv in sets:
        cmd += ["--set", kv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 900)
    if proc.returncode != 0:
        raise SystemExit(f"{run_dir}: predprey train failed (rc {proc.returncode}): "
                         f"{proc.stderr[-800:]}")  # fmt: skip


def curve(run_dir: Path, key: str) -> list[dict[str, float]]:
    """The rows of RUN_DIR/metrics.jsonl that hold `key`: [{time, env_steps, score}]."""
    rows = []
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if key in r:
                rows.append({"time": r["time"], "env_steps": r["env_steps"],
                             "score": float(r[key])})  # fmt: skip
    if not rows:
        raise SystemExit(f"{run_dir}: no {key!r} in metrics.jsonl")
    return rows


def final(rows: list[dict[str, float]], seconds: float) -> float:
    """Mean score over the last tenth of the wall clock (at least the last row)."""
    tail = [r["score"] for r in rows if r["time"] >= 0.9 * seconds] or [rows[-1]["score"]]
    return statistics.mean(tail)
