"""MPE point-mass physics as numba kernels over all environments at once.

Matches mpe2's `World.step` exactly (order of operations included):
  1. force = action force (already scaled by the agent's acceleration)
           + soft contact forces for every colliding pair (agent-agent, agent-landmark)
  2. pos += vel * dt            (mpe2 moves with the *previous* velocity)
  3. vel = vel * (1 - damping) + force / mass * dt, then clamp |vel| to max_speed
Contact force between two discs: contact_force * d/|d| * k * log(1 + exp(-(|d| - r_sum)/k)).
Dead agents (captured prey that left) neither push nor move.
An optional wall box [0, box]^2 keeps agents inside (positions clamped, inward velocity kept).

`physics_step` is used by VecEnv's generic path and inside fused scenario kernels
(`tag_mpe.mpe_tag_step`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from predprey.env.grid import grid_alloc, grid_box, grid_build, grid_fill

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


# The kernels below keep the loop over environments in their own body: per-env helper calls
# that take arrays (even inlined ones) cost numba reference counting per env, about 2x here.


@njit(cache=True, inline="always")
def pair_contact(pos, size, contact_force, margin, force, e, a, b):
    """Add the contact force between agents a and b of env e to both (equal and opposite)."""
    fx, fy = contact(
        pos[e, a, 0] - pos[e, b, 0], pos[e, a, 1] - pos[e, b, 1], size[a] + size[b],
        contact_force, margin,
    )  # fmt: skip
    force[e, a, 0] += fx
    force[e, a, 1] += fy
    force[e, b, 0] -= fx
    force[e, b, 1] -= fy


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
    box,  # > 0: walls at 0 and box on both axes; <= 0: open plane
    agent_pairs,  # False: agent-agent contacts are already in force (`grid_contacts`)
):
    E, N, L = pos.shape[0], pos.shape[1], landmark_pos.shape[1]
    for e in range(E):
        for a in range(N):
            if not alive[e, a]:
                continue
            for b in range(a + 1, N if agent_pairs else 0):
                if not alive[e, b]:
                    continue
                pair_contact(pos, size, contact_force, contact_margin, force, e, a, b)
            for j in range(L):
                fx, fy = contact(
                    pos[e, a, 0] - landmark_pos[e, j, 0], pos[e, a, 1] - landmark_pos[e, j, 1],
                    size[a] + landmark_size[j], contact_force, contact_margin,
                )  # fmt: skip
                force[e, a, 0] += fx
                force[e, a, 1] += fy
        for a in range(N):
            if not alive[e, a]:
                vel[e, a, 0] = 0.0
                vel[e, a, 1] = 0.0
                continue
            pos[e, a, 0] += vel[e, a, 0] * dt
            pos[e, a, 1] += vel[e, a, 1] * dt
            vx = vel[e, a, 0] * (1.0 - damping) + force[e, a, 0] * dt
            vy = vel[e, a, 1] * (1.0 - damping) + force[e, a, 1] * dt
            speed = math.sqrt(vx * vx + vy * vy)
            if speed > max_speed[a]:
                vx = vx / speed * max_speed[a]
                vy = vy / speed * max_speed[a]
            if box > 0.0:
                for d in range(2):
                    v = vx if d == 0 else vy
                    if pos[e, a, d] < size[a]:
                        pos[e, a, d] = size[a]
                        v = max(v, 0.0)
                    elif pos[e, a, d] > box - size[a]:
                        pos[e, a, d] = box - size[a]
                        v = min(v, 0.0)
                    if d == 0:
                        vx = v
                    else:
                        vy = v
            vel[e, a, 0] = vx
            vel[e, a, 1] = vy


@njit(cache=True)
def grid_contacts(pos, alive, size, contact_force, contact_margin, force):
    """Add the agent-agent contact forces of every env to force [E, N, 2], finding the pairs
    within reach from a cell grid (`predprey.env.grid`) instead of all N^2 pairs."""
    E, N = pos.shape[0], pos.shape[1]
    xs, ys, ids, items, cell_of, start, geo = grid_alloc(1, N)
    reach = 2.0 * size.max() + CONTACT_CUTOFF * contact_margin
    for e in range(E):
        m = grid_fill(pos[e], alive[e], 0, N, xs[0], ys[0], ids[0])
        grid_build(xs[0], ys[0], m, items[0], cell_of[0], start[0], geo[0])
        gx = int(geo[0, 3])
        for a in range(m):
            i = ids[0, a]
            ix0, ix1, iy0, iy1 = grid_box(xs[0, a], ys[0, a], reach, geo[0])
            for iy in range(iy0, iy1 + 1):
                for ix in range(ix0, ix1 + 1):
                    q = iy * gx + ix
                    for s in range(start[0, q], start[0, q + 1]):
                        j = ids[0, items[0, s]]
                        if j <= i:
                            continue
                        pair_contact(pos, size, contact_force, contact_margin, force, e, i, j)


@njit(cache=True)
def count_touches(pos, alive, size, n_pred, touches, per_agent):
    """Per env, the predator-prey pairs closer than the sum of their radii into touches [E];
    per agent, how many opponents touch it into per_agent [E, N]."""
    E, N = pos.shape[0], pos.shape[1]
    for e in range(E):
        total = 0
        for i in range(N):
            per_agent[e, i] = 0
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
                    per_agent[e, i] += 1
                    per_agent[e, j] += 1
        touches[e] = total


@njit(cache=True)
def touching_pairs(pos, alive, size, n_pred):
    """Per env: number of (predator, prey) pairs closer than the sum of their radii. [E] int64
    Also returns, per agent, how many opponents touch it. [E, N] int64"""
    E, N = pos.shape[0], pos.shape[1]
    touches = np.empty(E, dtype=np.int64)
    per_agent = np.empty((E, N), dtype=np.int64)
    count_touches(pos, alive, size, n_pred, touches, per_agent)
    return touches, per_agent
