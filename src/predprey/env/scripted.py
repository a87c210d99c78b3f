"""Scripted policies, batched over all environments of a VecEnv.

act(name, env, team, rng) -> actions [E, n_team, 2] in [-1, 1], computed from `env.state`
(in a world with `discrete_actions`: one-hot [E, n_team, 5], the move nearest the force):
  random  per axis the difference of two U(0, 1) draws: mpe2's uniform random continuous
          action [noop, -x, +x, -y, +y] as a force (the random of mpe2_baselines.py)
  still   zero force
  chaser  full force towards the nearest living opponent (predators: the nearest prey)
  evader  full force away from the opponents, each weighted by 1 / distance^2, plus a pull
          back towards the centre once beyond 0.7 of the arena's half-width (the greedy evader
          of ../shared/bench/mpe2_baselines.py); near an obstacle (surfaces closer than
          OBSTACLE_MARGIN) the part of that direction heading into it is removed, fully at
          contact, so the prey slides around obstacles instead of pressing into them
  greedy  each agent steers for its nearest landmark and stops there (spread's baseline: no
          coordination, so agents sharing a nearest landmark pile up on it): a PD controller,
          force = GREEDY_GAINS[0] * offset - GREEDY_GAINS[1] * velocity, scaled down to unit
          length; in world units it arrives within 0.1 by step 18 from 2.5 away
  target  greedy's controller, steering for spread's target landmark instead: the nearest of
          the 16 nearest landmarks that no other agent is nearer to (no pile-ups: each
          landmark is one agent's at most), or where the env's `target_rule` is matched,
          the landmark of that slot (`predprey.env.observe`); an agent with none brakes
chaser and evader need an opposing team (tag). Their positions are read in units of the
arena's half-width, centred on the arena, so the same rules drive preset mpe and the 250-wide box.
In a PettingZoo world (scenario `pettingzoo`, e.g. mpe2's simple_tag) random is the world's own
uniform random action; still, chaser and evader need a tag-like world: agent positions, teams
predator and prey, mpe's action layout (`pz_world.missing_for_scripted` names what is missing).
"""

from __future__ import annotations

import numpy as np

from predprey.env import pz_world
from predprey.env.observe import TARGET_MATCHED, TARGET_SEARCH
from predprey.env.vec import forces_to_choices

SCRIPTED = ("random", "still", "chaser", "evader", "greedy", "target")
GREEDY_GAINS = (3.0, 1.0)  # position, velocity
BOUNDARY_START, BOUNDARY_PULL = 0.7, 20.0  # the reference evader's pull back to the centre
OBSTACLE_MARGIN = 0.1  # arena half-widths


def act(name: str, env, team: str, rng: np.random.Generator) -> np.ndarray:
    if env.scenario.name == "pettingzoo":
        return _foreign(name, env, team, rng)
    forces = _forces(name, env, team, rng)  # [E, n, 2]
    return forces_to_choices(forces) if team in env.discrete else forces


def _foreign(name: str, env, team: str, rng: np.random.Generator) -> np.ndarray:
    """A PettingZoo world's team: random is the world's own uniform random action; still,
    chaser and evader follow the rules above from the agent positions the world exposes,
    their forces put into mpe's action layout (`pz_world.forces_to_actions`)."""
    world = env.scenario
    if name not in SCRIPTED or team not in env.teams:
        return _forces(name, env, team, rng)  # its errors name the policy or team
    if name == "random":
        return pz_world.uniform_actions(
            world.act_spaces[team], (env.num_envs, env.team_sizes[team]), rng
        )
    if name in ("greedy", "target"):
        raise ValueError(
            f"scripted policy {name!r} drives predprey's own worlds only: "
            "it steers by velocities, which PettingZoo worlds do not expose"
        )
    missing = pz_world.missing_for_scripted(world)
    if missing:
        raise ValueError(f"scripted policy {name!r} needs a tag-like world; "
                         f"{world.params.make} lacks " + "; ".join(missing))  # fmt: skip
    return pz_world.forces_to_actions(world.act_spaces[team], _forces(name, env, team, rng))


def _forces(name: str, env, team: str, rng: np.random.Generator) -> np.ndarray:
    if name not in SCRIPTED:
        raise ValueError(f"unknown scripted policy {name!r}; choose one of {SCRIPTED}")
    if team not in env.teams:
        raise ValueError(f"unknown team {team!r}; this env has teams {list(env.teams)}")
    shape = (env.num_envs, env.team_sizes[team], 2)
    if name == "random":
        u = rng.uniform(0.0, 1.0, size=(2, *shape))
        return u[0] - u[1]
    if name == "still":
        return np.zeros(shape)
    if name in ("greedy", "target"):
        return _greedy(env, team, own=name == "target")
    others = [t for t in env.teams if t != team]
    if not others:
        raise ValueError(f"scripted policy {name!r} needs an opposing team; {env.teams} has none")
    pos, landmark_pos = _unit_positions(env)
    me, opp = env.slices[team], env.slices[others[0]]
    mine, theirs = pos[:, me], pos[:, opp]  # [E, n, 2], [E, m, 2]
    alive = env.state.alive[:, opp][:, None, :]  # [E, 1, m]
    to_opp = theirs[:, None, :, :] - mine[:, :, None, :]  # [E, n, m, 2]
    dist2 = np.einsum("enmd,enmd->enm", to_opp, to_opp)  # [E, n, m]
    if name == "chaser":
        nearest = np.where(alive, dist2, np.inf).argmin(axis=2)  # [E, n]
        v = np.take_along_axis(to_opp, nearest[:, :, None, None], axis=2)[:, :, 0]  # [E, n, 2]
        v *= alive.any(axis=2)[..., None]  # nobody left to chase: stand still
        return _unit(v)
    w = np.where(alive, 1.0 / (dist2 + 1e-6), 0.0)  # [E, n, m]
    v = -np.einsum("enm,enmd->end", w, to_opp)  # [E, n, 2] away from the weighted predators
    excess = np.maximum(np.abs(mine).max(axis=2, keepdims=True) - BOUNDARY_START, 0.0)  # [E,n,1]
    v -= mine * excess * BOUNDARY_PULL
    if landmark_pos.shape[1]:
        # near an obstacle, drop the part of the flight that heads into it (slide around it)
        half = (env.bodies.arena[1] - env.bodies.arena[0]) / 2
        away = mine[:, :, None, :] - landmark_pos[:, None, :, :]  # [E, n, L, 2]
        dist = np.linalg.norm(away, axis=3, keepdims=True)  # [E, n, L, 1]
        normal = away / np.maximum(dist, 1e-9)  # [E, n, L, 2] unit, pointing out of the obstacle
        radii = (env.bodies.size[me][:, None] + env.bodies.landmark_size[None, :]) / half
        close = np.clip(1.0 - (dist[..., 0] - radii) / OBSTACLE_MARGIN, 0.0, 1.0)  # [E, n, L]
        inward = np.minimum(np.einsum("end,enld->enl", v, normal), 0.0)  # [E, n, L]
        v -= np.einsum("enl,enld->end", close * inward, normal)
    return _unit(v)


def _greedy(env, team: str, own: bool = False) -> np.ndarray:
    """greedy, or with `own` target (module docstring)."""
    s, me = env.state, env.slices[team]
    if s.landmark_pos.shape[1] == 0:
        raise ValueError(f"scripted policy {'target' if own else 'greedy'!r} needs landmarks; "
                         "this env has none")  # fmt: skip
    pos, vel = s.pos[:, me], s.vel[:, me]  # [E, n, 2]
    if own and getattr(env.scenario, "target", 0) == TARGET_MATCHED:
        # the matching lives in the observation kernel only: read its slot
        slot = env.scenario.observe(s)[team][..., -3:]  # [E, n, 3]: present, offset (2)
        return _steer(slot[..., 1:], slot[..., :1], vel)
    to_lm = s.landmark_pos[:, None, :, :] - pos[:, :, None, :]  # [E, n, L, 2]
    d2 = np.einsum("enld,enld->enl", to_lm, to_lm)  # [E, n, L]
    if not own:
        nearest, go = d2.argmin(axis=2), 1.0  # [E, n]
    else:
        padded = np.concatenate([d2, np.full_like(d2[:, :1], np.inf)], axis=1)  # one agent
        two = np.partition(padded, 1, axis=1)[:, :2]  # [E, 2, L]: each landmark's 2 nearest
        # i's own: nearer than every other agent (i is the nearest and not tied)
        mine = (d2 == two[:, :1]) & (two[:, 1:] > d2)  # [E, n, L]
        order = np.argsort(d2, axis=2, kind="stable")  # [E, n, L] nearest first
        order = order[:, :, :TARGET_SEARCH]  # [E, n, S]
        ok = np.take_along_axis(mine, order, axis=2)  # [E, n, S]
        nearest = np.take_along_axis(order, ok.argmax(axis=2)[..., None], axis=2)[..., 0]
        go = ok.any(axis=2)[..., None]  # [E, n, 1]: with none, only brake
    offset = np.take_along_axis(to_lm, nearest[:, :, None, None], axis=2)[:, :, 0]  # [E, n, 2]
    return _steer(offset, go, vel)


def _steer(offset, go, vel) -> np.ndarray:
    """greedy's controller: force 3 x offset [E, n, 2] where go (else 0), minus velocity,
    at most unit length."""
    f = GREEDY_GAINS[0] * offset * go - GREEDY_GAINS[1] * vel
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1.0)


def _unit_positions(env) -> tuple[np.ndarray, np.ndarray]:
    """Agent [E, N, 2] and landmark [E, L, 2] positions in arena half-widths from its centre."""
    x0, x1, y0, y1 = env.bodies.arena
    centre, half = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), (x1 - x0) / 2
    s = env.state
    return (s.pos - centre) / half, (s.landmark_pos - centre) / half


def _unit(v: np.ndarray) -> np.ndarray:
    """Direction of each [..., 2] vector (zero stays zero): the full-force action."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-9)
