"""Use a trained policy without the trainer.

    policy = predprey.policy.load("runs/tag")
    forces = policy.act({"predator": obs_pred, "prey": obs_prey})   # [-1, 1]^2 per agent

Observations per team may be `[n_team, obs_dim]` (one world) or `[E, n_team, obs_dim]`;
the answer has the same leading shape with 2 force components per agent. Only the teams
present in `obs` are answered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from predprey import checkpoint
from predprey.config import Config, load_config
from predprey.learn.spec import TeamSpec
from predprey.rundir import RunDir, RunDirError


class Policy:
    def __init__(self, config: Config, teams: tuple[TeamSpec, ...], actors, version: int):
        self.config = config
        self.teams = {t.name: t for t in teams}
        self.actors = actors
        self.version = version  # learner updates behind these weights
        self._subsets: dict[tuple[str, ...], object] = {}

    def _actors_for(self, names: tuple[str, ...]):
        """An ActorSet over just the teams in `names` (ActorSet.act wants every team)."""
        if set(names) == set(self.teams):
            return self.actors
        key = tuple(sorted(names))
        if key not in self._subsets:
            from predprey.learn.maddpg import ActorSet

            sub = ActorSet.build([self.teams[n] for n in key], self.config.algo)
            state = self.actors.actor_state()
            sub.load_actor_state({n: state[n] for n in key})
            self._subsets[key] = sub
        return self._subsets[key]

    def act(
        self,
        obs: dict[str, np.ndarray],
        deterministic: bool = True,
        rng: np.random.Generator | None = None,
    ) -> dict[str, np.ndarray]:
        """Forces for every team in `obs`; with `deterministic=False`, adds the training
        exploration noise (`algo.exploration_noise`) drawn from `rng`."""
        batched, single = {}, set()
        for team, o in obs.items():
            if team not in self.teams:
                raise ValueError(f"unknown team {team!r}; this policy has {sorted(self.teams)}")
            o = np.asarray(o, dtype=np.float32)
            t = self.teams[team]
            if o.shape[-2:] != (t.n_agents, t.obs_dim) or o.ndim not in (2, 3):
                raise ValueError(
                    f"obs['{team}'] has shape {o.shape}; expected "
                    f"[{t.n_agents}, {t.obs_dim}] or [E, {t.n_agents}, {t.obs_dim}]"
                )
            if o.ndim == 2:
                single.add(team)
                o = o[None]
            batched[team] = o
        noise = 0.0 if deterministic else self.config.algo.exploration_noise
        if noise > 0 and rng is None:
            rng = np.random.default_rng()
        actors = self._actors_for(tuple(batched))
        out = actors.act(batched, noise, rng)  # team -> [E, n, 2]
        return {team: out[team][0] if team in single else out[team] for team in batched}


POLICIES = ("latest", "best")


def load(run_dir: str | Path, which: str = "latest") -> Policy:
    """The actors of run `run_dir` (its config.yaml and checkpoints/): `which="latest"` the
    latest checkpoint's, `"best"` per team the snapshot that scored best in training's
    evaluations against scripted opponents (teams without one keep their latest actors)."""
    from predprey.learn.maddpg import ActorSet
    from predprey.learn.spec import team_specs

    if which not in POLICIES:
        raise ValueError(f"unknown policy {which!r}; choose one of {POLICIES}")
    run = RunDir(run_dir).require()
    config = load_config(run.config_path)
    teams = team_specs(config.env.make(num_envs=1, seed=0))
    payload = checkpoint.load(run)
    checkpoint.check_teams(payload, teams, str(run.path))
    state = dict(payload["actors"])
    if which == "best":
        state.update({team: b["actor"] for team, b in checkpoint.load_best(run).items()})
    actors = ActorSet.build(teams, config.algo)
    try:
        actors.load_actor_state(state)
    except (KeyError, RuntimeError, ValueError) as e:
        raise RunDirError(f"incompatible checkpoint in {run.path}: {e}") from None
    return Policy(config, teams, actors, int(payload.get("updates", 0)))
