"""Evaluate a run's latest policy against scripted or learned teams; prints one JSON line.

  predprey evaluate runs/tag --predators learned --prey evader --episodes 200 [--seed S]
  predprey evaluate runs/spread_local --set env.num_agents=80 --set env.num_landmarks=80
  predprey evaluate runs/tag_pop --member 2        # a population run: member 2's actors

Predators: learned | random | chaser.  Prey: learned | random | still | evader.
The line holds touches per episode (mean and 95% CI half-width), mean returns per team,
the number of episodes, the mean episode length and the task measures of
`predprey.evaluate` (tag: touches per prey per step; spread: coverage, landmark distance,
collisions and reward per agent per step). `--set env.KEY=V` runs the policy in another
world (more agents, another density), `env` in the line says which.
"""

from __future__ import annotations

import argparse
import json

from predprey.commands import add_world_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    from predprey.evaluate import PREDATOR_CHOICES, PREY_CHOICES
    from predprey.policy import member_arg

    p.add_argument("run", metavar="RUN", help="run directory, e.g. runs/tag")
    p.add_argument("--predators", default="learned", choices=PREDATOR_CHOICES)
    p.add_argument("--prey", default="learned", choices=PREY_CHOICES)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--policy", default="latest", choices=("latest", "best"),
                   help="latest checkpoint, or per team its best evaluation snapshot")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="initial positions and scripted noise")
    p.add_argument("--member", type=member_arg, default=None, metavar="best|K",
                   help="population runs: member K's latest actors (best: per team the "
                        "fittest at the latest evaluation, the default)")  # fmt: skip
    add_world_overrides(p)


def run(args: argparse.Namespace) -> int:
    from predprey import policy as policy_mod
    from predprey.config import ConfigError
    from predprey.evaluate import check_choices, make_eval_env, run_episodes

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    policy = policy_mod.load(args.run, args.policy, env=args.overrides, member=args.member)
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
    if args.member is not None:
        line["member"] = args.member
    line["updates"] = policy.version
    if args.overrides:
        line["env"] = {k: policy.config.env.params.get(k) for k in changed(args.overrides)}
    print(json.dumps({**line, **result.to_dict()}))
    return 0


def changed(overrides: list[str]) -> list[str]:
    """The env keys that `--set` overrides name."""
    return [o.split("=", 1)[0].removeprefix("env.") for o in overrides]
