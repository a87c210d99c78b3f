"""The training progress bar: env steps, env-steps/s, updates/s, latest eval and ETA.

tqdm on stderr, redrawn at most a few times a second; off when stderr is not a terminal
or when asked to be quiet.
"""

from __future__ import annotations

import math
import sys
import time


class Progress:
    def __init__(self, total_steps: int, start_steps: int, time_budget: float, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = self.last = time.perf_counter()
        self.steps0 = start_steps
        self.updates0: int | None = None
        self.total, self.time_budget = total_steps, time_budget
        self.bar = None
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total_steps,
                initial=start_steps,
                unit="step",
                unit_scale=True,
                file=sys.stderr,
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]",
            )

    def update(self, steps: int, updates: int, last_eval: dict[str, float]) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if self.updates0 is None:
            self.updates0 = updates
        if now - self.last < 0.5:
            return
        self.last = now
        dt = now - self.t0
        rate = (steps - self.steps0) / dt
        eta = (self.total - steps) / rate if rate > 0 else math.inf
        if self.time_budget > 0:
            eta = min(eta, self.time_budget - dt)
        post = {"upd/s": f"{(updates - self.updates0) / dt:.1f}"}
        for k, v in last_eval.items():
            post[k.removeprefix("eval/")] = f"{v:.2f}"
        post["eta"] = _clock(eta)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(steps - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = max(0, int(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
