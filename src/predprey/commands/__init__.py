"""The CLI's subcommands, one module each."""

import argparse


def add_world_overrides(p: argparse.ArgumentParser) -> None:
    """`--set env.KEY=V` of the commands that run a trained policy (evaluate, simulate,
    animate, view)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="env.KEY=V",
                   help="run in another world, e.g. env.num_agents=80 (repeatable; shared "
                        "networks on obs local transfer to any number of agents)")  # fmt: skip
