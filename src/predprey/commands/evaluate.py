"""Evaluate a run's latest policy against scripted or learned teams; prints one JSON line.

  predprey evaluate runs/tag --predators learned --prey evader --episodes 200 [--seed S]

Predators: learned | random | chaser.  Prey: learned | random | still | evader.
The line holds touches per episode (mean and 95% CI half-width), mean returns per team,
the number of episodes and the mean episode length.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    from predprey.evaluate import PREDATOR_CHOICES, PREY_CHOICES

    p.add_argument("run", metavar="RUN", help="run directory, e.g. runs/tag")
    p.add_argument("--predators", default="learned", choices=PREDATOR_CHOICES)
    p.add_argument("--prey", default="learned", choices=PREY_CHOICES)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--policy", default="latest", choices=("latest", "best"),
                   help="latest checkpoint, or per team its best evaluation snapshot")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="initial positions and scripted noise")


def run(args: argparse.Namespace) -> int:
    from predprey import policy as policy_mod
    from predprey.config import ConfigError
    from predprey.evaluate import check_choices, make_eval_env, run_episodes

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    policy = policy_mod.load(args.run, args.policy)
    env = make_eval_env(policy.config, args.episodes, args.seed)
    if set(env.teams) == {"predator", "prey"}:
        who = {"predator": args.predators, "prey": args.prey}
    else:  # other scenarios (e.g. spread) have only learned teams
        if args.predators != "learned" or args.prey != "learned":
            raise ConfigError(f"scenario '{env.scenario.name}' has no predator/prey teams")
        who = {t: "learned" for t in env.teams}
    check_choices(env.teams, who)
    result = run_episodes(env, who, policy.actors, args.episodes, args.seed)
    line = {"run": args.run, **who, "policy": args.policy, "seed": args.seed}
    line["updates"] = policy.version
    print(json.dumps({**line, **result.to_dict()}))
    return 0
