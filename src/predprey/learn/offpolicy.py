"""The off-policy algorithm (MADDPG/MATD3) as the training loop sees it: runners fill a
replay buffer, the learner samples it at the configured update-to-data ratio, and new actor
weights go back to the runners every `distributed.weight_sync_every` updates.

`OffPolicy.step` is the same whatever the source (see predprey.loop): it starts the
collect calls the pace allows, then the learner calls it owes, then waits for what is in
flight. A source provides:

  inserted, rows_in_flight       env steps the replay holds / being collected or inserted
  updates, updates_in_flight     learner updates completed / started
  unpublished                    updates since the last weight publish (in flight included)
  chunk                          env steps one collect call produces
  max_updates_per_call           updates one learn call may take
  external_producers             rows come from processes outside this run (HTTP run-env)
  idle_runners()                 runners ready for a collect call, in the order to use them
  collect(runner, noise, warm, env_steps_before)
  may_learn() / learn(n_updates, publish) / wait()
"""

from __future__ import annotations

from typing import Any

from predprey.config import Config


class OffPolicy:
    def __init__(self, config: Config, pace: Any):
        """`pace`: `UpdateCredit` (collect and learn in turn) or `RateLimiter` (concurrently)."""
        self.config, self.pace = config, pace

    def _sampled(self, src) -> int:
        """Rows the learner has sampled, calls in flight included."""
        return (src.updates + src.updates_in_flight) * self.config.algo.batch_size

    def _counted(self, src, total: int) -> int:
        """Inserted rows that earn updates: rows external producers post past the budget
        are not this run's."""
        return min(src.inserted, total) if src.external_producers else src.inserted

    def step(self, src, total: int) -> None:
        a, warmup = self.config.algo, self.config.buffer.warmup
        for runner in src.idle_runners():
            inserted = src.inserted + src.rows_in_flight
            if inserted >= total:
                continue
            if not self.pace.may_insert(inserted, self._sampled(src), src.chunk):
                break
            src.collect(runner, a.exploration_noise, inserted < warmup, inserted)
        sync = self.config.distributed.weight_sync_every
        while src.may_learn():
            owed = self.pace.batches_allowed(self._counted(src, total), self._sampled(src))
            n = min(owed, src.max_updates_per_call)
            if n < 1:
                break
            src.learn(n, publish=src.unpublished + n >= sync)
        src.wait()

    def work_left(self, src, total: int) -> bool:
        """Env steps to take, or updates the learner is owed for the steps taken (a
        concurrent learner trails the runners by up to the limiter's slack)."""
        if src.inserted < total:
            return True
        return self.pace.batches_allowed(self._counted(src, total), self._sampled(src)) > 0
