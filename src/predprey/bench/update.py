"""Learner.update() and PPO minibatch-step latency on tag (mpe preset), v their matmul floor.

Prints one JSON line per learner, then a table (stderr):
- MADDPG/MATD3: median ms per update over `--updates` calls on random batches of the
  scenario's transition layout, the median split into backward, gradient clipping,
  optimizer steps, target (Polyak) update and the rest (forward passes, input assembly);
- PPO: median ms per `PPOLearner.update` on random minibatches of `--ppo-rows` rows
  (configs/tag_ppo.yaml: 1,024 envs x 32 steps / 64 minibatches = 512);
and for each its matmul floor (`predprey.bench.floor`): the same matrix products, captured
from the step itself, timed back to back on preallocated tensors, in the same loop as the
step (alternating, so a busy machine slows both alike), and the ratio step / floor;
also in CPU time of the calling thread (cpu_*; with --threads 1 all the work is on it): on a
shared machine that leaves out the time spent waiting for a core.
`--config` (with `--set`) takes the scenario and learner from a config instead, e.g. the
attention networks of configs/spread_attention.yaml; `--versus mlp` then also alternates its
updates with those of the same learner built with `algo.network: mlp`, in one loop (one more
JSON line: CPU ms per update of each and their ratio).
Run as `predprey bench update [--twin] [--share]` or `python -m predprey.bench.update`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from contextlib import contextmanager

from predprey.threads import limit_threads


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--updates", type=int, default=200, help="timed updates (after warm-up)")
    p.add_argument("--batch", type=int, default=None, help="rows (default: the config's, 1024)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--twin", action="store_true", help="MATD3 flags (twin, delay 2, noise 0.2)")
    p.add_argument("--share", action="store_true", help="share parameters within a team")
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="default: 64 64")
    p.add_argument("--config", default=None, help="scenario and learner from this config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=V",
                   help="override a key of --config, e.g. algo.network=attention")  # fmt: skip
    p.add_argument(
        "--versus",
        default=None,
        metavar="NETWORK",
        help="also alternate with algo.network=NETWORK's updates (e.g. mlp)",
    )
    p.add_argument("--ppo-rows", type=int, default=512, help="PPO minibatch rows (0: skip PPO)")
    p.add_argument("--ppo-critic", choices=("local", "central"), default="local")


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


def _median_ms(xs) -> float:
    import numpy as np

    return round(1e3 * float(np.median(xs)), 3)


def versus_floor(step, block: int, repeats: int, warmup: int) -> dict:
    """Median seconds of `step()` (`block` calls: one MATD3 cycle of the policy delay) and
    of its matmul floor, per call, alternating the two `repeats` times; the split of each
    timed block comes back from `step()` as a dict of seconds."""
    from predprey.bench.floor import MatmulFloor, capture

    for _ in range(warmup):
        step()
    floor = MatmulFloor(capture(lambda: [step() for _ in range(block)]))
    for _ in range(warmup):
        floor.run()
    totals, floors, splits, cpu, cpu_floor = [], [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        split = {}
        for _ in range(block):
            for k, v in (step() or {}).items():
                split[k] = split.get(k, 0.0) + v
        totals.append((time.perf_counter() - t0) / block)
        cpu.append((time.thread_time() - c0) / block)
        splits.append({k: v / block for k, v in split.items()})
        t0, c0 = time.perf_counter(), time.thread_time()
        floor.run()
        floors.append((time.perf_counter() - t0) / block)
        cpu_floor.append((time.thread_time() - c0) / block)
    ms, floor_ms = _median_ms(totals), _median_ms(floors)
    cpu_ms, cpu_floor_ms = _median_ms(cpu), _median_ms(cpu_floor)
    return {
        "ms_per_update": ms,
        "ms_p90": round(1e3 * float(sorted(totals)[int(0.9 * (len(totals) - 1))]), 3),
        "floor_ms": floor_ms,
        "update_over_floor": round(ms / floor_ms, 2),
        "cpu_ms_per_update": cpu_ms,
        "cpu_floor_ms": cpu_floor_ms,
        "cpu_update_over_floor": round(cpu_ms / cpu_floor_ms, 2),
        "matmuls_per_update": round(len(floor.products) / block, 1),
        "matmul_mflop_per_update": round(floor.flop / block / 1e6, 2),
        "floor_gflop_per_s": round(floor.flop / block / (floor_ms * 1e-3) / 1e9, 1),
        "_splits": splits,
        "_top": floor.by_shape()[:4],
    }


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np
    import torch

    import predprey.learn.maddpg as m
    from predprey.learn.optim import StackedAdam
    from predprey.learn.spec import transition_spec

    limit_threads(args.threads)
    teams, algo = scenario(args)
    args.batch, args.hidden, args.share = algo.batch_size, list(algo.hidden), algo.share_params
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
    # (learn.maddpg clips and steps: StackedAdams for MLPs, adam_step for attention networks)
    originals = (torch.Tensor.backward, m.clip_grad_norm_per_model, StackedAdam.step,
                 m.adam_step, torch._foreach_lerp_)  # fmt: skip
    torch.Tensor.backward = wrap(torch.Tensor.backward, "backward")
    m.clip_grad_norm_per_model = wrap(m.clip_grad_norm_per_model, "clip")
    StackedAdam.step = wrap(StackedAdam.step, "optimizer")
    m.adam_step = wrap(m.adam_step, "optimizer")
    torch._foreach_lerp_ = wrap(torch._foreach_lerp_, "target")
    calls = iter(range(1 << 62))

    def maddpg_step():
        spent.clear()
        t0 = time.perf_counter()
        learner.update(batches[next(calls) % len(batches)])
        return {**spent, "total": time.perf_counter() - t0}

    block = algo.policy_delay
    res = versus_floor(maddpg_step, block, max(1, args.updates // block), warmup=20)
    (torch.Tensor.backward, m.clip_grad_norm_per_model, StackedAdam.step,
     m.adam_step, torch._foreach_lerp_) = originals  # fmt: skip
    splits = res.pop("_splits")
    names = ["backward", "clip", "optimizer", "target"]
    split = {n: 1e3 * float(np.median([s.get(n, 0.0) for s in splits])) for n in names}
    rest = [s["total"] - sum(v for k, v in s.items() if k != "total") for s in splits]
    split["forward_and_rest"] = 1e3 * float(np.median(rest))
    lines = [{
        "bench": "update",
        "algo": "matd3" if algo.twin_critics else "maddpg",
        "network": algo.network,
        "config": args.config,
        **res,
        "split_ms_median": {k: round(v, 3) for k, v in split.items()},
        "batch": args.batch,
        "twin": algo.twin_critics,
        "share": args.share,
        "hidden": args.hidden,
        "threads": args.threads,
        "updates": args.updates,
    }]  # fmt: skip
    if args.ppo_rows > 0:
        lines.append({
            "bench": "update",
            "algo": "ppo",
            "network": algo.network,
            **ppo_versus_floor(teams, algo, args, rng),
            "rows": args.ppo_rows,
            "critic": args.ppo_critic,
            "share": args.share,
            "hidden": args.hidden,
            "threads": args.threads,
            "updates": args.updates,
        })  # fmt: skip
    for line in lines:
        top = line.pop("_top")
        print(json.dumps(line), flush=True)
        line["_top"] = top
    print(table(lines), file=sys.stderr)
    if args.versus:
        other = m.Learner(teams, dataclasses.replace(algo, network=args.versus), seed=0)
        step = {algo.network: learner.update, args.versus: other.update}
        cpu = alternate(step, batches, args.updates, warmup=20)
        print(json.dumps({
            "bench": "update_versus",
            "config": args.config,
            "cpu_ms_per_update": cpu,
            "ratio": round(cpu[algo.network] / cpu[args.versus], 2),
            "batch": args.batch,
            "threads": args.threads,
            "updates": args.updates,
        }), flush=True)  # fmt: skip
    return 0


def scenario(args: argparse.Namespace):
    """(teams, OffPolicyConfig): tag (mpe preset) with the flags' learner, or --config's
    scenario and learner (--set applied), the flags given on top."""
    from predprey.config import ConfigError, OffPolicyConfig, load_config
    from predprey.env import make
    from predprey.learn.spec import team_specs

    if args.config is None:
        if args.overrides or args.versus:
            raise ConfigError("bench update: --set and --versus need --config")
        teams, algo = team_specs(make("tag", num_envs=1, preset="mpe")), OffPolicyConfig()
    else:
        cfg = load_config(args.config, args.overrides)
        if not isinstance(cfg.algo, OffPolicyConfig):
            raise ConfigError(f"bench update --config: {args.config} is not an off-policy config")
        teams, algo = team_specs(cfg.env.make(num_envs=1, seed=0)), cfg.algo
    flags = {
        "hidden": tuple(args.hidden) if args.hidden else None,
        "batch_size": args.batch,
        "share_params": True if args.share else None,
        **(dict(twin_critics=True, policy_delay=2, target_noise=0.2) if args.twin else {}),
    }
    return teams, dataclasses.replace(algo, **{k: v for k, v in flags.items() if v is not None})


def alternate(steps: dict, batches: list, updates: int, warmup: int) -> dict[str, float]:
    """Median CPU ms (of this thread) per update of each learner's `update`, the learners'
    updates alternating on the same batches: a busy machine slows them alike."""
    import numpy as np

    for k in range(warmup):
        for step in steps.values():
            step(batches[k % len(batches)])
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for k in range(updates):
        for name, step in steps.items():
            c0 = time.thread_time()
            step(batches[k % len(batches)])
            cpu[name].append(time.thread_time() - c0)
    return {name: round(1e3 * float(np.median(xs)), 3) for name, xs in cpu.items()}


def ppo_versus_floor(teams, net, args: argparse.Namespace, rng) -> dict:
    """PPOLearner.update on random minibatches of args.ppo_rows rows v its matmul floor (the
    networks of `net`, the off-policy learner's config)."""
    import torch

    from predprey.config import PPOConfig
    from predprey.learn.ppo import PPOLearner

    algo = PPOConfig(hidden=net.hidden, share_params=net.share_params, critic=args.ppo_critic,
                     network=net.network, attention_dim=net.attention_dim,
                     attention_heads=net.attention_heads)  # fmt: skip
    learner = PPOLearner(teams, algo, seed=0)
    B, A = args.ppo_rows, sum(t.n_agents for t in learner.trained)

    def minibatch():
        def f32(*shape):
            return torch.from_numpy(rng.normal(size=shape).astype("float32"))

        mb = {f"obs/{t.name}": f32(B, t.n_agents, t.obs_dim) for t in teams}
        mb.update(act=f32(B, A, 2), logp=f32(B, A) - 2.0, adv=f32(B, A), ret=f32(B, A),
                  value=f32(B, A), own=torch.ones(B, A))  # fmt: skip
        return mb

    mbs = [minibatch() for _ in range(8)]
    calls = iter(range(1 << 62))
    res = versus_floor(lambda: learner.update(mbs[next(calls) % len(mbs)]) and None, 1,
                       args.updates, warmup=20)  # fmt: skip
    res.pop("_splits")
    return res


def table(lines: list[dict]) -> str:
    """The JSON lines as a readable table, with each learner's largest products."""
    head = (
        f"{'learner':8} {'ms/update':>10} {'floor ms':>9} {'ratio':>6} {'matmuls':>8} "
        f"{'MFLOP':>7} {'floor GFLOP/s':>13} {'cpu ms':>7} {'cpu floor':>9} {'cpu ratio':>9}"
    )
    rows = [head, "-" * len(head)]
    for x in lines:
        rows.append(
            f"{x['algo']:8} {x['ms_per_update']:10.3f} {x['floor_ms']:9.3f} "
            f"{x['update_over_floor']:6.2f} {x['matmuls_per_update']:8.0f} "
            f"{x['matmul_mflop_per_update']:7.1f} {x['floor_gflop_per_s']:13.1f} "
            f"{x['cpu_ms_per_update']:7.3f} {x['cpu_floor_ms']:9.3f} "
            f"{x['cpu_update_over_floor']:9.2f}"
        )
    for x in lines:
        rows.append(f"{x['algo']}: largest products (count, MFLOP per captured step)")
        rows += [f"  {key:70} {n:3d} {f / 1e6:7.2f}" for key, n, f in x["_top"]]
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
