"""The one place that chooses a run's pieces: `build(config, run, ...)` composes the training
loop (predprey.loop) of an algorithm and a source; `train(...)` builds one, runs it and
releases what it started (Ray, the HTTP client).

                 one process                 --runners K (Ray)              --buffer-url
  maddpg/matd3   OffPolicy(UpdateCredit)     OffPolicy(RateLimiter)         OffPolicy(RateLimiter)
                 over LocalSource            over RaySource                 over HttpSource
  ppo            OnPolicy over RolloutSource OnPolicy over RayRolloutSource -
  population     Population of Member        Population of RayMember        -

Ray and HTTP modules are imported only when a run asks for them: the single-process path
imports neither (a checked contract, see pyproject's import-linter section).
"""

from __future__ import annotations

from typing import Any

from predprey.config import Config, ConfigError
from predprey.loop import TrainLoop
from predprey.rundir import RunDir, RunDirError


def build(
    config: Config,
    run: RunDir,
    *,
    resume: bool = False,
    runners: int = 0,
    client: Any = None,
    url: str = "",
    **loop_args: Any,
) -> TrainLoop:
    """The training loop for `config`: in this process, on Ray with `runners` runner actors
    (Ray must be initialised), or learning from the HTTP buffer behind `client` at `url`.
    `loop_args` go to `TrainLoop` (time_budget, progress, checkpoints, evals). The caller
    calls `loop.close()` when done (it stops Ray actors)."""
    from predprey.learn.offpolicy import OffPolicy
    from predprey.learn.onpolicy import OnPolicy

    ppo = config.algo.name == "ppo"
    loop = TrainLoop(config, run, resume=resume, **loop_args)
    try:
        if config.population is not None:  # the config allows only off-policy members
            source = _population(config, loop, runners)
            loop.attach(source, source)
            source.start(resumed=resume)
            return loop
        if ppo:
            source = _on_policy_source(config, loop, runners)
            loop.attach(OnPolicy(config), source)
            return loop
        source, pace = _off_policy_source(config, loop, runners, client, url)
        loop.attach(OffPolicy(config, pace), source)
        return loop
    except BaseException:
        if hasattr(loop, "source"):
            loop.close()
        raise


def _off_policy_source(config: Config, loop: TrainLoop, runners: int, client: Any, url: str):
    from predprey.learn.rate_limiter import RateLimiter, UpdateCredit, samples_per_insert

    a, warmup = config.algo, config.buffer.warmup
    if client is not None:
        from predprey.service.remote_train import HttpSource

        limiter = RateLimiter(samples_per_insert(config), a.batch_size, warmup, 1)
        return HttpSource(config, loop, client, url), limiter
    if runners > 0:
        from predprey.distributed.driver import RaySource

        source = RaySource(config, loop, runners)
        chunk = source.chunk
        slack = max(config.distributed.insert_slack or 2 * runners * chunk, chunk)
        return source, RateLimiter(samples_per_insert(config), a.batch_size, warmup, slack)
    from predprey.train import LocalSource

    pace = UpdateCredit(a.env_steps_per_update, a.batch_size, warmup, config.env.num_envs)
    return LocalSource(config, loop), pace


def _on_policy_source(config: Config, loop: TrainLoop, runners: int):
    if runners > 0:
        from predprey.distributed.onpolicy import RayRolloutSource

        return RayRolloutSource(config, loop, runners)
    from predprey.rollout import RolloutSource

    return RolloutSource(config, loop)


def _population(config: Config, loop: TrainLoop, runners: int):
    from predprey.population.trainer import Population

    if runners <= 0:
        return Population(config, loop)
    from predprey.config.population import CURRICULUM_ON_RAY, SHARE_BUFFER_ON_RAY
    from predprey.distributed.population import RayMember, wait_members

    if config.population.share_buffer:
        raise ConfigError(SHARE_BUFFER_ON_RAY)
    if config.population.curriculum:
        raise ConfigError(CURRICULUM_ON_RAY)

    def make_member(k, cfg, hp, loop):
        return RayMember(k, cfg, hp, loop, runners)

    return Population(config, loop, make_member, wait_members)


def train(
    config: Config,
    run: RunDir,
    *,
    resume: bool = False,
    runners: int = 0,
    address: str = "",
    client: Any = None,
    url: str = "",
    **loop_args: Any,
) -> dict[str, Any]:
    """Build the loop, run it and release everything: with `runners` a local Ray instance
    is started here (or `address` joins a cluster) and stopped after; with `client` the
    HTTP client is closed and service failures become one clear message. Returns the
    loop's final counters."""
    from predprey.threads import limit_threads

    if runners < 0:
        raise ConfigError(f"--runners must be >= 0, got {runners}")
    if address and not runners:
        raise ConfigError("--address needs --runners K (runner actors to start on the cluster)")
    if runners > 0:
        return _train_on_ray(config, run, resume, runners, address, loop_args)
    if config.train.torch_threads > 0:
        limit_threads(config.train.torch_threads)
    if client is not None:
        from predprey.service.errors import service_errors

        with client, service_errors(url):
            return _build_and_run(config, run, resume=resume, client=client, url=url,
                                  **loop_args)  # fmt: skip
    return _build_and_run(config, run, resume=resume, **loop_args)


def _train_on_ray(config, run, resume, runners, address, loop_args) -> dict[str, Any]:
    from predprey.distributed.cluster import init_ray, local_cpus

    P = config.population.size if config.population is not None else 1
    cpus = None if address else local_cpus(P * runners, P)
    info = init_ray(address, cpus)  # before `import ray`
    import ray

    try:
        return _build_and_run(config, run, resume=resume, runners=runners, **loop_args)
    finally:
        if info.started_here:
            ray.shutdown()


def _build_and_run(config: Config, run: RunDir, **kwargs: Any) -> dict[str, Any]:
    try:
        loop = build(config, run, **kwargs)
    except ValueError as e:  # a config the scenario or learner refuses: one line
        if isinstance(e, ConfigError | RunDirError):
            raise
        raise ConfigError(str(e)) from None
    try:
        return loop.run()
    finally:
        loop.close()
