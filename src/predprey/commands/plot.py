"""Plot losses, returns, touches and throughput of one or more runs to one PNG.

Reads only RUN/metrics.jsonl, so it works on a run that is still training. Panels
appear for the metric families present (critic/actor loss per team, returns per team,
touches per episode, throughput); several runs are overlaid with a legend by run name.

  predprey plot runs/tag                       -> runs/tag/plots/metrics.png
  predprey plot runs/a runs/b --out cmp.png --x time --smooth 10
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--out", help="PNG file (default: RUN/plots/metrics.png of the first run)")
    p.add_argument(
        "--x", choices=("steps", "time"), default="steps", help="x axis: env steps or wall time"
    )
    p.add_argument(
        "--smooth",
        type=_window,
        default=None,
        metavar="W",
        help="moving-average window in logged points (default: about 1/20 of the points; 1 = off)",
    )


def _window(s: str) -> int:
    try:
        w = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}") from None
    if w < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {w}")
    return w


def run(args: argparse.Namespace) -> int:
    from predprey.viz.plot import write_plot

    result = write_plot(args.runs, out=args.out, x=args.x, smooth=args.smooth)
    print(result.path)
    return 0
