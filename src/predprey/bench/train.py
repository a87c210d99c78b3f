"""Training-loop throughput: env-steps/s and updates/s of the single-process loop.

  predprey bench train [--seconds 60] [--config configs/tag.yaml] [--set k=v]...

Runs the config's loop (buffer warm-up first, which is not counted) for --seconds of
wall clock with evaluation, checkpoints and recording off, and prints one JSON line:
`env_steps_per_s`, `updates_per_s` and the share of the counted time spent in env
stepping, acting, buffer adds/samples and learner updates.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=60.0, help="wall clock, warm-up included")
    p.add_argument("--config", default="configs/tag.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")


def run(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from predprey.config import load_config
    from predprey.rundir import RunDir
    from predprey.train import Trainer

    cfg = load_config(args.config, [*args.overrides, "train.record_envs=[]"])
    if cfg.train.torch_threads > 0:
        torch.set_num_threads(cfg.train.torch_threads)
    with tempfile.TemporaryDirectory(prefix="predprey-bench-") as tmp:
        trainer = Trainer(
            cfg, RunDir(tmp).create(), time_budget=args.seconds, checkpoints=False, evals=False
        )
        result = trainer.run()
    prof = result["profile"]
    a = cfg.algo
    line = {
        "bench": "train",
        "config": args.config,
        "num_envs": cfg.env.num_envs,
        "batch_size": a.batch_size,
        "hidden": list(a.hidden),
        "env_steps_per_update": a.env_steps_per_update,
        "torch_threads": torch.get_num_threads(),
        "warmup_env_steps": cfg.buffer.warmup,
        **prof,
    }
    if prof["updates"] == 0:
        line["note"] = "no update ran: --seconds too short for the buffer warm-up"
    print(json.dumps(line))
    return 0
