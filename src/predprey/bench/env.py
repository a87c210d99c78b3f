"""Vectorized env throughput: env-steps/s for several numbers of environments.

Prints one JSON line per number of environments. Each run draws uniform random actions in
[-1, 1] for every agent every step inside the timed loop (as a policy would hand them over),
steps for --seconds of wall time and counts env-steps (one step of one environment).
Single thread: the numba kernels are serial and the NumPy operations in a step are elementwise
(no BLAS), so one core does all the work.

env_steps_per_cpu_s divides by the CPU time of the stepping thread instead of wall time: on a
shared machine it leaves out the time the process waited for a core.

Memory, per environment:
  rss_bytes_per_env          growth of the resident set size (/proc/self/statm; peak RSS from
                             getrusage where /proc is missing) from before creating the env to
                             after the timed loop, divided by num_envs;
  peak_alloc_bytes_per_env   peak of the bytes NumPy allocated (tracemalloc) while creating the
                             env and stepping it through two episodes, divided by num_envs.
  state_bytes_per_env        the world state's arrays (positions, velocities, landmarks,
                             step counter, alive flags), divided by num_envs;
  step_bytes_per_env         the arrays one step hands back (observations, rewards, flags,
                             info), divided by num_envs;
  scratch_bytes_per_env      the fused kernel's scratch per env of a tile (null on the generic
                             path, whose NumPy temporaries peak_alloc_bytes_per_env counts);
  tile_bytes                 tile_envs x (state + step + scratch bytes per env): the working
                             set of one tile, which tiled stepping keeps in the core's cache.
Kernels are compiled (or loaded from numba's cache) before anything is measured.

--rounds R splits each size's --seconds into R rounds in which the sizes take turns, and
reports the median rates over the rounds (a shared machine's load then hits every size alike).
--tile T steps the envs in tiles of T (default: VecEnv's TILE_ENVS; 0: all envs at once).

--agents N1,N2,... measures each number of agents (at --num-envs, default 64 with --agents):
spread gets num_agents = N (landmarks follow), tag N - N//4 predators and N//4 prey; unless
env.density is set, density 1 keeps the agents per unit area fixed as N grows.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,64,1024, got {text!r}")
    return sizes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-envs", type=_sizes, default=None, metavar="E1,E2,...",
                   help="numbers of environments to measure (default 1,64,1024,8192; "
                        "64 with --agents)")  # fmt: skip
    p.add_argument(
        "--agents",
        type=_sizes,
        default=None,
        metavar="N1,N2,...",
        help="numbers of agents to measure (spread: agents; tag: predators + prey)",
    )
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per size")
    p.add_argument("--scenario", default="tag", help="scenario name (default tag)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="env.KEY=VALUE",
                   help="scenario parameter, e.g. --set env.preset=seed (repeatable)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=1,
                   help="split --seconds into this many rounds, the sizes taking turns; "
                        "rates are the medians over the rounds")  # fmt: skip
    p.add_argument("--tile", type=int, default=None, metavar="T",
                   help="envs per tile (default: TILE_ENVS; 0: all envs at once)")  # fmt: skip


def rss_bytes() -> int:
    """Current resident set size (Linux); elsewhere the peak RSS so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def random_actions(env, rng) -> dict:
    """Uniform random actions in [-1, 1] for every agent: {team: [E, n_team, act_dim] float64}
    (forces in our worlds; a PettingZoo world's Box or Discrete scores)."""
    return {
        t: rng.uniform(-1.0, 1.0, size=(env.num_envs, env.team_sizes[t], env.act_dims[t]))
        for t in env.teams
    }


def make_env(env_cfg, num_envs: int, seed: int, tile: int | None):
    env = env_cfg.make(num_envs=num_envs, seed=seed)
    if tile is not None:
        env.tile = tile if tile > 0 else num_envs
    return env


def nbytes(x) -> int:
    """Bytes of the arrays in a nest of dicts, tuples and lists."""
    if isinstance(x, dict):
        return sum(nbytes(v) for v in x.values())
    if isinstance(x, tuple | list):
        return sum(nbytes(v) for v in x)
    return getattr(x, "nbytes", 0)


def peak_alloc_bytes(env_cfg, num_envs: int, seed: int, tile: int | None) -> int:
    """tracemalloc peak while creating an env and stepping it through two episodes."""
    import gc
    import tracemalloc

    import numpy as np

    rng = np.random.default_rng(seed)
    gc.collect()
    tracemalloc.start()
    try:
        env = make_env(env_cfg, num_envs, seed, tile)
        for _ in range(2 * env.episode_length):
            env.step(random_actions(env, rng))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def timed(env, rng, seconds: float) -> tuple[int, float, float]:
    """Steps of `env` with fresh random actions for `seconds`: (steps, wall s, CPU s)."""
    steps, t0, cpu0 = 0, time.perf_counter(), time.thread_time()
    while True:
        env.step(random_actions(env, rng))
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return steps, elapsed, time.thread_time() - cpu0


def measure(env_cfg, num_envs: int, seconds: float, seed: int, tile: int | None = None):
    """The first round of one size: its line (rates of this round) and the env and rng for
    more rounds (`add_round`)."""
    import gc

    import numpy as np

    rng = np.random.default_rng(seed)
    gc.collect()
    rss0 = rss_bytes()
    env = make_env(env_cfg, num_envs, seed, tile)
    res = env.step(random_actions(env, rng))
    s = env.state
    state_bytes = nbytes([s.pos, s.vel, s.landmark_pos, s.t, s.alive])
    step_bytes = nbytes(tuple(res))
    steps, elapsed, cpu = timed(env, rng, seconds)
    rss1 = rss_bytes()
    env_steps = steps * num_envs / elapsed
    line = {
        "scenario": env_cfg.scenario,
        "params": dict(env_cfg.params),
        "num_envs": num_envs,
        "env_steps_per_s": round(env_steps),
        "agent_steps_per_s": round(env_steps * env.num_agents),
        "env_steps_per_cpu_s": round(steps * num_envs / cpu),
        "rss_bytes_per_env": round((rss1 - rss0) / num_envs),
        "peak_alloc_bytes_per_env": round(
            peak_alloc_bytes(env_cfg, num_envs, seed, tile) / num_envs
        ),
        "state_bytes_per_env": round(state_bytes / num_envs),
        "step_bytes_per_env": round(step_bytes / num_envs),
        "scratch_bytes_per_env": env.scratch_bytes_per_env,
        "tile_envs": min(env.tile, num_envs),
        "tile_bytes": round(
            min(env.tile, num_envs)
            * ((state_bytes + step_bytes) / num_envs + (env.scratch_bytes_per_env or 0))
        ),
        "steps": steps,
        "seconds": round(elapsed, 3),
        "fused": getattr(env, "fused", False),  # a PettingZoo world has no fused kernel
        "rounds": [(steps, elapsed, cpu)],
    }
    return line, env, rng


def add_round(line: dict, env, rng, seconds: float) -> None:
    """One more timed round; the rates become the medians over the rounds."""
    import numpy as np

    line["rounds"].append(timed(env, rng, seconds))
    E, rounds = line["num_envs"], line["rounds"]
    rate = float(np.median([n * E / wall for n, wall, _ in rounds]))
    line["env_steps_per_s"] = round(rate)
    line["agent_steps_per_s"] = round(rate * env.num_agents)
    line["env_steps_per_cpu_s"] = round(float(np.median([n * E / c for n, _, c in rounds])))
    line["steps"] = sum(n for n, _, _ in rounds)
    line["seconds"] = round(sum(w for _, w, _ in rounds), 3)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from predprey.config import ConfigError, apply_overrides, config_from_dict

    env_data = apply_overrides({"env": {"scenario": args.scenario}}, args.overrides)
    unknown = sorted(set(env_data) - {"env"})
    if unknown:
        raise ConfigError(f"--set {unknown[0]}.*: bench env takes only env.KEY=VALUE")
    if args.seconds <= 0:
        raise ConfigError(f"--seconds must be > 0, got {args.seconds}")
    if args.rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {args.rounds}")
    if args.tile is not None and args.tile < 0:
        raise ConfigError(f"--tile must be >= 0, got {args.tile}")
    sizes = [{}]
    if args.agents:
        sizes = [agent_params(args.scenario, n) for n in args.agents]
        env_data["env"].setdefault("density", 1.0)
    num_envs = args.num_envs or ([64] if args.agents else [1, 64, 1024, 8192])
    for size in sizes:
        env_cfg = config_from_dict({"env": {**env_data["env"], **size}}).env
        warm = env_cfg.make(num_envs=1, seed=args.seed)  # compile / load the kernels
        warm.step(random_actions(warm, np.random.default_rng(0)))
        per_round = args.seconds / args.rounds
        runs = [measure(env_cfg, n, per_round, args.seed, args.tile) for n in num_envs]
        for _ in range(args.rounds - 1):  # the sizes take turns: load changes hit all alike
            for line, env, rng in runs:
                add_round(line, env, rng, per_round)
        for line, _, _ in runs:
            line["rounds"] = args.rounds
            print(json.dumps({"num_agents": warm.num_agents, **line}), flush=True)
    return 0


def agent_params(scenario: str, n: int) -> dict:
    """Scenario parameters for `n` agents in all (see the module docstring)."""
    from predprey.config import ConfigError

    if scenario == "spread":
        return {"num_agents": n}
    if scenario == "tag":
        if n < 2:
            raise ConfigError(f"--agents: tag needs at least 2 agents, got {n}")
        return {"num_predators": n - max(n // 4, 1), "num_prey": max(n // 4, 1)}
    raise ConfigError(f"--agents: unknown scenario {scenario!r}")
