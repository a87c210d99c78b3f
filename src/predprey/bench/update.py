"""Learner.update() latency on tag (mpe preset) batches, with a time split.

Prints one JSON line: median ms per update over `--updates` calls on random batches of the
scenario's transition layout, and the median split into backward, gradient clipping,
optimizer steps, target (Polyak) update and the rest (forward passes, input assembly).
Run as `predprey bench update [--twin] [--share]` or `python -m predprey.bench.update`.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager

from predprey.threads import limit_threads


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--updates", type=int, default=200, help="timed updates (after warm-up)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--twin", action="store_true", help="MATD3 flags (twin, delay 2, noise 0.2)")
    p.add_argument("--share", action="store_true", help="share parameters within a team")
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])


def random_batch(spec, batch: int, rng):
    import numpy as np

    out = {}
    for k, (shape, dtype) in spec.items():
        if k == "terminated":
            out[k] = (rng.random(batch) < 0.05).astype(dtype)
        elif k == "version":
            out[k] = np.zeros(batch, dtype=dtype)
        elif k.startswith("act/"):
            out[k] = rng.uniform(-1, 1, size=(batch, *shape)).astype(dtype)
        else:
            out[k] = rng.normal(size=(batch, *shape)).astype(dtype)
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import predprey.learn.maddpg as m
    from predprey.config import OffPolicyConfig
    from predprey.env import make
    from predprey.learn.spec import team_specs, transition_spec

    limit_threads(args.threads)
    teams = team_specs(make("tag", num_envs=1, preset="mpe"))
    matd3 = dict(twin_critics=True, policy_delay=2, target_noise=0.2) if args.twin else {}
    algo = OffPolicyConfig(
        hidden=tuple(args.hidden), batch_size=args.batch, share_params=args.share, **matd3
    )
    learner = m.Learner(teams, algo, seed=0)
    rng = np.random.default_rng(0)
    batches = [random_batch(transition_spec(teams), args.batch, rng) for _ in range(8)]

    spent: dict[str, float] = {}

    @contextmanager
    def timed(name):
        t0 = time.perf_counter()
        yield
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

    def wrap(fn, name):
        def inner(*a, **kw):
            with timed(name):
                return fn(*a, **kw)

        return inner

    # Time the phases by wrapping what update() calls; update() itself is unchanged.
    torch.Tensor.backward = wrap(torch.Tensor.backward, "backward")
    m.clip_grad_norm_per_model = wrap(m.clip_grad_norm_per_model, "clip")
    m.adam_step = wrap(m.adam_step, "optimizer")
    torch._foreach_lerp_ = wrap(torch._foreach_lerp_, "target")

    for i in range(20):  # warm-up
        learner.update(batches[i % len(batches)])
    totals, splits = [], []
    for i in range(args.updates):
        spent.clear()
        t0 = time.perf_counter()
        learner.update(batches[i % len(batches)])
        totals.append(time.perf_counter() - t0)
        splits.append(dict(spent))
    names = ["backward", "clip", "optimizer", "target"]
    split = {n: 1e3 * float(np.median([s.get(n, 0.0) for s in splits])) for n in names}
    rest = [t - sum(s.values()) for t, s in zip(totals, splits, strict=True)]
    split["forward_and_rest"] = 1e3 * float(np.median(rest))
    print(
        json.dumps(
            {
                "bench": "update",
                "ms_per_update": round(1e3 * float(np.median(totals)), 3),
                "ms_p90": round(1e3 * float(np.percentile(totals, 90)), 3),
                "split_ms_median": {k: round(v, 3) for k, v in split.items()},
                "batch": args.batch,
                "twin": args.twin,
                "share": args.share,
                "hidden": args.hidden,
                "threads": args.threads,
                "updates": args.updates,
            }
        )
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
