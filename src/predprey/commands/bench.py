"""Measure throughput; prints one JSON line per measurement.

predprey bench env      vectorized env steps/s and bytes per env for several numbers of envs
predprey bench train    training loop env-steps/s and updates/s
predprey bench buffer   HTTP replay-buffer ingest and sample latency
predprey bench update   MADDPG update and PPO minibatch step latency v their matmul floor
predprey bench jaxmarl  PPO v JaxMARL IPPO on spread-3, the same wall clock, one plot
predprey bench ablation PPO trajectory separation: agent v group v team, to a fixed score
predprey bench chaos    train on Ray killing a random actor every few seconds, v undisturbed
predprey bench world    the default recipe on a PettingZoo world: learned teams v random teams
predprey bench imitate  how well each actor network imitates a scripted controller (R^2)
"""

from __future__ import annotations

import argparse
import importlib

TARGETS = {
    "env": "predprey.bench.env",
    "train": "predprey.bench.train",
    "buffer": "predprey.bench.buffer",
    "update": "predprey.bench.update",
    "jaxmarl": "predprey.bench.jaxmarl",
    "ablation": "predprey.bench.ablation",
    "chaos": "predprey.bench.chaos",
    "world": "predprey.bench.world",
    "imitate": "predprey.bench.imitate",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="target", metavar="TARGET")
    sub.required = True
    for name, module in TARGETS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        q = sub.add_parser(name, help=(mod.__doc__ or name).strip().splitlines()[0])
        mod.add_arguments(q)
        q.set_defaults(_bench=mod.run)


def run(args: argparse.Namespace) -> int:
    return int(args._bench(args) or 0)
