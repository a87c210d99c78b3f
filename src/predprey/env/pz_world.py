"""A PettingZoo `ParallelEnv` from outside as a scenario: its teams, spaces and positions.

    env:
      scenario: pettingzoo
      make: "mpe2.simple_tag_v3:parallel_env"   # package.module:factory -> a ParallelEnv
      kwargs: {continuous_actions: true}        # passed to the factory
      teams: {predator: [adversary_0, adversary_1, adversary_2], prey: [agent_0]}

Teams are the agent names up to a trailing `_<digits>` (`adversary_0` -> `adversary`) unless
`teams` lists them. Agents of a team share one observation space (a `Box`, flattened) and
one action space: a `Box` (continuous: the learners' actions in [-1, 1] are mapped linearly
onto its bounds) or a `Discrete` (the learners' action vectors [n] are one-hot or scores; the
world gets their argmax). `WorldCopies` steps a few copies of the world inside one worker
process (`predprey.env.pz_vec` runs the workers).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from predprey.env.scenario import Bodies
from predprey.env.vec import forces_to_choices

SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class PettingZooParams:
    make: str = ""  # "package.module:factory", the factory returns a ParallelEnv
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # the factory's arguments
    teams: Mapping[str, Any] | None = None  # team -> [agent names]; None: by name prefix
    # steps after which an episode is truncated; None: the world's own `max_cycles`
    episode_length: int | None = None
    workers: int | None = None  # worker processes; None: one per copy up to the CPU count

    def __post_init__(self):
        if not isinstance(self.make, str) or ":" not in self.make:
            raise ValueError(f"make must be 'package.module:factory', got {self.make!r}")
        if not isinstance(self.kwargs, Mapping):
            raise ValueError(f"kwargs must be a mapping, got {self.kwargs!r}")
        for name in ("episode_length", "workers"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        describe(self)  # the world's teams and spaces are checked when the config is read


def load_factory(make: str):
    module, _, name = make.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"make: cannot load {make!r}: {e}") from None
    if not callable(factory):
        raise ValueError(f"make: {make!r} is not callable")
    return factory


def build(params: PettingZooParams):
    env = load_factory(params.make)(**dict(params.kwargs))
    if not hasattr(env, "possible_agents") or not callable(getattr(env, "step", None)):
        raise ValueError(f"make: {params.make!r} did not return a PettingZoo ParallelEnv")
    return env


def group_teams(agents: list[str], teams: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """team -> agent names, teams in order of first appearance (or as `teams` lists them)."""
    if teams is None:
        out: dict[str, list[str]] = {}
        for a in agents:
            out.setdefault(SUFFIX.sub("", a), []).append(a)
        return out
    out = {str(t): [str(a) for a in names] for t, names in teams.items()}
    listed = [a for names in out.values() for a in names]
    unknown = sorted(set(listed) - set(agents))
    missing = [a for a in agents if a not in listed]
    twice = sorted({a for a in listed if listed.count(a) > 1})
    for what, names in (("unknown", unknown), ("unassigned", missing), ("repeated", twice)):
        if names:
            raise ValueError(f"teams: {what} agents {names}; the world's agents are {agents}")
    if any(not names for names in out.values()):
        raise ValueError("teams: every team needs at least one agent")
    return out


@dataclass(frozen=True)
class World:
    """What the learners and the vector env need to know about a foreign world (a scenario)."""

    name: str
    params: PettingZooParams
    agents: dict[str, list[str]]  # team -> agent names
    obs_spaces: dict[str, spaces.Box]  # team -> its agents' observation space
    act_spaces: dict[str, spaces.Space]  # team -> its agents' action space (Box | Discrete)
    episode_length: int
    has_positions: bool  # the world exposes agent positions (animate, view)
    bodies: Bodies

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(self.agents)

    @property
    def team_sizes(self) -> dict[str, int]:
        return {t: len(a) for t, a in self.agents.items()}

    @property
    def obs_dims(self) -> dict[str, int]:
        return {t: int(np.prod(s.shape)) for t, s in self.obs_spaces.items()}

    @property
    def act_dims(self) -> dict[str, int]:
        return {t: _act_dim(s) for t, s in self.act_spaces.items()}

    @property
    def discrete(self) -> frozenset[str]:
        return frozenset(t for t, s in self.act_spaces.items() if isinstance(s, spaces.Discrete))

    @property
    def num_agents(self) -> int:
        return sum(self.team_sizes.values())

    @property
    def num_landmarks(self) -> int:
        return len(self.bodies.landmark_size)


def _act_dim(space: spaces.Space) -> int:
    return int(space.n) if isinstance(space, spaces.Discrete) else int(np.prod(space.shape))


def describe(params: PettingZooParams) -> World:
    """Build one copy of the world and read its teams, spaces and bodies; ValueError for a
    team whose agents differ in spaces, or a space the learners cannot use."""
    env = build(params)
    try:
        env.reset(seed=0)
        agents = group_teams(list(env.possible_agents), params.teams)
        obs_spaces, act_spaces = {}, {}
        for team, names in agents.items():
            obs = {a: env.observation_space(a) for a in names}
            act = {a: env.action_space(a) for a in names}
            for what, sp in (("observation", obs), ("action", act)):
                if len({repr(s) for s in sp.values()}) > 1:
                    listing = ", ".join(f"{a}: {s}" for a, s in sp.items())
                    raise ValueError(
                        f"team {team!r}: its agents must share one {what} space, got {listing}"
                        " (list them in other teams with env.teams)"
                    )
            o, a = obs[names[0]], act[names[0]]
            if not isinstance(o, spaces.Box):
                raise ValueError(f"team {team!r}: observation space {o} is not a Box")
            if not isinstance(a, spaces.Box | spaces.Discrete):
                raise ValueError(f"team {team!r}: action space {a} is neither Box nor Discrete")
            obs_spaces[team], act_spaces[team] = o, a
        episode_length = params.episode_length or getattr(env.unwrapped, "max_cycles", None)
        if not episode_length:
            raise ValueError(
                f"{params.make} has no max_cycles: set env.episode_length (steps per episode)"
            )
        names = [a for t in agents.values() for a in t]
        pos, landmarks = positions(env, names)
        sizes = body_sizes(env, names)
    finally:
        env.close()
    return World(
        name="pettingzoo", params=params, agents=agents, obs_spaces=obs_spaces,
        act_spaces=act_spaces, episode_length=int(episode_length), has_positions=pos is not None,
        bodies=Bodies(
            size=sizes[0], accel=np.ones(len(names)), max_speed=np.ones(len(names)),
            landmark_size=sizes[1] if landmarks is not None else np.zeros(0),
        ),
    )  # fmt: skip


def positions(env, names: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Agent positions [N, 2] in `names` order and landmark positions [L, 2] of a world that
    exposes them: a `positions()` method ({agent: (x, y)}) on the unwrapped env, or an MPE
    `world` of bodies with `.name` and `.state.p_pos`; (None, None) where it has neither."""
    u = env.unwrapped
    hook = getattr(u, "positions", None)
    if callable(hook):
        p = hook()
        return np.array([p[a] for a in names], np.float64).reshape(len(names), 2), None
    world = getattr(u, "world", None)
    bodies = getattr(world, "agents", None)
    if not bodies or not all(hasattr(b, "state") and hasattr(b, "name") for b in bodies):
        return None, None
    by_name = {b.name: b.state.p_pos for b in bodies}
    if set(names) - set(by_name):
        return None, None
    lms = getattr(world, "landmarks", [])
    landmarks = np.array([lm.state.p_pos for lm in lms], np.float64).reshape(len(lms), 2)
    return np.array([by_name[a] for a in names], np.float64), landmarks


def body_sizes(env, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Radii of agents [N] and landmarks [L] where an MPE world has them (else 0.05, none)."""
    world = getattr(env.unwrapped, "world", None)
    size = {b.name: float(b.size) for b in getattr(world, "agents", []) if hasattr(b, "size")}
    lms = getattr(world, "landmarks", [])
    agent = np.array([size.get(a, 0.05) for a in names])
    return agent, np.array([float(getattr(lm, "size", 0.05)) for lm in lms])


def missing_for_scripted(world: World) -> list[str]:
    """What a world lacks for the scripted chaser and evader (empty: nothing): the agents'
    positions, teams `predator` and `prey`, and per team mpe's action layout."""
    out = []
    if not world.has_positions:
        out.append(
            "agent positions (the world exposes none: give its unwrapped env a positions() "
            "method returning {agent: (x, y)}, or an MPE `world`)"
        )
    if not {"predator", "prey"} <= set(world.teams):
        out.append(f"teams 'predator' and 'prey' (it has {list(world.teams)}: set env.teams)")
    for team, space in world.act_spaces.items():
        if not _mpe_layout(space):
            out.append(
                f"mpe's action layout for team {team!r} (Discrete(5) or Box(0, 1, (5,)) = "
                f"[no-op, left, right, down, up]; it has {space})"
            )
    return out


def _mpe_layout(space: spaces.Space) -> bool:
    if isinstance(space, spaces.Discrete):
        return int(space.n) == 5 and int(space.start) == 0
    return space.shape == (5,) and (space.low == 0).all() and (space.high == 1).all()


def forces_to_actions(space: spaces.Space, forces: np.ndarray) -> np.ndarray:
    """A scripted policy's forces [E, n, 2] in [-1, 1] -> learner actions [E, n, 5] of a team
    with mpe's action layout: one-hot of the nearest move (Discrete), or each axis's push
    split over its two directions, [0, left, right, down, up] in [0, 1] (mpe2 applies
    right - left, up - down: the force itself), as [-1, 1] actions."""
    if isinstance(space, spaces.Discrete):
        return forces_to_choices(forces)
    f = np.asarray(forces, np.float64)
    push = np.stack(
        [np.zeros_like(f[..., 0]), -f[..., 0], f[..., 0], -f[..., 1], f[..., 1]], axis=-1
    )  # [E, n, 5]
    return (2.0 * np.maximum(push, 0.0) - 1.0).astype(np.float32)


def uniform_actions(space: spaces.Space, shape: tuple[int, int], rng) -> np.ndarray:
    """The world's own uniform random action (what `space.sample()` draws) for [E, n] agents,
    as learner actions [E, n, K]: a uniform choice one-hot, or uniform in [-1, 1]^K."""
    if isinstance(space, spaces.Discrete):
        return np.eye(int(space.n), dtype=np.float32)[rng.integers(int(space.n), size=shape)]
    return rng.uniform(-1.0, 1.0, size=(*shape, _act_dim(space))).astype(np.float32)


def to_world_action(space: spaces.Space, a: np.ndarray):
    """A learner's action vector [K] (in [-1, 1]) -> the world's action."""
    if isinstance(space, spaces.Discrete):
        return int(space.start + np.argmax(a))
    a = np.clip(np.asarray(a, np.float64), -1.0, 1.0).reshape(space.shape)
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high)
    out = np.where(bounded, low + (a + 1.0) * 0.5 * (high - low), a)
    return out.astype(space.dtype)


class WorldCopies(gymnasium.Env):
    """`k` copies of a world in one worker process, as one gymnasium Env (what
    `gymnasium.vector.AsyncVectorEnv` runs in each worker). Each copy resets itself when its
    episode ends; the observation carries, per team, the observations after that reset
    (`obs/`), the final ones before it (`final/`), the step's rewards (`rew/`) and whether
    each agent took part in the step (`alive/`: absent agents get zeros), plus the copies'
    terminated / truncated flags and the agents' positions (`pos` after any reset,
    `final_pos` before it; zeros where the world has none) and landmark positions."""

    def __init__(self, world: World, k: int):
        self.world, self.k = world, k
        self.envs = [build(world.params) for _ in range(k)]
        self.names = [a for t in world.agents.values() for a in t]
        self.t = np.zeros(k, np.int64)
        N, L = world.num_agents, world.num_landmarks
        f32 = {"low": -np.inf, "high": np.inf, "dtype": np.float32}
        obs: dict[str, spaces.Space] = {}
        for team, n in world.team_sizes.items():
            d = world.obs_dims[team]
            obs[f"obs/{team}"] = spaces.Box(shape=(k, n, d), **f32)
            obs[f"final/{team}"] = spaces.Box(shape=(k, n, d), **f32)
            obs[f"rew/{team}"] = spaces.Box(shape=(k, n), **f32)
            obs[f"alive/{team}"] = spaces.Box(shape=(k, n), **f32)
        for key, shape in (("terminated", (k,)), ("truncated", (k,)), ("pos", (k, N, 2)),
                           ("final_pos", (k, N, 2)), ("landmark_pos", (k, L, 2))):  # fmt: skip
            obs[key] = spaces.Box(shape=shape, **f32)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Dict(
            {t: spaces.Box(shape=(k, n, world.act_dims[t]), **f32)
             for t, n in world.team_sizes.items()}
        )  # fmt: skip
        self.out = {key: np.zeros(s.shape, np.float32) for key, s in obs.items()}

    def reset(self, *, seed: int | None = None, options=None):
        """Reset every copy; copy j gets seed `seed + j`."""
        for j in range(self.k):
            self._reset_copy(j, None if seed is None else seed + j)
        for team in self.world.teams:
            self.out[f"final/{team}"][:] = self.out[f"obs/{team}"]
            self.out[f"rew/{team}"][:] = 0.0
        self.out["final_pos"][:] = self.out["pos"]
        self.out["terminated"][:] = self.out["truncated"][:] = 0.0
        return self.out, {}

    def _reset_copy(self, j: int, seed: int | None) -> None:
        env = self.envs[j]
        obs, _ = env.reset(seed=seed)
        self.t[j] = 0
        self._write(j, "obs", obs)
        self._write_positions(j, "pos")

    def _write(self, j: int, key: str, obs: Mapping[str, Any], rew=None) -> None:
        for team, names in self.world.agents.items():
            o, alive = self.out[f"{key}/{team}"][j], self.out[f"alive/{team}"][j]
            for i, a in enumerate(names):
                present = a in obs
                o[i] = np.asarray(obs[a], np.float32).reshape(-1) if present else 0.0
                if key == "final":  # the step's own rewards and who took part in it
                    alive[i] = present
                    self.out[f"rew/{team}"][j, i] = rew.get(a, 0.0) if present else 0.0

    def _write_positions(self, j: int, key: str) -> None:
        if not self.world.has_positions:
            return
        pos, landmarks = positions(self.envs[j], self.names)
        self.out[key][j] = pos
        if landmarks is not None and key == "pos":
            self.out["landmark_pos"][j] = landmarks

    def step(self, action: Mapping[str, np.ndarray]):
        w = self.world
        for j, env in enumerate(self.envs):
            live = set(env.agents)
            acts = {
                a: to_world_action(w.act_spaces[team], action[team][j, i])
                for team, names in w.agents.items()
                for i, a in enumerate(names)
                if a in live
            }
            obs, rew, term, trunc, _ = env.step(acts)
            self.t[j] += 1
            self._write(j, "final", obs, rew)
            self._write_positions(j, "final_pos")
            limit = self.t[j] >= w.episode_length
            done = not env.agents or limit
            cut = limit or any(trunc.values())  # time limit: bootstrap, not terminal
            self.out["terminated"][j] = done and not cut
            self.out["truncated"][j] = done and cut
            if done:
                self._reset_copy(j, None)
            else:
                for team in w.teams:
                    self.out[f"obs/{team}"][j] = self.out[f"final/{team}"][j]
                self.out["pos"][j] = self.out["final_pos"][j]
        # gymnasium's own auto-reset stays idle: each copy resets itself above
        return self.out, 0.0, False, False, {}

    def close(self):
        for env in self.envs:
            env.close()
