"""`predprey train --buffer-url URL`: `HttpSource`, the source the training loop
(predprey.loop) runs `OffPolicy` over, the learner of the HTTP loop.

`run-env` processes feed the buffer service; this loop only learns. Each round it reads
`GET /stats` and takes as many batches as the samples-per-insert `RateLimiter` allows
for the rows the service has recorded (its insert count is the run's env steps; the
ratio is the single-process update-to-data ratio, as for the Ray learner), fetching
them in one packed `GET /batch_data/{n * batch}` (n disjoint batches of distinct rows),
runs `Learner.update` on each, and publishes the actor weights with `PUT /policy/{team}`
(version = completed updates) once `distributed.weight_sync_every` updates have passed.
The run directory is written as the single-process trainer writes it (config.yaml,
metrics.jsonl + TensorBoard through `TrainLog`, evaluations, checkpoints of the
learner); the rows stay in the service, which keeps them durably, so checkpoints hold no
buffer. The run ends at its time budget or once it has made every update owed to the
first `train.total_env_steps` rows. Episode statistics live in the env processes (their
progress lines), so metrics rows carry losses, evaluations and throughput, no returns.
"""

from __future__ import annotations

import time
from typing import Any

from predprey import checkpoint, seeding
from predprey.config import Config
from predprey.loop import SourceBase, TrainLoop
from predprey.rundir import RunDirError
from predprey.service.client import BufferClient, BufferServiceError
from predprey.service.layout import RecordLayout, server_widths

MAX_ROWS_PER_REQUEST = 16384  # serve-buffer's default --max-batch
MAX_BATCHES_PER_REQUEST = 16  # bounds the time between two /stats polls
IDLE_SLEEP = 0.05  # seconds between polls while the limiter allows no batch


class HttpSource(SourceBase):
    """The replay buffer behind `url`, fed by external `run-env` processes; the learner runs
    here. A learn call fetches its batches in one packed request; `wait` polls `/stats`."""

    counts_episodes, external_producers = False, True
    rows_in_flight = updates_in_flight = chunk = 0

    def __init__(self, config: Config, loop: TrainLoop, client: BufferClient, url: str):
        from predprey.learn.maddpg import Learner

        self.config, self.loop, self.client, self.url = config, loop, client, url
        seed = seeding.learner_seed(config.train.seed)
        self.learner = Learner(loop.teams, config.algo, seed=seed)
        self.layout = RecordLayout(loop.teams)
        self.published = self.skipped_publishes = 0
        self.seconds = {"fetch": 0.0, "learn": 0.0}
        self.fetched_seconds, self.fetched_batches = 0.0, 0  # since the last metrics row
        self.learned = True  # in this step: poll again at once
        stats = self._poll()
        if loop.payload is None:
            check_no_policies(stats, url)

    @property
    def updates(self) -> int:
        return self.learner.version

    @property
    def unpublished(self) -> int:
        return self.learner.version - self.published

    @property
    def max_updates_per_call(self) -> int:
        B = self.config.algo.batch_size
        return min(
            self.server_rows // B, max(1, MAX_ROWS_PER_REQUEST // B), MAX_BATCHES_PER_REQUEST
        )

    def _poll(self) -> dict[str, Any]:
        stats = self.client.stats()
        self.layout.check(server_widths(stats, self.url), f"the buffer at {self.url}")
        self.server_rows = int(stats["rows"])
        self.inserted = int(stats["total_recorded"])  # rows the env processes posted
        return stats

    # -- what OffPolicy asks ---------------------------------------------------------
    def idle_runners(self) -> list:
        return []  # the runners are the external run-env processes

    def may_learn(self) -> bool:
        return not self.learned  # one fetch per step, then /stats again

    def learn(self, n_updates: int, publish: bool) -> None:
        B = self.config.algo.batch_size
        t0 = time.perf_counter()
        rows = self.layout.from_record(self.client.sample(n_updates * B))  # [n * B, ...]
        t1 = time.perf_counter()
        for i in range(n_updates):
            batch = {k: v[i * B : (i + 1) * B] for k, v in rows.items()}
            self.loop.add_losses(self.learner.update(batch))
        self.seconds["fetch"] += t1 - t0
        self.seconds["learn"] += time.perf_counter() - t1
        self.fetched_seconds += t1 - t0
        self.fetched_batches += n_updates
        self.learned = True
        if publish:
            self.publish()

    def wait(self) -> None:
        if not self.learned:
            time.sleep(IDLE_SLEEP)
        self._poll()
        self.learned = False

    def publish(self) -> None:
        """PUT every team's actor weights under the learner's version. A 409 (the service
        holds a newer version, published before a resume) skips this publish."""
        version = self.learner.version
        for team, state in self.learner.actor_state().items():
            try:
                self.client.put_policy(team, version, state)
            except BufferServiceError as e:
                if e.status != 409:
                    raise
                self.skipped_publishes += 1
        self.published = version

    # -- what the loop asks ----------------------------------------------------------
    def timers(self) -> dict[str, float]:
        return dict(self.seconds)

    def actors(self):
        return self.learner

    def buffer_size(self) -> int:
        return self.server_rows

    def log_keys(self, seconds: float) -> dict[str, Any]:
        row: dict[str, Any] = {"remote/published_version": self.published}
        if self.fetched_batches:
            row["remote/fetch_ms_per_batch"] = 1e3 * self.fetched_seconds / self.fetched_batches
        self.fetched_seconds, self.fetched_batches = 0.0, 0
        return row

    def finish(self) -> None:
        if self.learner.version > self.published:
            self.publish()

    def result(self) -> dict[str, Any]:
        return {
            "published_version": self.published,
            "skipped_publishes": self.skipped_publishes,  # 409: the service held a newer one
        }

    # -- checkpoints: the learner only (the service keeps the rows durably) ----------
    def state_dict(self) -> dict[str, Any]:
        return {
            **checkpoint.learner_state(self.learner),
            "env_steps": self.inserted,
            "remote": {"url": self.url, "published": self.published},
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        if "remote" not in payload:
            raise RunDirError(
                f"{self.run_dir.path} was not trained with --buffer-url; resume it without "
                "--buffer-url"
            )
        self.learner.load_state_dict(payload["learner"])
        self.published = int(payload["remote"]["published"])
        self.inserted = int(payload["env_steps"])


def check_no_policies(stats: dict[str, Any], url: str) -> None:
    """A new run publishes versions 1, 2, ...: refuse a buffer that holds newer ones."""
    if any(v > 0 for v in stats["policies"].values()):
        raise ValueError(
            f"the buffer at {url} already holds policies {stats['policies']} published by "
            "another learner; resume that run (--resume RUN --buffer-url URL) or start "
            "the buffer afresh (serve-buffer --reset)"
        )


def connect(url: str, token: str | None, new_run: bool) -> BufferClient:
    """A client of the buffer at `url` that has answered GET /stats and, for a `new_run`,
    holds no other learner's policies (ConfigError if not)."""
    from predprey.service.errors import service_errors

    client = BufferClient(url, token)
    with service_errors(url):
        stats = client.stats()
        server_widths(stats, url)
        if new_run:
            check_no_policies(stats, url)
    return client
