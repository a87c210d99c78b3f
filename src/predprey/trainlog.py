"""Metrics lines of a training run, written by the training loop (predprey.loop).

A `TrainLog` collects a window of per-update losses and finished-episode statistics
between two log lines, turns it into one metrics row (keys as documented in
`predprey.rundir`) and writes rows to metrics.jsonl and TensorBoard. `time` is wall clock
since the run started, continued across resumes (`time_offset`).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from predprey.rundir import RunDir, metrics_line


class TrainLog:
    def __init__(self, run: RunDir, time_offset: float = 0.0):
        self.run = run
        self.time_offset = time_offset
        self.session_start = time.perf_counter()
        self._writer = None
        self.reset_window(0, 0)

    def start(self, env_steps: int, updates: int) -> None:
        """Call when the loop starts: the clock and the first window start now."""
        self.session_start = time.perf_counter()
        self.reset_window(env_steps, updates)
        self.run.clear_finished()  # a resumed run is live again

    def elapsed(self) -> float:
        return self.time_offset + time.perf_counter() - self.session_start

    # -- the window ----------------------------------------------------------------
    def reset_window(self, env_steps: int, updates: int) -> None:
        self.losses: dict[str, list[float]] = defaultdict(list)
        self.returns: dict[str, list[np.ndarray]] = defaultdict(list)
        self.touches: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.window_start = (time.perf_counter(), env_steps, updates)

    def add_losses(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            self.losses[k].append(float(v))

    def add_episodes(self, ep) -> int:
        """Add a `predprey.runner.EpisodeStats`; returns its episode count."""
        if ep.count:
            for k, v in ep.returns.items():
                self.returns[k].append(v)
            self.touches.append(ep.touches)
            self.lengths.append(ep.lengths)
        return ep.count

    @property
    def window_has_data(self) -> bool:
        return bool(self.touches or self.losses)

    # -- rows ----------------------------------------------------------------------
    def row(self, env_steps: int, updates: int, extra: Mapping[str, Any] | None = None) -> dict:
        return {
            "env_steps": env_steps,
            "updates": updates,
            "time": round(self.elapsed(), 3),
            **(extra or {}),
        }

    def window_row(self, env_steps: int, updates: int, episodes: int, buffer_size: int) -> dict:
        """The row summarising the window since the last one; starts a new window."""
        t0, steps0, updates0 = self.window_start
        dt = max(time.perf_counter() - t0, 1e-9)
        row = self.row(env_steps, updates, {"episodes": episodes})
        row.update({k: float(np.mean(v)) for k, v in sorted(self.losses.items())})
        for k, v in self.returns.items():
            row[f"return/{k}"] = float(np.concatenate(v).mean())
        if self.touches:
            row["touches_per_episode"] = float(np.concatenate(self.touches).mean())
            row["episode_length"] = float(np.concatenate(self.lengths).mean())
        row["buffer/size"] = buffer_size
        row["perf/env_steps_per_s"] = (env_steps - steps0) / dt
        row["perf/updates_per_s"] = (updates - updates0) / dt
        self.reset_window(env_steps, updates)
        return row

    def write(self, row: Mapping[str, Any]) -> None:
        """Append to metrics.jsonl and TensorBoard (scalars, at step `env_steps`)."""
        self.run.append_metrics(row)
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run.tb_dir), purge_step=row["env_steps"])
        for k, v in row.items():
            if k != "env_steps" and isinstance(v, int | float):
                self._writer.add_scalar(k, v, row["env_steps"])

    def finish(self) -> None:
        """Call when training ends normally: close, and leave the run's finished marker."""
        self.close()
        self.run.mark_finished(finished_at=time.time(), time=round(self.elapsed(), 3))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def truncate_metrics(run: RunDir, env_steps: int) -> None:
    """Drop metrics lines written after the checkpoint we resume from (they will be redone).
    The kept lines go to a temporary file that then replaces metrics.jsonl in one step, so a
    resume killed here leaves the old file whole (it once emptied it first and lost the
    rows not yet written back)."""
    rows = [r for r in run.read_metrics() if r.get("env_steps", 0) <= env_steps]
    tmp = run.metrics_path.with_name(run.metrics_path.name + ".tmp")
    tmp.write_text("".join(metrics_line(r) for r in rows))
    os.replace(tmp, run.metrics_path)
