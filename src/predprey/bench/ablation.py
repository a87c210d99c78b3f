"""Trajectory-separation ablation (seed 003's table): PPO at each separation level, several
seeds, the same wall clock; env steps and seconds to a fixed score, and the final score.

  predprey bench ablation --config configs/spread_ppo.yaml --set env.num_agents=8 \
      --set env.num_landmarks=8 --set algo.group_size=4 \
      --levels agent,group,team --seeds 0,1 --seconds 150 --out runs/ablation_spread8

Each (level, seed) is a `predprey train` run in a fresh process, one after the other, with
`algo.separation` set to the level for reward, value and advantage (`team` for all three
is the single-brain baseline). The score is a metrics.jsonl key (`--score`, default the
training return per agent of the learning team; `--smooth` rows averaged). The fixed
score is the baseline level's final score (the mean over its seeds of each run's score
averaged over its last tenth of wall clock); for every run: env steps and seconds until its
smoothed score first reaches it (none if never), and its final score. Writes OUT/LEVEL-sSEED/
(the runs), OUT/summary.json, OUT/ablation.png (score v env steps, every run) and prints
one JSON line per level (medians over seeds, and the ratio of env steps to the baseline's).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from predprey.bench import curves


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="configs/spread_ppo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    p.add_argument("--levels", type=_names, default=["agent", "group", "team"])
    p.add_argument("--baseline", default="team", help="the level whose final score is the bar")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in _names(s)], default=[0, 1])
    p.add_argument("--seconds", type=float, default=150.0, help="wall clock of each run")
    p.add_argument("--score", default="return/agent", help="a metrics.jsonl key")
    p.add_argument("--smooth", type=int, default=5, help="score rows averaged")
    p.add_argument("--out", required=True)


def run(args: argparse.Namespace) -> int:
    from predprey.config import load_config

    if args.baseline not in args.levels:
        raise SystemExit(f"--baseline {args.baseline!r} is not one of --levels {args.levels}")
    for level in args.levels:  # fail on a bad config or level before any run starts
        cfg = load_config(args.config, [*args.overrides, f"algo.separation={level}"])
        if cfg.algo.name != "ppo":
            raise SystemExit(f"{args.config}: separation is a ppo setting (algo.name: ppo)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    by_level: dict[str, dict[int, list[dict[str, float]]]] = {lv: {} for lv in args.levels}
    for seed in args.seeds:  # seeds outermost: drifting load hits every level alike
        for level in args.levels:
            by_level[level][seed] = train_curve(args, level, seed, out / f"{level}-s{seed}")
    finals = {lv: {s: curves.final(c, args.seconds) for s, c in runs.items()}
              for lv, runs in by_level.items()}  # fmt: skip
    bar = statistics.mean(finals[args.baseline].values())
    rows = []
    for level, runs in by_level.items():
        reach = {s: first_reach(c, bar, args.smooth) for s, c in runs.items()}
        rows.append(summary_row(level, args, finals[level], reach, bar))
    base = next(r for r in rows if r["level"] == args.baseline)
    for r in rows:
        both = r["median_env_steps_to_bar"] is not None and base["median_env_steps_to_bar"]
        r["env_steps_to_bar_v_baseline"] = (
            round(r["median_env_steps_to_bar"] / base["median_env_steps_to_bar"], 3)
            if both else None
        )  # fmt: skip
    summary = {"bench": "ablation", "config": args.config, "overrides": args.overrides,
               "score": args.score, "bar": round(bar, 4), "seconds": args.seconds,
               "levels": rows}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(by_level, bar, args, out / "ablation.png")
    for r in rows:
        print(json.dumps({"bench": "ablation", "score": args.score, "bar": round(bar, 4), **r}))
    return 0


def train_curve(args, level: str, seed: int, run_dir: Path) -> list[dict[str, float]]:
    if not (run_dir / "metrics.jsonl").exists():  # an existing run is reused (a rerun resumes)
        sets = [f"algo.separation={level}", *args.overrides]
        curves.train(args.config, run_dir, args.seconds, seed, sets)
    return curves.curve(run_dir, args.score)


def first_reach(rows: list[dict[str, float]], bar: float, smooth: int) -> dict | None:
    """The first row whose mean score over the last `smooth` rows is >= bar."""
    for i in range(len(rows)):
        window = rows[max(0, i - smooth + 1) : i + 1]
        if statistics.mean(r["score"] for r in window) >= bar:
            return {"env_steps": rows[i]["env_steps"], "time": rows[i]["time"]}
    return None


def summary_row(level: str, args, finals: dict, reach: dict, bar: float) -> dict[str, Any]:
    def med(key):
        got = [r[key] for r in reach.values() if r is not None]
        return statistics.median(got) if len(got) == len(reach) else None

    return {
        "level": level,
        "final": {str(s): round(v, 3) for s, v in finals.items()},
        "median_final": round(statistics.median(finals.values()), 3),
        "env_steps_to_bar": {str(s): r and r["env_steps"] for s, r in reach.items()},
        "seconds_to_bar": {str(s): r and round(r["time"], 1) for s, r in reach.items()},
        "median_env_steps_to_bar": med("env_steps"),
        "median_seconds_to_bar": med("time"),
    }


def plot(by_level, bar: float, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {level: palette[k % len(palette)] for k, level in enumerate(args.levels)}
    for level, runs in by_level.items():
        for k, (seed, rows) in enumerate(sorted(runs.items())):
            ax.plot([r["env_steps"] for r in rows], [r["score"] for r in rows],
                    color=colors[level], alpha=0.85, ls="-" if k == 0 else "--",
                    label=f"{level} (seed {seed})")  # fmt: skip
    ax.axhline(bar, color="k", lw=0.8, ls=":", label=f"{args.baseline}'s final score")
    ax.set_xlabel("env steps")
    ax.set_ylabel(args.score)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"separation ablation, {args.seconds:.0f} s per run")
    fig.savefig(path, dpi=110)
    plt.close(fig)
