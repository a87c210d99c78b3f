"""Train the default recipe on a PettingZoo world, then play each learned team v random teams.

  predprey bench world --make mpe2.simple_push_v3:parallel_env --env-steps 200000 --out DIR

The recipe is what a config that names only the world gets: `env.scenario: pettingzoo`,
`env.make`, `env.kwargs` (and `env.teams` if given), every other key at its default; in a
pettingzoo world that is ppo (--algo names another learner, --set changes any key). After
`train.total_env_steps` = --env-steps, the learned policy plays --episodes episodes in each
of these match-ups:

  random        every team acts uniformly at random (one-hot uniform choices of a
                `Discrete`, uniform in [-1, 1] per component of a `Box`): the baseline
  TEAM          TEAM acts with its learned policy (deterministic), every other team at random
  learned       every team learned (worlds of more than one team)

A team's return is per episode: its agents' rewards summed over the steps, the mean over its
agents (as `evaluate` reports). Prints one JSON line per match-up and a summary line: per
trained team, its return learned v random and random v random, each the mean with the
half-width of its 95% confidence interval, and `beats_random` (the two intervals apart, the
learned one above). Writes OUT/run (the run) and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

MAX_EVAL_ENVS = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--make", required=True, help="the world's factory: package.module:factory")
    p.add_argument("--kwargs", default="{}", help="the factory's arguments, as JSON")
    p.add_argument("--teams", default=None, help="team -> [agent names], as JSON (default: "
                   "agent names up to a trailing _<digits>)")  # fmt: skip
    p.add_argument("--algo", default=None, choices=("ppo", "maddpg", "matd3"),
                   help="the learner (default: a pettingzoo config's, ppo)")  # fmt: skip
    p.add_argument("--env-steps", type=int, required=True, help="training budget in env steps")
    p.add_argument("--episodes", type=int, default=200, help="episodes per match-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help="change the recipe (section.key=value, repeatable)")  # fmt: skip
    p.add_argument("--out", required=True, help="directory for the run and summary.json")


def recipe(make: str, kwargs: dict, teams: dict | None, algo: str | None, env_steps: int,
           seed: int, overrides: list[str]):  # fmt: skip
    """The default recipe's config: the world, the learner's name, the budget."""
    from predprey.config import apply_overrides, config_from_dict

    env: dict[str, Any] = {"scenario": "pettingzoo", "make": make, "kwargs": kwargs}
    if teams is not None:
        env["teams"] = teams
    data = {"env": env, "algo": {"name": algo} if algo else {},
            "train": {"total_env_steps": env_steps, "seed": seed}}  # fmt: skip
    return config_from_dict(apply_overrides(data, overrides))


def run(args: argparse.Namespace) -> int:
    from predprey.build import train
    from predprey.policy import load
    from predprey.rundir import RunDir

    if args.env_steps < 1 or args.episodes < 2:
        raise SystemExit("--env-steps must be >= 1 and --episodes >= 2")
    kwargs, teams = _json(args.kwargs, "--kwargs"), _json(args.teams, "--teams")
    config = recipe(args.make, kwargs, teams, args.algo, args.env_steps, args.seed,
                    args.overrides)  # fmt: skip
    out = Path(args.out)
    run_dir = RunDir(out / "run")
    if run_dir.path.exists():
        raise SystemExit(f"{run_dir.path} exists: pick a new --out")
    run_dir.path.mkdir(parents=True)
    from predprey.config import dump_config

    dump_config(config, run_dir.config_path)
    run_dir.create()
    t0 = time.perf_counter()
    result = train(config, run_dir, progress=False)
    train_s = time.perf_counter() - t0
    policy = load(str(run_dir.path))
    summary = evaluate(policy, args.episodes, args.seed + 1)
    summary.update(
        bench="world", make=args.make, kwargs=kwargs, algo=config.algo.name,
        env_steps=result["env_steps"], train_seconds=round(train_s, 1), seed=args.seed,
    )  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary), flush=True)
    return 0


def _json(text: str | None, flag: str):
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"{flag}: not JSON: {e}") from None


def evaluate(policy, episodes: int, seed: int) -> dict[str, Any]:
    """Play the match-ups (module docstring) and compare each trained team with random."""
    config = policy.config
    env = config.env.make(num_envs=min(episodes, MAX_EVAL_ENVS), seed=seed)
    try:
        spaces = {t: str(s) for t, s in env.scenario.act_spaces.items()}
        trained = list(config.algo.teams or env.teams)
        matchups = {"random": ()} | {t: (t,) for t in trained}
        if len(env.teams) > 1:
            matchups["learned"] = tuple(trained)
        rows = {}
        for name, learned in matchups.items():
            returns = play(env, policy, learned, episodes, seed)
            rows[name] = {t: mean_ci(r) for t, r in returns.items()}
            print(json.dumps({"matchup": name, "returns": rows[name]}), flush=True)
    finally:
        env.close()
    teams = {}
    for t in trained:
        (lm, lc), (rm, rc) = rows[t][t], rows["random"][t]
        teams[t] = {"learned_v_random": [lm, lc], "random_v_random": [rm, rc],
                    "beats_random": lm - lc > rm + rc}  # fmt: skip
    return {"episodes": episodes, "action_spaces": spaces, "teams": teams, "matchups": rows}


def play(env, policy, learned: tuple[str, ...], episodes: int, seed: int) -> dict[str, np.ndarray]:
    """Each team's return [episodes] with the `learned` teams acting by `policy` and the
    others uniformly at random. Each env plays a fixed quota of episodes (short episodes
    are not over-represented)."""
    E = env.num_envs
    quota = np.full(E, episodes // E) + (np.arange(E) < episodes % E)  # [E]
    rng = np.random.default_rng(seed)
    obs = env.reset(seed=seed)
    ep_return = {t: np.zeros(E) for t in env.teams}
    done_count = np.zeros(E, np.int64)
    returns: dict[str, list[np.ndarray]] = {t: [] for t in env.teams}
    for _ in range(int(quota.max()) * env.episode_length + 1):
        if (done_count >= quota).all():
            break
        act = policy.act({t: obs[t] for t in learned}) if learned else {}
        act = {t: act[t] if t in learned else uniform(env, t, rng) for t in env.teams}
        res = env.step(act)
        for t in env.teams:
            ep_return[t] += res.reward[t].mean(axis=1)  # [E]: the mean over the team
        idx = np.flatnonzero(res.done & (done_count < quota))  # episodes inside the quota
        for t in env.teams:
            returns[t].append(ep_return[t][idx].copy())
            ep_return[t][res.done] = 0.0
        done_count[res.done] += 1
        obs = res.obs
    return {t: np.concatenate(r) for t, r in returns.items()}


def uniform(env, team: str, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random actions [E, n, K]: a one-hot choice in a `Discrete` space, uniform in
    [-1, 1] per component of a `Box` (the env maps [-1, 1] onto the box's bounds)."""
    E, n, K = env.num_envs, env.team_sizes[team], env.act_dims[team]
    if team in env.discrete:
        return np.eye(K, dtype=np.float32)[rng.integers(0, K, size=(E, n))]
    return rng.uniform(-1.0, 1.0, size=(E, n, K)).astype(np.float32)


def mean_ci(x: np.ndarray) -> list[float]:
    """[mean, half-width of the normal 95% confidence interval of the mean], rounded."""
    from predprey.evaluate import ci95

    return [round(float(x.mean()), 3), round(ci95(x), 3)]
