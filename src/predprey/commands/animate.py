"""Animate one recorded environment, chosen by its index, to a GIF or MP4.

Predators and prey in distinct colours and markers, obstacles and bodies at their true
size, short trails, a step counter, touches and captures ringed, the arena drawn. Uses
the episodes recorded during training (`--source train`) or by `predprey simulate`.

  predprey animate runs/tag --env-index 3                 -> runs/tag/plots/env3_epK.gif
  predprey animate runs/tag --env-index 0 --episode 400 --out ep.mp4 --fps 20
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--env-index", type=_nonneg, required=True, metavar="I", help="environment")
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
    from predprey.viz.animate import animate

    try:
        result = animate(
            args.run, args.env_index, args.episode, args.source, out=args.out, fps=args.fps
        )
    except ValueError as e:  # bad --out / --fps
        print(f"predprey animate: error: {e}", file=sys.stderr)
        return 2
    print(result.path)
    return 0
