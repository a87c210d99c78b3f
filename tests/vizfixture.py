"""Build realistic run directories for the viz tests with the real RunDir writer API:
episodes are real rollouts of `predprey.env.make("tag")` (predators chase, prey flee
with noise) and metrics rows look like a training log (decaying losses, rising returns,
periodic eval keys, throughput)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import predprey.env
from predprey.rundir import RunDir

TEAMS = ["predator", "prey"]


def scripted_actions(pos: np.ndarray, n_pred: int, rng: np.random.Generator) -> dict:
    """Predators head for the nearest prey; prey run from the nearest predator. pos [E, N, 2]"""
    pred, prey = pos[:, :n_pred], pos[:, n_pred:]  # [E, P, 2], [E, Q, 2]
    d = prey[:, None, :, :] - pred[:, :, None, :]  # [E, P, Q, 2] predator -> prey
    dist = np.linalg.norm(d, axis=-1)  # [E, P, Q]
    e = np.arange(pos.shape[0])[:, None]
    near_prey = d[e, np.arange(n_pred)[None, :], dist.argmin(axis=2)]  # [E, P, 2]
    near_pred = -d[e, dist.argmin(axis=1), np.arange(prey.shape[1])[None, :]]  # [E, Q, 2]
    a_pred = near_prey / (np.linalg.norm(near_prey, axis=-1, keepdims=True) + 1e-9)
    a_prey = near_pred / (np.linalg.norm(near_pred, axis=-1, keepdims=True) + 1e-9)
    a_prey = a_prey + rng.normal(0, 0.6, a_prey.shape)
    return {"predator": np.clip(a_pred, -1, 1), "prey": np.clip(a_prey, -1, 1)}


def record_rollout(run: RunDir, episode: int, num_envs: int, seed: int, steps: int = 25) -> None:
    """One real episode per env, written as `train_<episode>_env<i>.npz`."""
    # One step longer than we record so the env does not auto-reset before the last frame.
    env = predprey.env.make("tag", num_envs=num_envs, seed=seed, episode_length=steps + 1)
    rng = np.random.default_rng(seed)
    n_pred = env.team_sizes["predator"]
    pos = [env.state.pos.copy()]  # T+1 x [E, N, 2]
    alive = [env.state.alive.copy()]
    touches = []
    for _ in range(steps):
        res = env.step(scripted_actions(env.state.pos, n_pred, rng))
        pos.append(env.state.pos.copy())
        alive.append(env.state.alive.copy())
        touches.append(res.info["touches"].copy())
    pos_a = np.stack(pos, 1).astype(np.float32)  # [E, T+1, N, 2]
    alive_a = np.stack(alive, 1)  # [E, T+1, N]
    touch_a = np.stack(touches, 1)  # [E, T]
    for i in range(num_envs):
        run.write_episode(
            "train",
            episode,
            i,
            pos=pos_a[i],
            alive=alive_a[i],
            landmark_pos=env.state.landmark_pos[i].astype(np.float32),
            agent_size=env.bodies.size.astype(np.float32),
            landmark_size=env.bodies.landmark_size.astype(np.float32),
            team_sizes=np.array([env.team_sizes[t] for t in TEAMS]),
            touches=touch_a[i],
            meta={
                "scenario": "tag",
                "preset": "mpe",
                "teams": TEAMS,
                "team_sizes": [env.team_sizes[t] for t in TEAMS],
                "arena": list(env.bodies.arena),
                "env_steps": episode * 25 * num_envs,
            },
        )


def metrics_row(i: int, rng: np.random.Generator, eval_every: int = 5) -> dict:
    """Row i of a plausible training log (10k env steps between rows)."""
    steps = (i + 1) * 10_000
    row = {
        "env_steps": steps,
        "updates": (i + 1) * 100,
        "time": 3.0 * (i + 1) + rng.uniform(0, 0.3),
        "loss/critic/predator": 2.0 * math.exp(-i / 30) + 0.3 + rng.normal(0, 0.1),
        "loss/critic/prey": 1.2 * math.exp(-i / 25) + 0.2 + rng.normal(0, 0.08),
        "loss/actor/predator": -1.0 - 4.0 * (1 - math.exp(-i / 40)) + rng.normal(0, 0.2),
        "loss/actor/prey": 1.5 * math.exp(-i / 30) - 0.5 + rng.normal(0, 0.2),
        "q/predator": 2.0 + 10.0 * (1 - math.exp(-i / 40)) + rng.normal(0, 0.5),
        "q/prey": -1.0 - 8.0 * (1 - math.exp(-i / 40)) + rng.normal(0, 0.5),
        "return/predator": 5.0 + 30.0 * (1 - math.exp(-i / 40)) + rng.normal(0, 4),
        "return/prey": -8.0 - 20.0 * (1 - math.exp(-i / 40)) + rng.normal(0, 4),
        "episodes": (i + 1) * 400,
        "touches_per_episode": 0.5 + 3.0 * (1 - math.exp(-i / 40)) + rng.normal(0, 0.3),
        "episode_length": 25.0,
        "buffer/size": min((i + 1) * 10_000, 500_000),
        "perf/env_steps_per_s": 3300.0 + rng.normal(0, 150),
        "perf/updates_per_s": 33.0 + rng.normal(0, 2),
    }
    if i % eval_every == eval_every - 1:
        row["eval/pred_touches_v_evader"] = 0.2 + 2.5 * (1 - math.exp(-i / 40))
        row["eval/prey_touches_v_chaser"] = 4.0 * math.exp(-i / 50) + 0.5
    return row


def make_run(
    path: Path,
    n_rows: int = 80,
    num_envs: int = 3,
    episodes: tuple[int, ...] = (0, 200),
    seed: int = 0,
) -> RunDir:
    run = RunDir(path).create()
    run.config_path.write_text("env:\n  scenario: tag\n  num_envs: 8\n  preset: mpe\n")
    rng = np.random.default_rng(seed)
    for i in range(n_rows):
        run.append_metrics(metrics_row(i, rng))
    for k, ep in enumerate(episodes):
        record_rollout(run, ep, num_envs, seed=seed + 17 * k)
    return run


def make_box_episode(run: RunDir, env_index: int = 0, steps: int = 60, seed: int = 1) -> Path:
    """A seed-preset-like episode: 5 v 5 in a walled 250 x 250 box, prey captured within
    radius 10 leave the world (alive False). Kinematics only: predators chase, prey flee."""
    rng = np.random.default_rng(seed)
    n_pred, n_prey, box = 5, 5, 250.0
    size = np.r_[np.full(n_pred, 3.0), np.full(n_prey, 2.5)].astype(np.float32)
    p = rng.uniform(20, 230, (n_pred + n_prey, 2))
    alive = np.ones(n_pred + n_prey, bool)
    pos, alv, touches = [p.copy()], [alive.copy()], []
    for _ in range(steps):
        act = scripted_actions(p[None], n_pred, rng)
        p[:n_pred] += 6.0 * act["predator"][0]
        p[n_pred:] += 4.0 * act["prey"][0] * alive[n_pred:, None]
        p = np.clip(p, size[:, None], box - size[:, None])
        d = np.linalg.norm(p[n_pred:, None] - p[None, :n_pred], axis=-1)  # [Q, P]
        caught = (d < 10.0).any(axis=1) & alive[n_pred:]
        touches.append(int(caught.sum()))
        alive[n_pred:] &= ~caught
        pos.append(p.copy())
        alv.append(alive.copy())
    return run.write_episode(
        "simulate",
        0,
        env_index,
        pos=np.array(pos, np.float32),
        alive=np.array(alv),
        landmark_pos=np.zeros((0, 2), np.float32),
        agent_size=size,
        landmark_size=np.zeros(0, np.float32),
        touches=np.array(touches),
        meta={
            "scenario": "tag",
            "preset": "seed",
            "teams": TEAMS,
            "team_sizes": [n_pred, n_prey],
            "arena": [0.0, box, 0.0, box],
        },
    )


def learner_metrics_row(i: int, members: int = 3, select_every: int = 10) -> list[dict]:
    """Row i of a log holding what the PPO, population and spread learners write (PPO
    losses, member curves, spread coverage/collisions, a key no chart family knows), and
    every `select_every` rows a population selection event."""
    steps = (i + 1) * 5_000
    row = {
        "env_steps": steps,
        "updates": i + 1,
        "time": 2.0 * (i + 1),
        "loss/policy/predator": -0.01 * math.exp(-i / 20),
        "loss/policy/prey": -0.02 * math.exp(-i / 20),
        "loss/value/predator": 1.0 * math.exp(-i / 15),
        "entropy/predator": 1.4 - 0.01 * i,
        "kl/predator": 0.01 + 0.001 * (i % 3),
        "clip_frac/predator": 0.1 + 0.01 * (i % 4),
        "coverage": min(1.0, 0.2 + 0.02 * i),
        "collisions": 0.3 * math.exp(-i / 30),
        "made_up/alpha": float(i),
        "made_up/beta": float(2 * i),
        "return/predator": float(i),
        "return/prey": float(-i),
    }
    for k in range(members):
        row[f"member/{k}/return/predator"] = float(i + 3 * k)
    rows = [row]
    if i % select_every == select_every - 1:
        rows.append({"env_steps": steps, "event": "selection", "detail": "member 2 <- member 0"})
    return rows
