"""Resuming drops the metrics rows logged after the checkpoint; a resume killed while doing
so must leave metrics.jsonl whole (it once emptied the file first, then wrote the kept rows
back one by one: killed in between, a run lost its history)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from predprey import trainlog
from predprey.rundir import RunDir


def _run(tmp_path, n=50):
    run = RunDir(tmp_path / "run").create()
    for i in range(n):
        run.append_metrics({"env_steps": 1000 * i, "time": float(i), "loss": 0.5})
    return run


def test_truncate_keeps_the_rows_up_to_the_checkpoint(tmp_path):
    run = _run(tmp_path)
    trainlog.truncate_metrics(run, 20_000)
    rows = run.read_metrics()
    assert [r["env_steps"] for r in rows] == [1000 * i for i in range(21)]
    assert not run.metrics_path.with_name("metrics.jsonl.tmp").exists()


def test_truncate_killed_midway_leaves_metrics_whole(tmp_path, monkeypatch):
    run = _run(tmp_path)
    before = run.metrics_path.read_bytes()
    kept = b"".join(line for line in before.splitlines(keepends=True)[:21])
    swaps, real_replace = [], os.replace

    def killed_after_swap(src, dst):  # the one step that changes metrics.jsonl ...
        swaps.append(Path(src).read_bytes())
        real_replace(src, dst)
        raise KeyboardInterrupt  # ... and the process dies right after it

    monkeypatch.setattr(trainlog.os, "replace", killed_after_swap)
    with pytest.raises(KeyboardInterrupt):
        trainlog.truncate_metrics(run, 20_000)
    assert swaps == [kept]  # the new file was complete when it took the old one's place
    assert run.metrics_path.read_bytes() == kept

    run = _run(tmp_path / "again")
    before = run.metrics_path.read_bytes()

    def killed_before_swap(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainlog.os, "replace", killed_before_swap)
    with pytest.raises(KeyboardInterrupt):
        trainlog.truncate_metrics(run, 20_000)
    assert run.metrics_path.read_bytes() == before
