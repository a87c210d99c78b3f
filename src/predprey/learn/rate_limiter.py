"""How fast the off-policy learner may sample relative to the rows inserted: the pacing of
updates against env steps.

`UpdateCredit` paces a loop that collects and learns in turn in one process: exactly one
update per `algo.env_steps_per_update` env steps. `RateLimiter` paces runners and a learner
that work at the same time (Ray actors, HTTP env processes): samples per insert, as in
DeepMind Reverb, with bounded slack. Both answer the same two questions for `OffPolicy`.

Samples-per-insert rate limiting between runners and the learner:

The learner is owed `credit = (inserted - warmup) * samples_per_insert - sampled` rows:
it may sample a batch while the credit covers one (so it never runs ahead of the data),
and runners may insert while the credit stays below `max_credit` (so they never run more
than `slack` env steps ahead of the learner). The ratio is the single-process trainer's
update-to-data ratio, so adding runners does not change the learning dynamics; it only
changes who waits. The limiter keeps no counters: the driver passes them in.
"""

from __future__ import annotations

import math


class RateLimiter:
    def __init__(self, samples_per_insert: float, batch_size: int, warmup: int, slack: int):
        if samples_per_insert <= 0:
            raise ValueError(f"samples_per_insert must be > 0, got {samples_per_insert}")
        if slack < 1:
            raise ValueError(f"slack must be >= 1 env step, got {slack}")
        self.samples_per_insert = float(samples_per_insert)
        self.batch_size = int(batch_size)
        self.warmup = int(warmup)
        self.slack = int(slack)
        # One batch of credit on top of the slack: the learner can always take one more batch
        # while runners are held back, so the two never wait for each other.
        self.max_credit = self.slack * self.samples_per_insert + self.batch_size

    def credit(self, inserted: int, sampled: int) -> float:
        """Rows the learner may still sample given `inserted` and `sampled` rows so far."""
        return (inserted - self.warmup) * self.samples_per_insert - sampled

    def batches_allowed(self, inserted: int, sampled: int) -> int:
        """Batches the learner may sample now (`inserted`: acknowledged rows only;
        `sampled`: rows sampled so far, including samples still in flight)."""
        if inserted < max(self.warmup, self.batch_size):
            return 0
        return max(0, math.floor(self.credit(inserted, sampled) / self.batch_size))

    def may_insert(self, inserted: int, sampled: int, rows: int) -> bool:
        """May a runner start producing `rows` more? (`inserted` includes rows in flight.)"""
        if inserted + rows <= self.warmup:
            return True
        return self.credit(inserted + rows, sampled) <= self.max_credit


def samples_per_insert(config) -> float:
    """The configured ratio, or the single-process one (batch_size / env_steps_per_update)."""
    d, a = config.distributed, config.algo
    return d.samples_per_insert or a.batch_size / a.env_steps_per_update


class UpdateCredit:
    """The in-process loop's pacing: every vector step of `num_envs` env steps that starts
    at or after `warmup` with a batch's worth of rows in the buffer earns its env steps as
    credit, and each `env_steps_per_update` of credit pays for one update (credit carries
    over: 32 envs and 100 steps per update give 8 updates per 25 vector steps). Collection
    and learning alternate, so an insert never waits."""

    def __init__(self, env_steps_per_update: int, batch_size: int, warmup: int, num_envs: int):
        E = int(num_envs)
        first = max(int(warmup), int(batch_size) - E, 0)
        self.start = -(-first // E) * E  # env steps before the first vector step with credit
        self.env_steps_per_update = int(env_steps_per_update)
        self.batch_size = int(batch_size)

    def batches_allowed(self, inserted: int, sampled: int) -> int:
        earned = max(0, inserted - self.start) // self.env_steps_per_update
        return max(0, earned - sampled // self.batch_size)

    def may_insert(self, inserted: int, sampled: int, rows: int) -> bool:
        return True
