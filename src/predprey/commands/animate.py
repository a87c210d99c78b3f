"""Animate one recorded environment, chosen by its index, to a GIF or MP4.

Predators and prey in distinct colours and markers, obstacles and bodies at their true
size, short trails, a step counter, touches and captures ringed, the arena drawn. Uses
the episodes recorded during training (`--source train`) or by `predprey simulate`.

  predprey animate runs/tag --env-index 3                 -> runs/tag/plots/env3_epK.gif
  predprey animate runs/tag --env-index 0 --episode 400 --out ep.mp4 --fps 20
  predprey animate runs/spread_local --set env.num_agents=80 --set env.num_landmarks=80

With `--set env.KEY=V` the run's policy first plays one new episode in that world (as
`predprey simulate --set ... --seed S` does, recorded as a `simulate` episode) and that
episode is animated: a policy trained on 4 agents, shown with 80. `--member K` (a
population run) likewise plays a new episode with member K's actors (training records
member 0's episodes only).
"""

from __future__ import annotations

import argparse
import sys

from predprey.commands import add_world_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    from predprey.policy import member_arg

    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--env-index", type=_nonneg, default=None, metavar="I",
                   help="environment (required unless --set)")  # fmt: skip
    p.add_argument(
        "--episode", type=_episode, default="latest", metavar="latest|K", help="which episode"
    )
    p.add_argument(
        "--source",
        choices=("train", "simulate"),
        default=None,
        help="episodes recorded in training or by `predprey simulate` "
        "(default: train if any were recorded)",
    )
    p.add_argument("--out", help="FILE.gif or FILE.mp4 (default: RUN/plots/env{I}_ep{K}.gif)")
    p.add_argument("--fps", type=float, default=10.0, help="frames (env steps) per second")
    p.add_argument("--seed", type=int, default=0, help="with --set: the new episode's start")
    p.add_argument("--policy", default="latest", choices=("latest", "best"),
                   help="with --set: latest checkpoint, or per team its best snapshot")  # fmt: skip
    p.add_argument("--member", type=member_arg, default=None, metavar="best|K",
                   help="population runs: play a new episode with member K's latest "
                        "actors (best: per team the fittest at the latest evaluation)")  # fmt: skip
    add_world_overrides(p)


def _nonneg(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {v}")
    return v


def _episode(s: str) -> int | str:
    return "latest" if s == "latest" else _nonneg(s)


def run(args: argparse.Namespace) -> int:
    from predprey.config import ConfigError
    from predprey.viz.animate import animate

    if args.overrides or args.member is not None:
        from predprey.commands.simulate import simulate

        sim = argparse.Namespace(run=args.run, policy=args.policy, seed=args.seed, episodes=1,
                                 env_index=0, num_envs=1, overrides=args.overrides,
                                 member=args.member)  # fmt: skip
        args.env_index, args.episode = 0, simulate(sim)["episode_numbers"][0]
        args.source = "simulate"
    elif args.env_index is None:
        raise ConfigError("--env-index is required (unless --set plays a new episode)")
    try:
        result = animate(
            args.run, args.env_index, args.episode, args.source, out=args.out, fps=args.fps
        )
    except ValueError as e:  # bad --out / --fps
        print(f"predprey animate: error: {e}", file=sys.stderr)
        return 2
    print(result.path)
    return 0
