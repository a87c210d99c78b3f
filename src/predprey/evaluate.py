"""Play episodes with learned and/or scripted teams and summarise them.

Each environment of the evaluation VecEnv is given a fixed quota of episodes in advance,
so short (captured) episodes are not over-represented. Learned teams act
deterministically (no exploration noise).

Task measures per episode, averaged over episodes (`EvalResult.metrics`):
  tag     touches_per_prey_step: touching predator-prey pairs per prey per step
  spread  coverage: fraction of landmarks with an agent within 0.1 at the last step;
          landmark_dist: mean distance from a landmark to its nearest agent at the last step;
          collisions_per_agent_step: collisions an agent is in, per agent per step
          (2 x colliding pairs / N / T); reward_per_agent_step: episode return / T
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

PREDATOR_CHOICES = ("learned", "random", "chaser")
PREY_CHOICES = ("learned", "random", "still", "evader")
MAX_EVAL_ENVS = 64


class EvalResult(NamedTuple):
    episodes: int
    touches_mean: float  # touching predator-prey pairs per episode
    touches_ci95: float  # half-width of the 95% confidence interval of the mean
    returns: dict[str, float]  # team -> mean episode return (summed reward, mean over agents)
    episode_length: float
    episode_length_ci95: float  # half-width of the 95% confidence interval of the mean
    metrics: dict[str, float]  # task measures (module docstring), mean over episodes

    def to_dict(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "touches_per_episode": {"mean": self.touches_mean, "ci95": self.touches_ci95},
            "returns": self.returns,
            "episode_length": self.episode_length,
            "episode_length_ci95": self.episode_length_ci95,
            **self.metrics,
        }


def make_eval_env(config, episodes: int, seed: int):
    return config.env.make(num_envs=max(1, min(int(episodes), MAX_EVAL_ENVS)), seed=seed)


def run_episodes(env, who: Mapping[str, str], actors: Any, episodes: int, seed: int) -> EvalResult:
    """Play `episodes` episodes; `who[team]` is "learned" (use `actors`) or a scripted name.
    `seed` gives the initial positions and, independently, the scripted policies' noise."""
    from predprey.env import scripted
    from predprey.seeding import seed_streams

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    E = env.num_envs
    quota = np.full(E, episodes // E) + (np.arange(E) < episodes % E)  # [E]
    learned = [t for t in env.teams if who[t] == "learned"]
    env_seed, rng = seed_streams(seed)
    obs = env.reset(seed=env_seed)
    ep_return = {t: np.zeros(E) for t in env.teams}
    ep_touches = np.zeros(E, np.int64)
    ep_length = np.zeros(E, np.int64)
    done_count = np.zeros(E, np.int64)
    returns = {t: [] for t in env.teams}
    touches, lengths, last = [], [], {"coverage": [], "landmark_dist": []}
    max_steps = int(quota.max()) * env.episode_length + 1
    for _ in range(max_steps):
        if (done_count >= quota).all():
            break
        act = {}
        if learned:
            act = actors.act({t: obs[t] for t in env.teams})
        act = {t: act[t] if t in learned else scripted.act(who[t], env, t, rng) for t in env.teams}
        res = env.step(act)
        for t in env.teams:
            ep_return[t] += res.reward[t].mean(axis=1)
        ep_touches += res.info["touches"]
        ep_length += 1
        counted = res.done & (done_count < quota)  # [E] episodes inside the quota
        if counted.any():
            idx = np.flatnonzero(counted)
            for t in env.teams:
                returns[t].append(ep_return[t][idx].copy())
            touches.append(ep_touches[idx].copy())
            lengths.append(ep_length[idx].copy())
            for k, v in last.items():  # spread: the last step's state, before the reset
                if k in res.info["metrics"]:
                    v.append(res.info["metrics"][k][idx].copy())
        if res.done.any():
            idx = np.flatnonzero(res.done)
            done_count[idx] += 1
            for t in env.teams:
                ep_return[t][idx] = 0.0
            ep_touches[idx] = 0
            ep_length[idx] = 0
        obs = res.obs
    tc = np.concatenate(touches).astype(np.float64)
    n = len(tc)
    steps = np.concatenate(lengths).astype(np.float64)  # [n]
    ret = {t: np.concatenate(v) for t, v in returns.items()}  # [n] each
    metrics = {}
    if "prey" in env.teams:
        metrics["touches_per_prey_step"] = float((tc / steps).mean() / env.team_sizes["prey"])
    if last["coverage"]:  # spread: touches are colliding agent pairs
        metrics["coverage"] = float(np.concatenate(last["coverage"]).mean())
        metrics["landmark_dist"] = float(np.concatenate(last["landmark_dist"]).mean())
        metrics["collisions_per_agent_step"] = float((2 * tc / steps).mean() / env.num_agents)
        metrics["reward_per_agent_step"] = float((ret["agent"] / steps).mean())
    return EvalResult(
        episodes=n,
        touches_mean=float(tc.mean()),
        touches_ci95=ci95(tc),
        returns={t: float(v.mean()) for t, v in ret.items()},
        episode_length=float(steps.mean()),
        episode_length_ci95=ci95(steps),
        metrics=metrics,
    )


def ci95(x: np.ndarray) -> float:
    """Half-width of the normal 95% confidence interval of the mean of x [n]."""
    return float(1.96 * x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def check_choices(teams, who: Mapping[str, str]) -> None:
    """Raise ValueError for a team or opponent name that this scenario does not have."""
    choices = {"predator": PREDATOR_CHOICES, "prey": PREY_CHOICES}
    for t in teams:
        if t not in who:
            raise ValueError(f"no policy given for team '{t}'")
        allowed = choices.get(t, ("learned", "random"))
        if who[t] not in allowed:
            raise ValueError(f"--{t}: unknown choice {who[t]!r}; choose one of {allowed}")


def training_evals(config, actors, episodes: int, seed: int) -> dict[str, float]:
    """Metrics for periodic evaluation during training: for tag (and a tag-like PettingZoo
    world, `predprey.env.scripted`), learned predators v the
    scripted `train.eval_prey` and learned prey v scripted `train.eval_predators` (touches
    per episode; in worlds where a capture ends the episode, also the mean steps to it);
    for other scenarios the learned teams' returns."""
    from predprey.env.pz_world import missing_for_scripted

    env = make_eval_env(config, episodes, seed)
    trained = set(config.algo.teams or env.teams)
    capture_ends = getattr(env.scenario, "capture_ends_episode", False)
    out: dict[str, float] = {}
    # scripted teams play in our worlds and in foreign tag-like ones (positions, mpe actions)
    scripted_ok = env.scenario.name != "pettingzoo" or not missing_for_scripted(env.scenario)
    if set(env.teams) == {"predator", "prey"} and scripted_ok:
        prey, preds = config.train.eval_prey, config.train.eval_predators
        if "predator" in trained:
            r = run_episodes(env, {"predator": "learned", "prey": prey}, actors, episodes, seed)
            out[f"eval/pred_touches_v_{prey}"] = r.touches_mean
            if capture_ends:
                out[f"eval/pred_steps_to_capture_v_{prey}"] = r.episode_length
        if "prey" in trained:
            r = run_episodes(env, {"predator": preds, "prey": "learned"}, actors, episodes, seed)
            out[f"eval/prey_touches_v_{preds}"] = r.touches_mean
            if capture_ends:
                out[f"eval/prey_steps_to_capture_v_{preds}"] = r.episode_length
    else:
        r = run_episodes(env, {t: "learned" for t in env.teams}, actors, episodes, seed)
        out.update({f"eval/return/{t}": v for t, v in r.returns.items()})
        out.update({f"eval/{k}": v for k, v in r.metrics.items()})
    return out


def team_scores(evals: Mapping[str, float]) -> dict[str, tuple[str, float]]:
    """Per team, the `training_evals` metric that rates it and a score where higher is
    better: predators' touches, minus prey's touches conceded, returns elsewhere. Where a
    capture ends the episode touches say little (one per episode), so steps to the capture
    rate the teams instead: fewer for predators, more for prey."""
    out: dict[str, tuple[str, float]] = {}
    for key, value in evals.items():
        if key.startswith("eval/pred_touches_v_"):
            out.setdefault("predator", (key, value))
        elif key.startswith("eval/prey_touches_v_"):
            out.setdefault("prey", (key, -value))
        elif key.startswith("eval/pred_steps_to_capture_v_"):
            out["predator"] = (key, -value)
        elif key.startswith("eval/prey_steps_to_capture_v_"):
            out["prey"] = (key, value)
        elif key.startswith("eval/return/"):
            out[key.removeprefix("eval/return/")] = (key, value)
    return out
