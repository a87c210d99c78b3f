"""Preset `seed` of tag: the original service's world.

A walled square box [0, arena_size]^2 (default 250 x 250), default 5 predators v 5 prey,
200-step episodes. Physics is MPE's (dt 0.1, damping 0.25, soft contacts) with every length
scaled so that the box is 250 wide; velocities are in box units per time unit, so an agent
at full speed moves max_speed * dt per step:

  predator: radius 4, acceleration 120, max speed 40 (4 units/step, ~60 steps to cross the box)
  prey:     radius 3, acceleration 150, max speed 50 (5 units/step)
  obstacle: radius 20 (none by default)

Capture: a living predator within `capture_radius` (centre to centre, default 10) of a living
prey. A capture ends the episode; with `remove_caught` the caught prey leave the world
(alive = False) instead, and the episode ends when no prey remain.

Rewards, O(1) state per agent (nothing accumulates over the episode), distances in box widths:
  predator: -(distance to the nearest living prey) / arena_size + CAPTURE_REWARD * captures
            this step (shared by all predators, as MPE shares its touch reward)
  prey:     +(distance to the nearest predator) / arena_size - CAPTURE_REWARD if caught this
            step; 0 once it has left the world
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from predprey.env.scenario import Bodies

ARENA_SIZE = 250.0
PREDATOR = dict(size=4.0, accel=120.0, max_speed=40.0)
PREY = dict(size=3.0, accel=150.0, max_speed=50.0)
OBSTACLE_SIZE = 20.0
CAPTURE_REWARD = 10.0
SPAWN_TRIES = 50  # redraws of worlds where a prey starts inside a predator's capture radius


def bodies(n_pred: int, n_prey: int, n_obstacles: int, arena: float, sizes: dict) -> Bodies:
    """sizes: predator_size, prey_size, obstacle_size."""
    pred = np.arange(n_pred + n_prey) < n_pred
    return Bodies(
        size=np.where(pred, sizes["predator_size"], sizes["prey_size"]),
        accel=np.where(pred, PREDATOR["accel"], PREY["accel"]),
        max_speed=np.where(pred, PREDATOR["max_speed"], PREY["max_speed"]),
        landmark_size=np.full(n_obstacles, sizes["obstacle_size"]),
        contact_margin=1e-3 * arena / 2.0,  # MPE's margin, scaled with the world
        box=arena,
        arena=(0.0, arena, 0.0, arena),
    )


def reset(k: int, n_pred: int, n_landmarks: int, b: Bodies, capture_radius, rng):
    """Initial positions of k worlds: uniform inside the walls; worlds where a prey would start
    already caught are redrawn (a bounded number of times, whole worlds at once).
    Returns pos [k, N, 2], landmark_pos [k, L, 2]."""
    arena = b.box
    lo, hi = b.size[None, :, None], arena - b.size[None, :, None]  # [1, N, 1]
    landmark_pos = rng.uniform(0.1 * arena, 0.9 * arena, size=(k, n_landmarks, 2))
    pos = np.empty((k, len(b.size), 2))
    todo = np.arange(k)
    for _ in range(SPAWN_TRIES):
        pos[todo] = rng.uniform(lo, hi, size=(len(todo), *pos.shape[1:]))
        d = np.linalg.norm(pos[todo, :n_pred, None] - pos[todo, None, n_pred:], axis=-1)
        todo = todo[(d < capture_radius).any(axis=(1, 2))]  # [k', n_pred, n_prey] -> [k']
        if len(todo) == 0:
            break
    return pos, landmark_pos


@njit(cache=True)
def seed_outcome(pos, alive, n_pred, capture_radius, arena_size, remove_caught):
    """Rewards, captures and termination of every world; marks caught prey dead when
    remove_caught. Returns pred_r [E, n_pred], prey_r [E, n_prey] float32, touches [E] int64
    (predator-prey pairs within the capture radius), terminated [E] bool."""
    E, N = pos.shape[0], pos.shape[1]
    n_prey = N - n_pred
    pred_r = np.zeros((E, n_pred), np.float32)
    prey_r = np.zeros((E, n_prey), np.float32)
    touches = np.zeros(E, np.int64)
    terminated = np.zeros(E, np.bool_)
    near_pred = np.empty(n_pred)  # per predator: distance to its nearest living prey
    for e in range(E):
        near_pred[:] = np.inf
        any_alive = False
        for j in range(n_pred, N):
            if not alive[e, j]:
                continue
            near_prey, caught = np.inf, False
            for i in range(n_pred):
                dx = pos[e, i, 0] - pos[e, j, 0]
                dy = pos[e, i, 1] - pos[e, j, 1]
                d = math.sqrt(dx * dx + dy * dy)
                near_prey = min(near_prey, d)
                near_pred[i] = min(near_pred[i], d)
                if d < capture_radius:
                    touches[e] += 1
                    caught = True
            prey_r[e, j - n_pred] = near_prey / arena_size
            if caught:
                prey_r[e, j - n_pred] -= CAPTURE_REWARD
                if remove_caught:
                    alive[e, j] = False
            if alive[e, j]:
                any_alive = True
        for i in range(n_pred):
            shaping = near_pred[i] / arena_size if near_pred[i] < np.inf else 0.0
            pred_r[e, i] = CAPTURE_REWARD * touches[e] - shaping
        terminated[e] = (not any_alive) if remove_caught else touches[e] > 0
    return pred_r, prey_r, touches, terminated
