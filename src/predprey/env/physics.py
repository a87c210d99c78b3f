"""MPE point-mass physics as numba kernels over all environments at once.

Matches mpe2's `World.step` exactly (order of operations included):
  1. force = action force (already scaled by the agent's acceleration)
           + soft contact forces for every colliding pair (agent-agent, agent-landmark)
  2. pos += vel * dt            (mpe2 moves with the *previous* velocity)
  3. vel = vel * (1 - damping) + force / mass * dt, then clamp |vel| to max_speed
Contact force between two discs: contact_force * d/|d| * k * log(1 + exp(-(|d| - r_sum)/k)).
Dead agents (captured prey that left) neither push nor move.
An optional wall box [0, box]^2 keeps agents inside (positions clamped, inward velocity kept).

`world_step_env` steps one environment; `physics_step` (the generic path) and fused scenario
kernels (e.g. `tag_mpe.mpe_tag_step`) loop it over environments.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# A pair further apart than r_sum + CONTACT_CUTOFF * margin gets no contact force: there the
# softplus term is below exp(-28) ~ 7e-13, so the skipped force is < 1e-12 * contact_force * margin
# (1e-13 for mpe), far below the 1e-4 parity tolerance with mpe2 (tests/test_env_mpe_parity.py).
# Skipping saves a sqrt, an exp and a log1p for almost every pair.
CONTACT_CUTOFF = 28.0


@njit(cache=True)
def _softplus(x):
    # log(1 + exp(x)) without overflow: identical to np.logaddexp(0, x)
    if x > 0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


# The per-env helpers take whole arrays plus indices and are inlined: numba array views
# (pos[e]) cost reference counting per env, which made the kernels about 3x slower.


@njit(cache=True, inline="always")
def contact(dx, dy, dist_min, contact_force, margin):
    """Soft contact force on the first disc of a pair at offset (dx, dy) = p_a - p_b."""
    d2 = dx * dx + dy * dy
    reach = dist_min + CONTACT_CUTOFF * margin
    if d2 > reach * reach or d2 == 0.0:
        return 0.0, 0.0
    dist = math.sqrt(d2)
    mag = contact_force * _softplus(-(dist - dist_min) / margin) * margin / dist
    return mag * dx, mag * dy


@njit(cache=True, inline="always")
def world_step_env(
    e,  # the environment to step
    pos,  # [E, N, 2] updated in place
    vel,  # [E, N, 2] updated in place
    force,  # [*, N, 2]: row f holds env e's action force on entry; contact forces are added
    f,
    alive,  # [E, N] bool
    size,  # [N] agent radius
    max_speed,  # [N]
    landmark_pos,  # [E, L, 2]
    landmark_size,  # [L]
    dt,
    damping,
    contact_force,
    contact_margin,
    box,  # > 0: walls at 0 and box on both axes; <= 0: open plane
):
    N, L = pos.shape[1], landmark_pos.shape[1]
    for a in range(N):
        if not alive[e, a]:
            continue
        for b in range(a + 1, N):
            if not alive[e, b]:
                continue
            fx, fy = contact(
                pos[e, a, 0] - pos[e, b, 0], pos[e, a, 1] - pos[e, b, 1], size[a] + size[b],
                contact_force, contact_margin,
            )  # fmt: skip
            force[f, a, 0] += fx
            force[f, a, 1] += fy
            force[f, b, 0] -= fx
            force[f, b, 1] -= fy
        for j in range(L):
            fx, fy = contact(
                pos[e, a, 0] - landmark_pos[e, j, 0], pos[e, a, 1] - landmark_pos[e, j, 1],
                size[a] + landmark_size[j], contact_force, contact_margin,
            )  # fmt: skip
            force[f, a, 0] += fx
            force[f, a, 1] += fy
    for a in range(N):
        if not alive[e, a]:
            vel[e, a, 0] = 0.0
            vel[e, a, 1] = 0.0
            continue
        pos[e, a, 0] += vel[e, a, 0] * dt
        pos[e, a, 1] += vel[e, a, 1] * dt
        vx = vel[e, a, 0] * (1.0 - damping) + force[f, a, 0] * dt
        vy = vel[e, a, 1] * (1.0 - damping) + force[f, a, 1] * dt
        speed = math.sqrt(vx * vx + vy * vy)
        if speed > max_speed[a]:
            vx = vx / speed * max_speed[a]
            vy = vy / speed * max_speed[a]
        if box > 0.0:
            vx = _wall(pos, e, a, 0, vx, size[a], box)
            vy = _wall(pos, e, a, 1, vy, size[a], box)
        vel[e, a, 0] = vx
        vel[e, a, 1] = vy


@njit(cache=True, inline="always")
def _wall(pos, e, a, d, v, radius, box):
    """Clamp coordinate d of agent a into [radius, box - radius]; keep only inward velocity."""
    p = pos[e, a, d]
    if p < radius:
        pos[e, a, d] = radius
        return max(v, 0.0)
    if p > box - radius:
        pos[e, a, d] = box - radius
        return min(v, 0.0)
    return v


@njit(cache=True)
def physics_step(
    pos,  # [E, N, 2] float64, updated in place
    vel,  # [E, N, 2] float64, updated in place
    force,  # [E, N, 2] float64 action force (accel * action); overwritten with total force
    alive,  # [E, N] bool
    size,  # [N] agent radius
    max_speed,  # [N]
    landmark_pos,  # [E, L, 2]
    landmark_size,  # [L]
    dt,
    damping,
    contact_force,
    contact_margin,
    box,
):
    for e in range(pos.shape[0]):
        world_step_env(
            e, pos, vel, force, e, alive, size, max_speed, landmark_pos, landmark_size,
            dt, damping, contact_force, contact_margin, box,
        )  # fmt: skip


@njit(cache=True, inline="always")
def count_touches_env(e, pos, alive, size, n_pred, per_agent, r):
    """Predator-prey pairs of env e closer than the sum of their radii; returns the count and
    writes per agent how many opponents touch it into row r of per_agent [*, N]."""
    N = pos.shape[1]
    for i in range(N):
        per_agent[r, i] = 0
    total = 0
    for i in range(n_pred):
        if not alive[e, i]:
            continue
        for j in range(n_pred, N):
            if not alive[e, j]:
                continue
            dx = pos[e, i, 0] - pos[e, j, 0]
            dy = pos[e, i, 1] - pos[e, j, 1]
            if math.sqrt(dx * dx + dy * dy) < size[i] + size[j]:
                total += 1
                per_agent[r, i] += 1
                per_agent[r, j] += 1
    return total


@njit(cache=True)
def touching_pairs(pos, alive, size, n_pred):
    """Per env: number of (predator, prey) pairs closer than the sum of their radii. [E] int64
    Also returns, per agent, how many opponents touch it. [E, N] int64"""
    E, N = pos.shape[0], pos.shape[1]
    touches = np.zeros(E, dtype=np.int64)
    per_agent = np.zeros((E, N), dtype=np.int64)
    for e in range(E):
        touches[e] = count_touches_env(e, pos, alive, size, n_pred, per_agent, e)
    return touches, per_agent
