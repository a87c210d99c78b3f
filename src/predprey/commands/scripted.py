"""Scripted teams against each other (no learning); prints one JSON line.

  predprey scripted [--config FILE] [--set env.preset=seed] [--predators chaser]
                    [--prey evader] [--agents random] [--episodes 200] [--seed 0]

Policies (predprey.env.scripted): random, still, chaser, evader. --predators/--prey drive
tag's teams, --agents spread's. The line holds touches per episode (mean and the half-width
of its 95% confidence interval), the mean episode return of each team (summed reward,
mean over the team's agents), the mean episode length, and env_steps_per_s: the steps of
the counted episodes per second of wall clock, scripted policies included (after one
warm-up step that compiles the kernels).
"""

from __future__ import annotations

import argparse
import json
import time

from predprey.config import ConfigError

MAX_ENVS = 1000  # up to this many episodes run side by side, one per environment


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (only its env section is used)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=V",
                   help="override one config value, e.g. env.preset=seed (repeatable)")  # fmt: skip
    p.add_argument("--predators", default="chaser", help="scripted predators (default chaser)")
    p.add_argument("--prey", default="evader", help="scripted prey (default evader)")
    p.add_argument("--agents", default="random", help="scripted agents of spread (default random)")
    p.add_argument("--episodes", type=int, default=200, help="episodes to play (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the worlds and random policies")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from predprey.config import load_config
    from predprey.env import scripted
    from predprey.evaluate import run_episodes

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    given = {"predator": args.predators, "prey": args.prey, "agent": args.agents}
    try:
        cfg = load_config(args.config, args.overrides)
        env = cfg.env.make(num_envs=min(args.episodes, MAX_ENVS), seed=args.seed)
        who = {t: given[t] for t in env.teams}
        for t, name in who.items():
            if name not in scripted.SCRIPTED:
                raise ValueError(
                    f"--{t}: unknown policy {name!r}; choose one of {scripted.SCRIPTED}"
                )
        env.step(
            {t: np.zeros((env.num_envs, n, env.act_dims[t])) for t, n in env.team_sizes.items()}
        )  # JIT
        start = time.perf_counter()
        res = run_episodes(env, who, None, args.episodes, args.seed)
        elapsed = time.perf_counter() - start
    except ValueError as e:  # bad scenario parameter or policy: a config problem
        raise ConfigError(str(e)) from None
    line = {
        "scenario": cfg.env.scenario,
        **{k: v for k, v in cfg.env.params.items()},
        **{f"policy/{t}": name for t, name in who.items()},
        **res.to_dict(),
        "num_envs": env.num_envs,
        "seed": args.seed,
        "env_steps_per_s": res.episodes * res.episode_length / elapsed,
    }
    print(json.dumps(line))
    return 0
