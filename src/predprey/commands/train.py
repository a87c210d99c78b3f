"""Train predators and prey from a config file (one process, or Ray with --runners K).

  predprey train --config configs/tag.yaml --out runs/tag [--set algo.batch_size=512]
                 [--seed S] [--time-budget SECONDS] [--overwrite] [--quiet]
  predprey train --resume runs/tag [--time-budget SECONDS] [--set train.total_env_steps=N]

The run directory receives the resolved config.yaml, metrics.jsonl, TensorBoard events
(tb/), checkpoints/ (at train.checkpoint_every seconds and at the end) and recorded
episodes/. --resume continues from the latest checkpoint: weights, optimizers, replay
buffer, RNG states and counters.

--runners K starts a private local Ray instance (dashboard off, bound to 127.0.0.1) with
K runner actors, a replay-buffer actor and a learner actor; --address HOST:PORT runs them
on an existing Ray cluster (`ray start --head` / `ray start --address`; trusted networks
only). Crashed actors are restarted; --resume continues a distributed run with its runners.

A config with a `population` section (configs/tag_population.yaml) trains P members in
this process, taking turns, with genetic critic sync or evolutionary selection between
them (predprey.population); with --runners K each member trains on Ray with K runner
actors, a buffer actor and a learner actor of its own (predprey.distributed.population).
--resume restores the whole population.

With algo.name ppo, --runners K starts K runner actors that return rollouts; the learner
runs in this process (predprey.distributed.onpolicy).

--buffer-url URL learns from an HTTP replay buffer (`predprey serve-buffer`) fed by
`predprey run-env` processes, and publishes the actor weights to it (PUT /policy/{team});
`--resume RUN --buffer-url URL` continues such a run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from predprey.config import ConfigError

# What a resume may change: where the run ends, not what it learns.
RESUME_OVERRIDES = ("train.total_env_steps",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file (see configs/)")
    p.add_argument("--out", help="run directory to create, e.g. runs/tag")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=V",
                   help="override one config value (repeatable; with --resume only "
                        "train.total_env_steps, to train a run further)")  # fmt: skip
    p.add_argument("--seed", type=int, help="overrides train.seed")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop after this much wall clock (this session)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--runners", type=int, default=0,
                   help="Ray runner actors (0 = single process)")  # fmt: skip
    p.add_argument("--address", default="", help="join an existing Ray cluster at HOST:PORT")
    p.add_argument("--buffer-url", default="",
                   help="learn from `predprey serve-buffer` here (fed by `run-env`)")  # fmt: skip
    p.add_argument("--token", default=None,
                   help="token of --buffer-url (default: $PREDPREY_BUFFER_TOKEN)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from predprey.config import dump_config, load_config
    from predprey.rundir import RunDir

    client = None
    if args.buffer_url:  # fail before any run directory is written
        from predprey.service.remote_train import connect

        if args.runners or args.address:
            raise ConfigError("--buffer-url and --runners/--address are alternatives; give one")
        client = connect(args.buffer_url, args.token, new_run=not args.resume)
    if args.runners < 0:  # before any run directory is written
        raise ConfigError(f"--runners must be >= 0, got {args.runners}")
    if args.resume:
        if args.config or args.out or args.seed is not None:
            raise ConfigError("--resume takes its config from the run; drop --config/--out/--seed")
        for override in args.overrides:
            if override.partition("=")[0].strip() not in RESUME_OVERRIDES:
                raise ConfigError(
                    f"--resume takes its config from the run; --set {override} would change "
                    f"what it learns (only {', '.join(RESUME_OVERRIDES)} may be set)"
                )
        run_dir = RunDir(args.resume).require()
        config = load_config(run_dir.config_path, args.overrides)
        _check_population(config, args)
        _check_on_policy(config, args)
        if args.overrides:
            dump_config(config, run_dir.config_path)  # later resumes keep the new end
    else:
        if not args.config or not args.out:
            raise ConfigError("give --config FILE and --out RUN_DIR (or --resume RUN_DIR)")
        overrides = list(args.overrides)
        if args.seed is not None:
            overrides.append(f"train.seed={args.seed}")
        if args.time_budget is not None:
            overrides.append(f"train.time_budget={args.time_budget}")
        if args.runners:
            overrides.append(f"distributed.runners={args.runners}")
        config = load_config(args.config, overrides)
        _check_population(config, args)
        _check_on_policy(config, args)
        run_dir = RunDir(args.out)
        _prepare(run_dir.path, args.overwrite)
        run_dir.path.mkdir(parents=True, exist_ok=True)
        dump_config(config, run_dir.config_path)
        run_dir.create()

    from predprey.build import train

    runners = args.runners or config.distributed.runners  # a resumed run keeps its runners
    try:
        result = train(
            config, run_dir, resume=bool(args.resume), runners=runners, address=args.address,
            client=client, url=args.buffer_url, time_budget=args.time_budget,
            progress=not args.quiet,
        )  # fmt: skip
    except RuntimeError as e:
        if runners > 0:
            from predprey.distributed.fleet import RestartsExhausted

            if isinstance(e, RestartsExhausted):  # a clear stop, not a crash: one line
                print(f"predprey train: error: {e}", file=sys.stderr)
                return 1
        raise
    keys = ("env_steps", "updates", "episodes", "time", "eval", "best_member", "restarts")
    summary = {k: result[k] for k in keys if k in result}
    print(json.dumps({"run": str(run_dir.path), **summary}))
    return 0


def _check_population(config, args) -> None:
    """A population trains in one process or on Ray (each member its own actors and
    replay), not from the HTTP buffer."""
    pop = config.population
    if pop is None:
        return
    if args.buffer_url:
        raise ConfigError(
            "a population trains its members' own runners (one process or --runners K); "
            "drop --buffer-url"
        )
    if pop.share_buffer and (args.runners or config.distributed.runners):
        from predprey.config.population import SHARE_BUFFER_ON_RAY

        raise ConfigError(SHARE_BUFFER_ON_RAY)


def _check_on_policy(config, args: argparse.Namespace) -> None:
    """PPO learns from its own rollouts: one process or Ray runners, not the HTTP buffer."""
    if config.algo.name == "ppo" and args.buffer_url:
        raise ConfigError(
            "algo.name ppo learns on-policy from its own runners, not from an HTTP replay "
            "buffer; drop --buffer-url (one process, or --runners K on Ray)"
        )


def _prepare(path: Path, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless --overwrite; never delete a non-run folder."""
    from predprey.rundir import RunDirError

    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{path} exists and is not a predprey run; choose another --out")
    if not overwrite:
        raise RunDirError(
            f"run directory {path} already exists; pass --overwrite to replace it "
            f"or --resume {path} to continue it"
        )
    shutil.rmtree(path)
