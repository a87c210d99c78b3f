"""The `predprey` command: a thin front door. Each subcommand lives in its own module
(`predprey.commands.<name>` with `add_arguments(parser)` and `run(args) -> int`)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from predprey.config import ConfigError
from predprey.rundir import RunDirError

# subcommand -> (module, one-line help)
COMMANDS = {
    "train": ("predprey.commands.train", "train predators and prey from a config file"),
    "evaluate": ("predprey.commands.evaluate", "evaluate a run against scripted or learned teams"),
    "simulate": ("predprey.commands.simulate", "simulation mode: latest policy, random starts"),
    "plot": ("predprey.commands.plot", "plot losses, returns and throughput of runs to a PNG"),
    "animate": ("predprey.commands.animate", "animate one recorded environment to GIF/MP4"),
    "view": ("predprey.commands.view", "watch a run live in the browser"),
    "serve-buffer": ("predprey.commands.serve_buffer", "replay buffer as an HTTP service"),
    "run-env": ("predprey.commands.run_env", "run environments that feed an HTTP replay buffer"),
    "bench": ("predprey.commands.bench", "measure env, training or buffer throughput"),
    "scripted": ("predprey.commands.scripted", "scripted predators v scripted prey (no learning)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predprey", description="Multi-agent predator-prey training (MADDPG, MATD3)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:  # not written yet / not installed: leave it out
                continue
            raise
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that spin while waiting make torch 10-50x slower when other processes
    # share the cores (measured on a loaded 2-core machine); passive waiting costs ~10%
    # on an idle one. Set before torch loads; an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ConfigError, RunDirError) as e:
        print(f"predprey {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"predprey {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
