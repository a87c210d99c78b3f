"""Simulation mode: the run's latest policy from random initial positions; writes trajectories.

  predprey simulate runs/tag [--seed S] [--episodes K] [--env-index I] [--num-envs E]
  predprey simulate runs/spread_local --set env.num_agents=80 --set env.num_landmarks=80

Steps E environments (initial positions drawn from --seed) until environment I has
finished K episodes, writes those episodes to RUN/episodes/ (source "simulate", numbered
after any earlier simulated episodes of that index), and prints a JSON summary with the
written paths.
"""

from __future__ import annotations

import argparse
import json

from predprey.commands import add_world_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    from predprey.policy import member_arg

    p.add_argument("run", metavar="RUN", help="run directory, e.g. runs/tag")
    p.add_argument("--policy", default="latest", choices=("latest", "best"),
                   help="latest checkpoint, or per team its best evaluation snapshot")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random initial positions")
    p.add_argument("--member", type=member_arg, default=None, metavar="best|K",
                   help="population runs: member K's latest actors (best: per team the "
                        "fittest at the latest evaluation, the default)")  # fmt: skip
    p.add_argument("--episodes", type=int, default=1, help="episodes of --env-index to write")
    p.add_argument("--env-index", type=int, default=0, help="which environment to record")
    p.add_argument("--num-envs", type=int, default=None, help="environments (default: index+1)")
    add_world_overrides(p)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(simulate(args)))
    return 0


def simulate(args: argparse.Namespace) -> dict:
    """Record the episodes `args` asks for (the options above) into the run; the summary."""
    import dataclasses

    import numpy as np

    from predprey import policy as policy_mod
    from predprey.config import ConfigError
    from predprey.recorder import write_episodes
    from predprey.rundir import RunDir
    from predprey.runner import Runner
    from predprey.seeding import seed_streams

    num_envs = args.env_index + 1 if args.num_envs is None else args.num_envs
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if num_envs < 1 or not 0 <= args.env_index < num_envs:
        raise ConfigError(f"--env-index must be in [0, {num_envs - 1}], got {args.env_index}")
    run_dir = RunDir(args.run)
    member = getattr(args, "member", None)
    policy = policy_mod.load(run_dir.path, args.policy, env=args.overrides, member=member)
    cfg = policy.config
    cfg = cfg.replace(env=dataclasses.replace(cfg.env, num_envs=num_envs))
    env_seed, rng = seed_streams(args.seed)  # rng: scripted policies' randomness
    runner = Runner(cfg, env_seed, policy.actors, (args.env_index,), record_every=1, training=False)
    runner.version = policy.version
    earlier = [r.episode for r in run_dir.episodes("simulate") if r.env_index == args.env_index]
    runner.recorder.episode[args.env_index] = max(earlier, default=-1) + 1
    recorded, touches, returns = [], [], {t.name: [] for t in runner.teams}
    max_steps = args.episodes * runner.env.episode_length
    for step in range(max_steps):
        res = runner.collect(1, 0.0, rng, env_steps_before=step * num_envs)
        recorded += res.recorded
        touches.append(res.episodes.touches)
        for k, v in res.episodes.returns.items():
            returns[k].append(v)
        if len(recorded) >= args.episodes:
            break
    paths = write_episodes(run_dir, "simulate", recorded[: args.episodes])
    all_touches = np.concatenate(touches)
    summary = {
        "run": args.run,
        "seed": args.seed,
        "updates": policy.version,
        "num_envs": num_envs,
        "env_index": args.env_index,
        "episodes": len(paths),
        "recorded_touches": [int(ep.arrays["touches"].sum()) for ep in recorded[: args.episodes]],
        "all_envs": {
            "episodes": int(len(all_touches)),
            "touches_per_episode": float(all_touches.mean()) if len(all_touches) else None,
            "returns": {k: float(np.concatenate(v).mean()) for k, v in returns.items() if v}
            if len(all_touches)
            else {},
        },
        "paths": [str(p) for p in paths],
        "episode_numbers": [ep.episode for ep in recorded[: args.episodes]],
    }
    if args.overrides:
        from predprey.commands.evaluate import changed

        summary["env"] = {k: cfg.env.params.get(k) for k in changed(args.overrides)}
    return summary
