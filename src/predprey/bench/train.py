"""Training-loop throughput: env-steps/s and updates/s, single-process or with Ray runners.

  predprey bench train [--seconds 60] [--config configs/tag.yaml] [--set k=v]...
  predprey bench train --runners 0,1,2 [--seconds 20] [--sample-seconds 8] [--repeats 3]
  predprey bench train --population 1,2,4 [--runners K] [--seconds 60]

Without --runners (or with --runners 0) it runs the config's single-process loop (buffer
warm-up first, which is not counted) for --seconds of wall clock with evaluation,
checkpoints and recording off, and prints one JSON line: `env_steps_per_s`,
`updates_per_s` and the share of the counted time spent in env stepping, acting, buffer
adds/samples and learner updates.

With a list of runner counts it measures, for each count K (0 = the single-process loop,
with train.torch_threads or else 1 torch thread, as every Ray actor has),
`--repeats` times (the counts interleaved, so drifting load on a shared machine hits
them alike) and prints one JSON line per K with medians:
  sampling  env-steps/s with the learner idle: K=0 steps the single-process runner and
            adds to its replay buffer; K>=1 runs K runner actors whose transitions the
            buffer actor acknowledges (write-ahead log included), with no rate limit;
  training  env-steps/s and updates/s of the whole loop at the config's update-to-data
            ratio, counted from the first update (after the buffer warm-up) for --seconds;
plus `sampling_vs_single_process` and `sampling_vs_1_runner` (ratios of medians), the
CPU the sampling processes got (`sampling_cores`: runners, buffer actor, driver) and spent
per 1000 env steps (`sampling_cpu_ms_per_1k_steps`) and the load average (on a shared
machine these tell too few free cores from overhead), and then one `call_costs` line:
sizes and latencies of a weight broadcast (ray.put, runner pull and load) and of one
runner's transition push (ray.put, buffer insert).

With --population P1,P2,... it trains P independent members for --seconds each (in one
process, taking turns; with --runners K on Ray, each member K runner actors, a buffer
actor and a learner actor) and prints one line per size: env-steps/s and learner
updates/s of the whole population from its first update on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from predprey.threads import limit_threads


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"expected runner counts like 0,1,2, got {text!r}")
    return counts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=60.0,
                   help="wall clock of one training measurement, warm-up included")  # fmt: skip
    p.add_argument("--config", default="configs/tag.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    p.add_argument("--runners", type=_counts, default=None, metavar="K1,K2,...",
                   help="runner counts to compare (0 = single process), e.g. 0,1,2")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="measurements per runner count")
    p.add_argument("--sample-seconds", type=float, default=8.0,
                   help="wall clock of one sampling measurement")  # fmt: skip
    p.add_argument("--population", type=_counts, default=None, metavar="P1,P2,...",
                   help="population sizes to compare (independent members; in turn in one "
                        "process, or on Ray with --runners K each): env-steps/s and updates/s "
                        "of the whole population")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from predprey.config import load_config

    cfg = load_config(args.config, [*args.overrides, "train.record_envs=[]"])
    if args.population:
        return population_sizes(args)
    if args.runners and args.runners != [0]:
        if args.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
        for line in scaling(cfg, args):
            print(json.dumps(line), flush=True)
        return 0
    import torch

    if cfg.train.torch_threads > 0:
        limit_threads(cfg.train.torch_threads)
    prof = train_single(cfg, args.seconds)
    a = cfg.algo
    if a.name == "ppo":  # one rollout, then epochs x minibatches: no replay, no warm-up
        recipe = {"rollout_steps": a.rollout_steps, "epochs": a.epochs,
                  "minibatches": a.minibatches}  # fmt: skip
    else:
        recipe = {"batch_size": a.batch_size, "env_steps_per_update": a.env_steps_per_update,
                  "warmup_env_steps": cfg.buffer.warmup}  # fmt: skip
    line = {
        "bench": "train",
        "config": args.config,
        "algo": a.name,
        "num_envs": cfg.env.num_envs,
        "hidden": list(a.hidden),
        **recipe,
        "torch_threads": torch.get_num_threads(),
        **prof,
    }
    if prof["updates"] == 0:
        line["note"] = "no update ran: --seconds too short for the buffer warm-up"
    print(json.dumps(line))
    return 0


# -- single process ------------------------------------------------------------------
def train_single(cfg, seconds: float) -> dict[str, Any]:
    import tempfile

    from predprey.build import build
    from predprey.rundir import RunDir

    with tempfile.TemporaryDirectory(prefix="predprey-bench-") as tmp:
        loop = build(cfg, RunDir(tmp).create(), time_budget=seconds, checkpoints=False,
                     evals=False)  # fmt: skip
        return loop.run()["profile"]


def population_sizes(args) -> int:
    """`--population P1,P2,...`: P independent members each, in one process or (--runners
    K) on Ray."""
    from predprey.config import ConfigError, load_config

    runners = args.runners or [0]
    if min(args.population) < 1 or len(runners) != 1:
        raise ConfigError("--population takes sizes >= 1 and one runner count (--runners K)")
    K = runners[0]
    ray_info = None
    if K:
        from predprey.distributed.cluster import init_ray, local_cpus

        P = max(args.population)
        ray_info = init_ray("", local_cpus(P * K, P))
    try:
        for size in args.population:
            sets = [f"population.size={size}", "population.mode=independent"]
            cfg = load_config(args.config, [*args.overrides, "train.record_envs=[]", *sets])
            limit_threads(cfg.train.torch_threads or 1)
            prof = (
                train_population_ray(cfg, K, args.seconds) if K else train_single(cfg, args.seconds)
            )
            line = {"bench": "train", "config": args.config, "population": size, "runners": K}
            print(json.dumps({**line, **prof}), flush=True)
    finally:
        if ray_info is not None and ray_info.started_here:
            import ray

            ray.shutdown()
    return 0


def train_population_ray(cfg, runners: int, seconds: float) -> dict[str, Any]:
    """A population on Ray for `seconds` (its actors' start not counted); its profile."""
    import tempfile

    from predprey.build import build
    from predprey.rundir import RunDir

    with tempfile.TemporaryDirectory(prefix="predprey-bench-") as tmp:
        loop = build(
            cfg, RunDir(tmp).create(), runners=runners, time_budget=seconds, checkpoints=False,
            evals=False,
        )  # fmt: skip
        try:
            return loop.run()["profile"]
        finally:
            loop.close()


def sample_single(cfg, seconds: float) -> dict[str, Any]:
    """The single-process loop without its learner: act with the actors plus noise, step
    all envs, add the vector step to the replay buffer."""

    from predprey.learn.buffer import ReplayBuffer
    from predprey.runner import Runner
    from predprey.seeding import seed_streams

    env_seed, rng = seed_streams(cfg.train.seed)
    runner = Runner(cfg, env_seed)
    buffer = ReplayBuffer(cfg.buffer.capacity, runner.spec)
    noise = cfg.algo.exploration_noise
    buffer.add(runner.collect(25, noise, rng).transitions)  # compile and allocate first
    steps, t0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        res = runner.collect(1, noise, rng)
        buffer.add(res.transitions)
        steps += res.env_steps
    dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "env_steps_per_s": steps / dt,
        "seconds": dt,
        "env_steps": steps,
        "cores": {"process": cpu / dt},
        "cpu_ms_per_1k_steps": {"process": 1e6 * cpu / max(steps, 1)},
    }


# -- Ray runners ---------------------------------------------------------------------
def scaling(cfg, args) -> list[dict[str, Any]]:
    import tempfile

    from predprey.distributed.cluster import init_ray, local_cpus

    limit_threads(cfg.train.torch_threads or 1)  # as each runner and learner actor
    counts = list(dict.fromkeys(args.runners))
    info = init_ray("", local_cpus(max(counts)))
    import ray

    from predprey.build import build
    from predprey.distributed.driver import measure_sampling
    from predprey.rundir import RunDir

    samples: dict[int, list[dict]] = {k: [] for k in counts}
    trains: dict[int, list[dict]] = {k: [] for k in counts}
    costs: dict[str, Any] = {}
    try:
        for rep in range(args.repeats):
            for k in counts:
                if k == 0:
                    trains[k].append(train_single(cfg, args.seconds))
                    samples[k].append(_loaded(sample_single(cfg, args.sample_seconds)))
                    continue
                with tempfile.TemporaryDirectory(prefix="predprey-bench-") as tmp:
                    run = RunDir(tmp).create()
                    loop = build(cfg, run, runners=k, time_budget=args.seconds,
                                 checkpoints=False, evals=False)  # fmt: skip
                    try:
                        trains[k].append(loop.run()["profile"])
                        samples[k].append(_loaded(measure_sampling(loop, args.sample_seconds)))
                        if rep == 0 and not costs:
                            costs = call_costs(loop.source.fleet)
                    finally:
                        loop.close()
    finally:
        if info.started_here:
            ray.shutdown()
    lines = [_line(cfg, args, k, samples[k], trains[k]) for k in counts]
    by_k = {line["runners"]: line["sampling_env_steps_per_s"] for line in lines}
    for line in lines:
        for ref, key in ((0, "sampling_vs_single_process"), (1, "sampling_vs_1_runner")):
            if ref in by_k and line["runners"] != ref:
                line[key] = line["sampling_env_steps_per_s"] / by_k[ref]
    if costs:
        lines.append({"bench": "train_call_costs", "config": args.config, **costs})
    return lines


def _loaded(result: dict) -> dict:
    """The result plus the 1-minute load average (other processes share this machine)."""
    return {**result, "load_avg": os.getloadavg()[0]}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r.get(key, 0.0) for r in runs)


def _line(cfg, args, k: int, samples: list[dict], trains: list[dict]) -> dict[str, Any]:
    d = cfg.distributed
    line = {
        "bench": "train_scaling",
        "config": args.config,
        "runners": k,
        "repeats": len(samples),
        "envs_per_runner": (d.envs_per_runner or cfg.env.num_envs) if k else cfg.env.num_envs,
        "steps_per_call": d.steps_per_call if k else 1,
        "sampling_env_steps_per_s": _median(samples, "env_steps_per_s"),
        "train_env_steps_per_s": _median(trains, "env_steps_per_s"),
        "train_updates_per_s": _median(trains, "updates_per_s"),
        "sampling_runs": [round(r["env_steps_per_s"], 1) for r in samples],
        "train_runs": [
            [round(r.get("env_steps_per_s", 0.0), 1), round(r.get("updates_per_s", 0.0), 2)]
            for r in trains
        ],
    }
    # CPU the measured processes got (cores) and spent per 1000 env steps, while sampling:
    # on a shared machine this tells a lack of free cores from overhead.
    for key in ("cores", "cpu_ms_per_1k_steps"):
        line[f"sampling_{key}"] = {
            part: round(statistics.median(r[key][part] for r in samples), 3)
            for part in samples[0][key]
        }
    line["load_avg_1min"] = [round(r["load_avg"], 2) for r in samples]
    if k:  # share of the time runners / the learner spent inside their calls
        line["sampling_busy"] = {
            role: statistics.median(r["busy"][role] for r in samples) for role in ("runner",)
        }
        line["train_busy"] = {
            role: statistics.median(r.get("busy", {}).get(role, 0.0) for r in trains)
            for role in ("runner", "learner")
        }
    if any(r.get("updates", 0) == 0 for r in trains):
        line["note"] = "a training measurement had no update: --seconds too short for warm-up"
    return line


def call_costs(fleet, repeats: int = 20) -> dict[str, Any]:
    """Sizes and median latencies (ms) of the two per-call transfers of a distributed run:
    the learner's weight broadcast and one runner's transition push."""
    import pickle

    import numpy as np
    import ray

    def ms(fn) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(1e3 * (time.perf_counter() - t0))
        return float(np.median(times))

    slot = fleet.slots[0]
    weights = ray.get(fleet.weights_ref)
    noop = ms(lambda: ray.get(slot.handle.pid.remote()))
    put = ms(lambda: ray.put(weights))
    pull = ms(lambda: ray.get(slot.handle.set_weights.remote(ray.put(weights), 0)))
    load = 1e3 * float(
        np.median(ray.get([slot.handle.set_weights.remote(weights, 0) for _ in range(5)]))
    )

    steps = fleet.config.distributed.steps_per_call
    trans_ref, _ = slot.handle.collect.remote(steps, 0.0, False, 0)
    batch = ray.get(trans_ref)
    insert_ids = iter(range(10**9, 2 * 10**9))
    ray.get(fleet.buffer.add.remote([next(insert_ids)], batch))  # first insert allocates
    push = ms(lambda: ray.get(fleet.buffer.add.remote([next(insert_ids)], ray.put(batch))))
    return {
        "weights_bytes": int(sum(a.nbytes for team in weights.values() for a in team.values())),
        "weights_pickled_bytes": len(pickle.dumps(weights)),
        "weights_put_ms": put,
        "weights_pull_ms": pull,  # put + runner call that fetches and loads them
        "weights_load_ms": load,  # load_state_dict inside the runner
        "noop_call_ms": noop,  # an empty actor call's round trip
        "transitions_rows": len(batch["terminated"]),  # packed: each observation once
        "transitions_bytes": int(sum(v.nbytes for v in batch.values())),
        "transitions_put_ms": ms(lambda: ray.put(batch)),
        "transitions_push_ms": push,  # put + buffer insert, acknowledged (write-ahead log)
        "wal": fleet.config.distributed.wal,
        "repeats": repeats,
    }
