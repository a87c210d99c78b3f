"""`predprey train --buffer-url URL`: the learner of the HTTP loop.

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

import math
import time
from typing import Any

import numpy as np

from predprey import checkpoint
from predprey.best import BestPolicies, scheduled_evaluation
from predprey.config import Config
from predprey.distributed.rate_limit import RateLimiter, samples_per_insert
from predprey.evaluate import check_choices
from predprey.learn.spec import team_specs
from predprey.rundir import RunDir, RunDirError
from predprey.service.client import BufferClient, BufferServiceError
from predprey.service.layout import RecordLayout, server_widths
from predprey.trainlog import TrainLog, truncate_metrics

MAX_ROWS_PER_REQUEST = 16384  # serve-buffer's default --max-batch
MAX_BATCHES_PER_REQUEST = 16  # bounds the time between two /stats polls
IDLE_SLEEP = 0.05  # seconds between polls while the limiter allows no batch


class RemoteTrainer:
    def __init__(
        self,
        config: Config,
        run: RunDir,
        client: BufferClient,
        url: str,
        *,
        resume: bool = False,
        time_budget: float | None = None,
        progress: bool = False,
        checkpoints: bool = True,
        evals: bool = True,
    ):
        from predprey.learn.maddpg import Learner

        self.config, self.run_dir, self.client, self.url = config, run, client, url
        self.time_budget = config.train.time_budget if time_budget is None else time_budget
        self.progress, self.checkpoints, self.evals = progress, checkpoints, evals
        self.episodes = 0  # counted by the env processes, not here
        tr, a = config.train, config.algo
        seeds = np.random.SeedSequence(tr.seed).spawn(4)  # as Trainer: same learner init
        self.teams = team_specs(config.env.make(num_envs=1, seed=0))
        names = [t.name for t in self.teams]
        if set(names) == {"predator", "prey"}:
            check_choices(names, {"predator": tr.eval_predators, "prey": tr.eval_prey})
        self.learner = Learner(self.teams, a, seed=int(seeds[1].generate_state(1)[0]))
        self.layout = RecordLayout(self.teams)
        self.limiter = RateLimiter(
            samples_per_insert(config), a.batch_size, config.buffer.warmup, 1
        )
        stats = client.stats()
        self.layout.check(server_widths(stats, url), f"the buffer at {url}")
        self.server_rows = int(stats["rows"])
        self.env_steps = self.eval_index = self.last_eval_steps = self.published = 0
        self.skipped_publishes = 0
        self.next_log, self.next_eval = tr.log_every, tr.eval_every
        self.last_eval: dict[str, float] = {}
        self.fetch_seconds, self.fetched_batches = 0.0, 0
        self.best = BestPolicies(run, save=checkpoints)
        time_offset = 0.0
        if resume:
            time_offset = self._restore()
        else:
            check_no_policies(stats, url)
        self.log = TrainLog(run, time_offset)

    # -- the loop ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from predprey.progress import Progress

        tr = self.config.train
        self.log.start(self.env_steps, self.learner.version)
        start = time.perf_counter()
        deadline = start + self.time_budget if self.time_budget > 0 else math.inf
        last_ckpt = start
        bar = Progress(tr.total_env_steps, self.env_steps, self.time_budget, self.progress)
        try:
            while time.perf_counter() < deadline:
                if not self._learn():
                    if self.env_steps >= tr.total_env_steps:
                        break  # every update owed to the first total_env_steps rows is done
                    time.sleep(IDLE_SLEEP)
                if self.env_steps >= self.next_log:
                    self._log()
                if self.evals and self.env_steps >= self.next_eval:
                    self._evaluate()
                if self.checkpoints and time.perf_counter() - last_ckpt >= tr.checkpoint_every:
                    self.save_checkpoint()
                    last_ckpt = time.perf_counter()
                bar.update(self.env_steps, self.learner.version, self.last_eval)
        finally:
            bar.close()
        self._finish()
        return {
            "env_steps": self.env_steps,
            "updates": self.learner.version,
            "episodes": self.episodes,
            "time": self.log.elapsed(),
            "eval": self.last_eval,
            "published_version": self.published,
            "skipped_publishes": self.skipped_publishes,  # 409: the service held a newer one
        }

    def _learn(self) -> bool:
        """Take the batches the limiter allows now; False when there were none."""
        B = self.config.algo.batch_size
        stats = self.client.stats()
        self.layout.check(server_widths(stats, self.url), f"the buffer at {self.url}")
        self.server_rows = int(stats["rows"])
        self.env_steps = int(stats["total_recorded"])  # rows the env processes posted
        inserted = min(self.env_steps, self.config.train.total_env_steps)
        n = min(
            self.limiter.batches_allowed(inserted, self.learner.version * B),
            self.server_rows // B,
            max(1, MAX_ROWS_PER_REQUEST // B),
            MAX_BATCHES_PER_REQUEST,
        )
        if n < 1:
            return False
        t0 = time.perf_counter()
        rows = self.layout.from_record(self.client.sample(n * B))  # [n * B, ...]
        self.fetch_seconds += time.perf_counter() - t0
        self.fetched_batches += n
        for i in range(n):
            batch = {k: v[i * B : (i + 1) * B] for k, v in rows.items()}
            self.log.add_losses(self.learner.update(batch))
        if self.learner.version - self.published >= self.config.distributed.weight_sync_every:
            self.publish()
        return True

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

    # -- metrics, evaluation, checkpoints -------------------------------------------
    def _log(self) -> None:
        row = self.log.window_row(self.env_steps, self.learner.version, 0, self.server_rows)
        del row["episodes"]  # unknown here: the env processes count them
        row["remote/published_version"] = self.published
        if self.fetched_batches:
            row["remote/fetch_ms_per_batch"] = 1e3 * self.fetch_seconds / self.fetched_batches
        self.fetch_seconds, self.fetched_batches = 0.0, 0
        self.log.write(row)
        every = self.config.train.log_every
        self.next_log = (self.env_steps // every + 1) * every

    def _evaluate(self) -> None:
        scheduled_evaluation(self, self.learner, self.learner.version)

    def _finish(self) -> None:
        if self.learner.version > self.published:
            self.publish()
        if self.env_steps > 0 and self.log.window_has_data:
            self._log()
        if self.evals and self.env_steps > self.last_eval_steps:
            self._evaluate()
        if self.checkpoints:
            self.save_checkpoint()
        self.log.finish()

    def save_checkpoint(self) -> None:
        payload = {
            **checkpoint.loop_state(self, self.teams),
            **checkpoint.learner_state(self.learner),
            "env_steps": self.env_steps,
            "remote": {"url": self.url, "published": self.published},
        }
        checkpoint.save(self.run_dir, payload)

    def _restore(self) -> float:
        """Continue from the latest checkpoint; returns the run's elapsed time so far."""
        run = self.run_dir
        payload = checkpoint.load(run)
        checkpoint.check_teams(payload, self.teams, str(run.path))
        if "remote" not in payload:
            raise RunDirError(
                f"{run.path} was not trained with --buffer-url; resume it without --buffer-url"
            )
        try:
            self.learner.load_state_dict(payload["learner"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise RunDirError(f"incompatible checkpoint in {run.path}: {e}") from None
        self.published = int(payload["remote"]["published"])
        self.env_steps = int(payload["env_steps"])
        truncate_metrics(run, self.env_steps)
        return checkpoint.restore_loop_state(self, payload)


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


def train_remote(
    config: Config, run: RunDir, client: BufferClient, url: str, **kwargs: Any
) -> dict[str, Any]:
    """Build a `RemoteTrainer` and run it, with service failures as one clear message."""
    import torch

    from predprey.service.errors import service_errors

    if config.train.torch_threads > 0:
        torch.set_num_threads(config.train.torch_threads)
    with client, service_errors(url):
        return RemoteTrainer(config, run, client, url, **kwargs).run()
