"""Distributed training on Ray: K runner actors, a buffer actor and a learner actor that
wrap the same `Runner`, `ReplayBuffer` and `Learner` as the single-process trainer.

  train_distributed(config, "runs/tag", runners=4)                    # local Ray instance
  train_distributed(config, "runs/tag", runners=16, address="head:6379")  # a Ray cluster

A config with a `population` section trains P members, each with `runners` runner actors,
a buffer actor and a learner actor of its own (P * (runners + 1) CPUs).

Modules: `driver` (the Ray source of the training loop, predprey.loop), `fleet` (actors,
placement, restarts), `actors` (Ray shells), `durable` (buffer + write-ahead log), `wal`,
`cluster` (Ray init), `onpolicy` (PPO's runners), `population` (members on Ray).
"""

from __future__ import annotations

from typing import Any


def train_distributed(
    config,
    run_dir,
    runners: int,
    address: str = "",
    *,
    resume: bool = False,
    time_budget: float | None = None,
    progress: bool = False,
    checkpoints: bool = True,
    evals: bool = True,
) -> dict[str, Any]:
    """Train with `runners` Ray runner actors in a local Ray instance (started and stopped
    here) or, with `address="HOST:PORT"`, on an existing Ray cluster. Returns the final
    counters, as `predprey.train.Trainer.run` does, plus restarts and runner nodes."""
    from predprey.distributed.cluster import init_ray, local_cpus
    from predprey.rundir import RunDir

    if runners < 1:
        raise ValueError(f"distributed training needs runners >= 1, got {runners}")
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    P = config.population.size if config.population is not None else 1
    cpus = None if address else local_cpus(P * runners, P)
    info = init_ray(address, cpus)  # before `import ray`
    import ray

    if config.algo.name == "ppo":  # on-policy: predprey.distributed.onpolicy
        from predprey.distributed.onpolicy import RolloutTrainer as DistributedTrainer
    elif config.population is not None:  # P members: predprey.distributed.population
        from predprey.distributed.population import RayPopulationTrainer as DistributedTrainer
    else:
        from predprey.distributed.driver import DistributedTrainer

    try:
        trainer = DistributedTrainer(
            config, run, runners, resume=resume, time_budget=time_budget,
            progress=progress, checkpoints=checkpoints, evals=evals,
        )  # fmt: skip
        try:
            return trainer.run()
        finally:
            trainer.fleet.shutdown()
    finally:
        if info.started_here:
            ray.shutdown()
