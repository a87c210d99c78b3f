"""Run environments that feed an HTTP replay buffer (the original env service, fast).

  predprey run-env --buffer-url http://127.0.0.1:8000 --config configs/tag.yaml
                   [--token T] [--seed S] [--time-budget SECONDS] [--max-env-steps N]

Steps the config's vector environments in this process, POSTs every transition to
`predprey serve-buffer` (POST /record_data/, keys "State", "Action", "Reward",
"Next State", "Done"; every agent of every team side by side in one row), and fetches
the actor weights from GET /policy/{team} whenever their version changes. Until every
team has a published policy it acts uniformly at random (buffer warm-up). Run
`predprey train --buffer-url URL` beside it to learn from the rows and publish weights.
Every env process keeps to the learner's pace (the config's samples-per-insert ratio,
`distributed.insert_slack` env steps of slack): after `buffer.warmup` rows it waits
for a learner to publish (`waits` counts such rounds); --no-rate-limit runs free.
Progress lines go to stderr; a final JSON line (env_steps, policy_version, waits, ...)
to stdout. SIGTERM ends the loop cleanly. Without --seed every process draws its own.
"""

from __future__ import annotations

import argparse
import json
import signal

from predprey.config import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--buffer-url", required=True, help="URL of `predprey serve-buffer`")
    p.add_argument("--config", required=True, help="YAML config file (its env section)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=V",
                   help="override one config value (repeatable)")  # fmt: skip
    p.add_argument("--token", default=None,
                   help="bearer token of the buffer (default: $PREDPREY_BUFFER_TOKEN)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="env and noise seed (default: random)")
    p.add_argument("--time-budget", type=float, default=0.0, metavar="SECONDS",
                   help="stop after this much wall clock (0 = no limit)")  # fmt: skip
    p.add_argument("--max-env-steps", type=int, default=0,
                   help="stop after posting this many transitions (0 = no limit)")  # fmt: skip
    p.add_argument("--steps-per-post", type=int, default=0,
                   help="vector steps per POST (default: distributed.steps_per_call)")  # fmt: skip
    p.add_argument("--no-rate-limit", action="store_true",
                   help="never wait for the learner (samples-per-insert ratio)")  # fmt: skip
    p.add_argument("--retry-seconds", type=float, default=30.0,
                   help="how long to retry an unreachable buffer before giving up")  # fmt: skip
    p.add_argument("--report-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines (and one at every new policy)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from predprey.config import load_config
    from predprey.service.client import BufferClient
    from predprey.service.env_loop import EnvFeeder
    from predprey.service.errors import service_errors
    from predprey.threads import limit_threads

    if args.time_budget < 0 or args.max_env_steps < 0 or args.steps_per_post < 0:
        raise ConfigError("--time-budget, --max-env-steps and --steps-per-post must be >= 0")
    config = load_config(args.config, args.overrides)
    if config.algo.name == "ppo":
        raise ConfigError("run-env feeds a replay buffer; algo.name ppo learns on-policy from none")
    limit_threads(config.train.torch_threads or 1)  # small actors: one thread acts best
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**63)
    steps = args.steps_per_post or config.distributed.steps_per_call
    client = BufferClient(args.buffer_url, args.token, retry_seconds=args.retry_seconds)
    with client, service_errors(args.buffer_url):
        feeder = EnvFeeder(config, client, seed, steps, rate_limit=not args.no_rate_limit)
        feeder.check_server(args.buffer_url)
        signal.signal(signal.SIGTERM, lambda *_: feeder.stop())
        result = feeder.run(args.time_budget, args.max_env_steps, args.report_every)
    print(json.dumps({"seed": seed, **result.to_dict()}), flush=True)
    return 0
