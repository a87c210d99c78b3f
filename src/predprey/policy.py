"""Use a trained policy without the trainer.

    policy = predprey.policy.load("runs/tag")
    forces = policy.act({"predator": obs_pred, "prey": obs_prey})   # [-1, 1]^2 per agent

Observations per team may be `[n_team, obs_dim]` (one world) or `[E, n_team, obs_dim]`;
the answer has the same leading shape with 2 force components per agent. Only the teams
present in `obs` are answered.

A team with one shared network (`algo.share_params: true`) acts for any number of agents
n_team; on `local` observations (whose size does not depend on N) that is a policy trained
on 4 agents running 80:

    policy = predprey.policy.load("runs/spread_local", env=["num_agents=80", "num_landmarks=80"])
    env = policy.config.env.make(num_envs=8)        # the run's world with 80 agents
    forces = policy.act(env.reset())                # {"agent": [8, 80, 2]}

`env` overrides are checked against the trained networks: per-agent networks at another
team size, or observations of another size (obs `mpe` grows with N), are a clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from predprey import checkpoint
from predprey.config import Config, ConfigError, apply_overrides, config_from_dict, load_yaml
from predprey.learn.spec import TeamSpec
from predprey.rundir import RunDir, RunDirError


class Policy:
    def __init__(self, config: Config, teams: tuple[TeamSpec, ...], actors, version: int):
        self.config = config  # the run's config with any `env` overrides of `load`
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
            from predprey.learn.attention import build_actors

            sub = build_actors([self.teams[n] for n in key], self.config.algo)
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
        exploration noise of an off-policy learner (`algo.exploration_noise`; ppo: none)
        drawn from `rng`."""
        batched, single = {}, set()
        for team, o in obs.items():
            if team not in self.teams:
                raise ValueError(f"unknown team {team!r}; this policy has {sorted(self.teams)}")
            o = np.asarray(o, dtype=np.float32)
            t = self.teams[team]
            n = "n" if self.shared else t.n_agents  # a shared network acts for any number
            if o.ndim not in (2, 3) or o.shape[-1] != t.obs_dim:
                raise ValueError(
                    f"obs['{team}'] has shape {o.shape}; expected "
                    f"[{n}, {t.obs_dim}] or [E, {n}, {t.obs_dim}]"
                )
            if o.shape[-2] != t.n_agents and not self.shared:
                raise ValueError(per_agent_message(team, t.n_agents, o.shape[-2]))
            if o.ndim == 2:
                single.add(team)
                o = o[None]
            batched[team] = o
        noise = 0.0 if deterministic else getattr(self.config.algo, "exploration_noise", 0.0)
        if noise > 0 and rng is None:
            rng = np.random.default_rng()
        actors = self._actors_for(tuple(batched))
        out = actors.act(batched, noise, rng)  # team -> [E, n, 2]
        return {team: out[team][0] if team in single else out[team] for team in batched}

    @property
    def shared(self) -> bool:
        """One network per team (acts for any number of agents)."""
        return self.config.algo.share_params


POLICIES = ("latest", "best")


def per_agent_message(team: str, trained: int, asked: int) -> str:
    return (
        f"this policy has one network per agent of team '{team}' (algo.share_params: false), "
        f"so it acts for exactly the {trained} it was trained with, not {asked}; train with "
        f"share_params: true and obs: local to run at another number of agents"
    )


def with_env_overrides(config: Config, overrides) -> Config:
    """`config` with `env.KEY=VALUE` overrides (strings, or KEY=VALUE without the section).
    Other sections, or changing the scenario, are ConfigErrors."""
    texts = []
    for o in overrides:
        key = o.split("=", 1)[0]
        if "." in key and not key.startswith("env."):
            raise ConfigError(f"--set {key}: a trained policy takes only env.KEY=VALUE")
        texts.append(o if key.startswith("env.") else f"env.{o}")
    data = apply_overrides(config.to_dict(), texts)
    if data["env"]["scenario"] != config.env.scenario:
        raise ConfigError(f"--set env.scenario: a {config.env.scenario} policy runs only there")
    return config_from_dict(data)


def check_transfer(trained: tuple[TeamSpec, ...], config: Config) -> tuple[TeamSpec, ...]:
    """The team specs of `config`'s env, if actors trained as `trained` (under `config.algo`)
    can act there; else a ConfigError saying why not."""
    from predprey.learn.spec import team_specs

    try:
        here = team_specs(config.env.make(num_envs=1, seed=0))
    except ValueError as e:
        raise ConfigError(f"env: {e}") from None
    for t, h in zip(trained, here, strict=True):
        kinds = {(g.kind, g.width) for g in t.entities}
        if config.algo.network == "attention" and {(g.kind, g.width) for g in h.entities} != kinds:
            raise ConfigError(
                f"'{t.name}' sees entities {sorted(kinds)} (kind, width) in training but "
                f"{sorted((g.kind, g.width) for g in h.entities)} here; an attention policy "
                f"runs with any number of slots (k_*), not other kinds of them"
            )
        if h.obs_dim != t.obs_dim and config.algo.network != "attention":
            obs = dict(config.env.params).get("obs", "default")
            raise ConfigError(
                f"'{t.name}' observations have {h.obs_dim} values in this world but the policy "
                f"was trained on {t.obs_dim} (obs: {obs}); only obs 'local' keeps its size as "
                f"the number of agents changes, and its k_* slots must stay as trained"
            )
        if h.n_agents != t.n_agents and not config.algo.share_params:
            raise ConfigError(per_agent_message(t.name, t.n_agents, h.n_agents))
    return here


def load(
    run_dir: str | Path, which: str = "latest", env=(), member: int | str | None = None
) -> Policy:
    """The actors of run `run_dir` (its config.yaml and checkpoints/): `which="latest"` the
    latest checkpoint's, `"best"` per team the snapshot that scored best in training's
    evaluations against scripted opponents (teams without one keep their latest actors).
    `env`: overrides `KEY=VALUE` (or `env.KEY=VALUE`) of the world the policy will act in,
    e.g. `["num_agents=80", "num_landmarks=80"]`; see the module docstring.
    A population's latest actors are per team its best member's at the latest evaluation;
    `member=K` takes member K's latest actors instead (`member="best"`: the default)."""
    from predprey.learn.spec import team_specs
    from predprey.learn.widths import fit_actors

    if which not in POLICIES:
        raise ValueError(f"unknown policy {which!r}; choose one of {POLICIES}")
    run = RunDir(run_dir).require()
    config = config_from_dict(load_yaml(run.config_path))
    teams = acting = team_specs(config.env.make(num_envs=1, seed=0))
    if env:
        config = with_env_overrides(config, env)
        acting = check_transfer(teams, config)  # attention networks read its entity slots
    payload = checkpoint.load(run)
    checkpoint.check_teams(payload, teams, str(run.path))
    state = dict(payload["actors"])
    version = int(payload.get("updates", 0))
    if member is not None:
        state, version = member_actors(payload, member, which, str(run.path))
    if which == "best":
        state.update({team: b["actor"] for team, b in checkpoint.load_best(run).items()})
    try:  # a population member's widths may differ from the config's: theirs are built
        actors = fit_actors(None, acting, config.algo, state)
    except (KeyError, RuntimeError, ValueError) as e:
        raise RunDirError(f"incompatible checkpoint in {run.path}: {e}") from None
    return Policy(config, acting, actors, version)


def member_actors(payload: dict, member: int | str, which: str, where: str) -> tuple[dict, int]:
    """Member `member`'s latest actor weights and updates, from a population checkpoint."""
    members = payload.get("population", {}).get("members")
    if members is None:
        raise ConfigError(f"{where} is not a population run (no members); drop --member")
    if which != "latest":
        raise ConfigError("--member picks a member's latest actors; drop --policy best")
    if member == "best":
        return dict(payload["actors"]), int(payload.get("updates", 0))
    if not isinstance(member, int) or not 0 <= member < len(members):
        raise ConfigError(
            f"--member {member}: this population has members 0..{len(members) - 1} (or best)"
        )
    return dict(members[member]["actors"]), int(members[member]["updates"])


def member_arg(text: str) -> int | str:
    """`--member best|K` of the commands that load a policy."""
    if text == "best":
        return text
    try:
        k = int(text)
    except ValueError:
        k = -1
    if k < 0:
        import argparse

        raise argparse.ArgumentTypeError(f"expected best or a member index >= 0, got {text!r}")
    return k
