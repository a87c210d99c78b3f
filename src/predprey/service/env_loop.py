"""The external-simulator loop behind `predprey run-env`: envs in this process, the
replay buffer and the policy behind HTTP.

One round: poll the service (`GET /stats`, cheap) and fetch the weights of every team
whose published version changed (`GET /policy/{team}`) -> step all envs `steps_per_post`
times with the same `Runner` the single-process trainer uses (uniform random actions
until every team has a published policy, then the actors plus Gaussian exploration
noise) -> POST the transitions (`RecordLayout` packs them into the original record
keys). The loop ends at a time budget, an env-step budget or `stop()` (SIGTERM).

The env processes keep to the learner's pace with the samples-per-insert `RateLimiter`
of the Ray trainer: the published policy version counts the learner's batches (0 before
its first publish), the service's insert count the rows, and a round waits while the
rows are more than the slack (`distributed.insert_slack`, default a few posts) ahead of
the configured ratio. So the buffer gets `buffer.warmup` rows of random play plus the
slack before the learner starts, and adding env processes does not change the learning
dynamics. `rate_limit=False` runs free (e.g. to fill a buffer without a learner).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from predprey.config import Config
from predprey.learn.rate_limiter import RateLimiter, samples_per_insert
from predprey.runner import Runner
from predprey.seeding import seed_streams
from predprey.service.client import BufferClient
from predprey.service.layout import RecordLayout, server_widths

WAIT_SECONDS = 0.02  # between polls while ahead of the learner


class FeedResult(NamedTuple):
    env_steps: int  # transitions posted (and acknowledged by the buffer)
    episodes: int
    policy_version: int  # the version acting at the end (0: none, random actions)
    first_policy_version: int  # the first version loaded (0: none)
    policy_loads: int  # times new weights were fetched and loaded
    waits: int  # rounds spent waiting for the learner (rate limit)
    seconds: float
    returns: dict[str, float]  # team -> mean return of the episodes finished meanwhile

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        out["env_steps_per_s"] = round(self.env_steps / max(self.seconds, 1e-9), 1)
        out["seconds"] = round(self.seconds, 3)
        return out


class EnvFeeder:
    def __init__(
        self,
        config: Config,
        client: BufferClient,
        seed: int,
        steps_per_post: int,
        rate_limit: bool = True,
    ):
        if steps_per_post < 1:
            raise ValueError(f"steps per post must be >= 1, got {steps_per_post}")
        env_seed, self.rng = seed_streams(seed)  # the rng: warm-up actions and noise
        self.config, self.client, self.steps_per_post = config, client, int(steps_per_post)
        self.runner = Runner(config, env_seed)
        self.layout = RecordLayout(self.runner.teams)
        self.versions: dict[str, int] = {}  # team -> version of the weights loaded
        self.first_version = self.loads = 0
        self.env_steps = self.episodes = 0
        self.return_sums = {t.name: 0.0 for t in self.runner.teams}  # over finished episodes
        self.stopping = False
        self.rows_per_post = self.steps_per_post * self.runner.num_envs
        self.limiter = None
        if rate_limit:
            a = config.algo
            spi = samples_per_insert(config)
            # slack: a few posts, and more than one publish apart (16 batches, see remote_train)
            slack = config.distributed.insert_slack or max(
                4 * self.rows_per_post, int(16 * a.batch_size / spi) + 1
            )
            self.limiter = RateLimiter(spi, a.batch_size, config.buffer.warmup, slack)
        self.waits = 0

    def check_server(self, url: str) -> None:
        """ValueError unless the buffer's row widths (once fixed) fit this config."""
        self.layout.check(server_widths(self.client.stats(), url), f"the buffer at {url}")

    def stop(self) -> None:
        self.stopping = True

    @property
    def policy_version(self) -> int:
        """The acting version: the oldest team's (0 until every team has weights)."""
        names = [t.name for t in self.runner.teams]
        return min(self.versions[n] for n in names) if set(names) <= set(self.versions) else 0

    def sync_policy(self, published: dict[str, int]) -> bool:
        """Load the weights of every team whose `published` version changed; True if any."""
        import torch

        changed = False
        for t in self.runner.teams:
            if published.get(t.name, self.versions.get(t.name)) == self.versions.get(t.name):
                continue
            policy = self.client.get_policy(t.name)
            if policy is None:
                continue
            state = {k: torch.from_numpy(np.array(v)) for k, v in policy.tensors.items()}
            try:
                self.runner.actors.load_actor_state({t.name: state})
            except ValueError as e:
                raise ValueError(
                    f"the published '{t.name}' policy does not fit this config: {e}"
                ) from None
            self.versions[t.name] = policy.version
            changed = True
        if changed:
            self.loads += 1
            self.runner.version = self.policy_version
            self.first_version = self.first_version or self.policy_version
        return changed

    def ahead_of_learner(self, inserted: int) -> bool:
        """True while the rows are too far ahead of the published learner's batches."""
        if self.limiter is None:
            return False
        sampled = self.policy_version * self.config.algo.batch_size
        return not self.limiter.may_insert(inserted, sampled, self.rows_per_post)

    def feed_once(self) -> bool:
        """Sync the policy, step the envs, post the transitions; False when it waited for
        the learner instead."""
        stats = self.client.stats()
        self.sync_policy(stats["policies"])
        if self.ahead_of_learner(int(stats["total_recorded"])):
            self.waits += 1
            time.sleep(WAIT_SECONDS)
            return False
        res = self.runner.collect(
            self.steps_per_post,
            self.config.algo.exploration_noise,
            self.rng,
            random_actions=self.policy_version == 0,
        )
        self.client.post_transitions(self.layout.to_record(res.transitions))
        self.env_steps += res.env_steps
        self.episodes += res.episodes.count
        for k, v in res.episodes.returns.items():
            self.return_sums[k] += float(v.sum())
        return True

    def run(
        self,
        time_budget: float = 0.0,
        max_env_steps: int = 0,
        report_every: float = 10.0,
        report: Callable[[str], None] | None = None,
    ) -> FeedResult:
        """Rounds until a budget is spent (0 = none) or `stop()`; reports a progress line
        every `report_every` seconds and when the first policy arrives."""
        report = report or (lambda line: print(line, file=sys.stderr, flush=True))
        start = time.perf_counter()
        deadline = start + time_budget if time_budget > 0 else float("inf")
        next_report, shown = start + report_every, 0
        while not self.stopping and time.perf_counter() < deadline:
            if max_env_steps and self.env_steps >= max_env_steps:
                break
            self.feed_once()
            now = time.perf_counter()
            if (self.policy_version and not shown) or now >= next_report:
                shown, next_report = self.policy_version, now + report_every
                rate = self.env_steps / max(now - start, 1e-9)
                report(
                    f"run-env: env_steps={self.env_steps} episodes={self.episodes} "
                    f"policy_version={self.policy_version} env_steps/s={rate:.0f} "
                    f"waits={self.waits}"
                )
        return FeedResult(
            env_steps=self.env_steps,
            episodes=self.episodes,
            policy_version=self.policy_version,
            first_policy_version=self.first_version,
            policy_loads=self.loads,
            waits=self.waits,
            seconds=time.perf_counter() - start,
            returns={k: v / self.episodes for k, v in self.return_sums.items() if self.episodes},
        )
