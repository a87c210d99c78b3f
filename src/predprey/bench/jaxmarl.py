"""PPO against JaxMARL's IPPO on spread-3, discrete actions, the same envs and wall clock.

  predprey bench jaxmarl --seconds 300 --out runs/vs_jaxmarl

Both sides act in mpe2's discrete action space (Discrete(5) per agent: no-op, left, right,
down, up) and step the same number of envs (--num-envs, default the config's env.num_envs).
First the peer script (JaxMARL's IPPO recipe, jitted on the CPU, shipped with predprey as
bench/peer/jaxmarl_ippo_spread.py; --script runs another) with --python (default: this
Python; it needs `jax[cpu] jaxmarl flax optax`, the `peers` extra) for --seconds, then
`predprey train --config configs/spread_ppo_discrete.yaml --time-budget SECONDS` (our native
spread with `env.discrete_actions: true`) in a fresh process: one after the other, so that
each has the machine. Both report the same return: the mean over agents of one agent's 25
rewards summed (mpe2's and JaxMARL's per-agent reward, local_ratio 0.5), over the training
episodes (the sampling policy acting). Writes OUT/jaxmarl.jsonl, OUT/predprey/ (the run),
OUT/compare.png (return per agent v wall clock and v env steps, both systems) and
OUT/summary.json, and prints the summary: env-steps/s of each (all env steps over the
training seconds; JaxMARL's jit compilation is not counted), the final return (mean over the
last tenth of the wall clock) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from predprey.bench import curves
from predprey.config import apply_overrides, config_from_dict, load_yaml

PEER_SCRIPT = Path(__file__).with_name("peer") / "jaxmarl_ippo_spread.py"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", default=sys.executable,
                   help="a Python with jax, jaxmarl, flax, optax (default: this one)")  # fmt: skip
    p.add_argument(
        "--script",
        default=str(PEER_SCRIPT),
        help="the peer script (default: the shipped jaxmarl_ippo_spread.py)",
    )
    p.add_argument("--seconds", type=float, default=300.0, help="training wall clock of each")
    p.add_argument("--out", required=True, help="directory for the run, curves and plot")
    p.add_argument("--config", default="configs/spread_ppo_discrete.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=int, default=None,
                   help="envs of both sides (default: the config's env.num_envs)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.seconds <= 0:
        raise SystemExit("--seconds must be > 0")
    for path in (args.python, args.script, args.config):
        if not Path(path).exists():
            raise SystemExit(f"not found: {path}")
    if (out / "predprey").exists():
        raise SystemExit(f"{out / 'predprey'} exists: pick a new --out")
    args.num_envs = check_config(args)
    args.overrides = [*args.overrides, f"env.num_envs={args.num_envs}"]
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    jax_rows = run_jaxmarl(args, out / "jaxmarl.jsonl")
    ours = run_predprey(args, out / "predprey")
    summary = summarise(jax_rows, ours, args.seconds)
    summary.update(load_before=round(load_before, 2), load_after=round(os.getloadavg()[0], 2))
    summary.update(config=args.config, overrides=args.overrides, seed=args.seed,
                   num_envs=args.num_envs, action_space="Discrete(5) per agent, both")  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(jax_rows, ours, out / "compare.png", summary)
    print(json.dumps(summary), flush=True)
    return 0


# our spread's parameters that make it the peer's world (JaxMARL's MPE_simple_spread_v3)
PEER_WORLD = {"obs": "mpe", "num_agents": 3, "num_landmarks": 3, "episode_length": 25,
              "local_ratio": 0.5, "discrete_actions": True}  # fmt: skip


def check_config(args) -> int:
    """The number of envs of both sides; SystemExit unless our side is PPO on the peer's
    world: spread-3 in the discrete action space."""
    cfg = config_from_dict(apply_overrides(load_yaml(args.config), args.overrides))
    params = cfg.env.make(num_envs=1).scenario.params
    differ = [k for k, v in PEER_WORLD.items() if getattr(params, k, None) != v]
    if cfg.env.scenario != "spread" or cfg.algo.name != "ppo" or differ:
        want = ", ".join(f"{k}: {v}" for k, v in PEER_WORLD.items())
        raise SystemExit(f"{args.config}: the peer trains PPO on spread with {want}; "
                         f"this config differs ({cfg.env.scenario}, {cfg.algo.name}, "
                         f"{differ})")  # fmt: skip
    n = cfg.env.num_envs if args.num_envs is None else args.num_envs
    if n < 1:
        raise SystemExit(f"--num-envs must be >= 1, got {n}")
    return n


def run_jaxmarl(args, path: Path) -> list[dict[str, Any]]:
    cmd = [args.python, args.script, str(args.seconds), str(args.num_envs), str(args.seed)]
    # jit compilation comes before the timed part: give it generous time
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 900)
    rows = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not rows:
        raise SystemExit(f"the JaxMARL script failed (rc {proc.returncode}): {proc.stderr[-800:]}")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [
        {"time": r["seconds"], "env_steps": r["env_steps"], "score": r["return_per_agent"]}
        for r in rows
    ]


def run_predprey(args, run_dir: Path) -> list[dict[str, Any]]:
    curves.train(args.config, run_dir, args.seconds, args.seed, args.overrides)
    return curves.curve(run_dir, "return/agent")


def summarise(jax_rows, ours, seconds: float) -> dict[str, Any]:
    def rate(rows):
        return rows[-1]["env_steps"] / rows[-1]["time"]

    j, p = rate(jax_rows), rate(ours)
    jr, pr = curves.final(jax_rows, seconds), curves.final(ours, seconds)
    return {
        "bench": "jaxmarl",
        "seconds": seconds,
        "jaxmarl_env_steps_per_s": round(j),
        "predprey_env_steps_per_s": round(p),
        "env_steps_per_s_ratio": round(p / j, 2),
        "jaxmarl_env_steps": jax_rows[-1]["env_steps"],
        "predprey_env_steps": ours[-1]["env_steps"],
        "jaxmarl_final_return_per_agent": round(jr, 2),
        "predprey_final_return_per_agent": round(pr, 2),
        "return_at_least_jaxmarl": pr >= jr,
    }


def plot(jax_rows, ours, path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for rows, label in ((jax_rows, "JaxMARL IPPO (jit, CPU)"), (ours, "predprey PPO")):
        axes[0].plot([r["time"] for r in rows], [r["score"] for r in rows], label=label)
        axes[1].plot([r["env_steps"] for r in rows], [r["score"] for r in rows], label=label)
    axes[0].set_xlabel("wall clock (s)")
    axes[1].set_xlabel("env steps")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("training return per agent")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"spread, 3 agents, Discrete(5), {summary['num_envs']} envs: "
        f"{summary['predprey_env_steps_per_s']:,} v "
        f"{summary['jaxmarl_env_steps_per_s']:,} env-steps/s "
        f"({summary['env_steps_per_s_ratio']}x); final return "
        f"{summary['predprey_final_return_per_agent']} v "
        f"{summary['jaxmarl_final_return_per_agent']}"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
