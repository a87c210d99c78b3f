"""Observation modes shared by scenarios: `rays` and `local` (egocentric K-nearest).

rays:  `num_rays` rays evenly around each agent at angles 2*pi*k/num_rays (world frame: point
       masses have no heading). Ray k reports the nearest living OPPONENT whose bearing is
       within half a ray spacing of the ray's angle (-1/2 inclusive, +1/2 exclusive), as
       distance / view_distance in [0, 1]; 1 where no opponent is closer than view_distance.
       Every opponent in view is thus seen by exactly one ray (no blind spots between rays).
local: [own vel (2), own pos (2)], then for each team t its k_t nearest living agents other
       than self (k_t may depend on the observer's team: k[observer team, t]), nearest first,
       each [present, rel pos (2), rel vel (2)], then the k_landmarks nearest landmarks, each
       [present, rel pos (2)] (with `claims`, [present, rel pos (2), claim]: the distance
       from the landmark to the nearest agent of the observer's team other than itself,
       capped at CLAIM_CAP: whether someone else is already there), then (with `target`)
       one slot [present, rel pos (2)]: under rule `free`, the nearest of the TARGET_SEARCH
       nearest landmarks to which the observer is nearer than every other agent of its team
       (a landmark no one else is closer to: the nearest one it can have); under `matched`,
       the observer's landmark in a greedy matching (shortest agent-landmark pair first) of
       it and its MATCH_AGENTS - 1 nearest teammates to its TARGET_SEARCH nearest landmarks:
       a local stand-in for dividing the landmarks among the agents, which lends a spare
       agent a landmark whose nearest agent is busy with a nearer one; missing slots are all
       zero. The size does not depend on the
       number of agents, so one policy runs at any N. Own position is in units of the arena's
       half-width from its centre ([-1, 1] inside the arena; 0 where the scenario's
       `own_position` is false, for a purely egocentric view); the rest is egocentric, in the
       scenario's length unit (world units; the seed preset's half-width), so with the
       density held it has the same distribution at any N.
rays reads world coordinates.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from predprey.env.grid import GRID_MIN, grid_alloc, grid_build, grid_fill, grid_knn

AGENT_SLOT = 5  # present, dx, dy, dvx, dvy
LANDMARK_SLOT = 3  # present, dx, dy (+ claim)
CLAIM_CAP = 1.0  # world units: a landmark's nearest other agent farther than this reads as this
TARGET_SEARCH = 16  # landmarks searched, nearest first, for the target slot
MATCH_AGENTS = 16  # matched target: the observer and its 15 nearest teammates
TARGET_FREE, TARGET_MATCHED = 1, 2  # local_observe's `target` rules (0: no slot)


class EntityGroup(NamedTuple):
    """One kind of entity slot in a `local` observation (what `learn.attention` tokenises)."""

    kind: str  # entity type: a team's name, "landmark" or "target"
    start: int  # feature index of its first slot
    count: int  # slots (0: the kind is not seen, but a network still knows it)
    width: int  # features per slot; the first is `present` (1, or 0 for an empty slot)


OWN_DIM = 4  # an observation's first features: own vel (2), own pos (2)


def local_layout(teams, k_per_team, k_landmarks: int, claims: bool = False,
                 target: bool = False) -> tuple[EntityGroup, ...]:  # fmt: skip
    """The entity slots of a `local` observation (sizes as `local_dim`'s), in order; teams
    [T] names the kinds of k_per_team [T]'s slots."""
    groups, c = [], OWN_DIM
    for team, k in zip(teams, k_per_team, strict=True):
        groups.append(EntityGroup(team, c, int(k), AGENT_SLOT))
        c += AGENT_SLOT * int(k)
    groups.append(EntityGroup("landmark", c, int(k_landmarks), LANDMARK_SLOT + claims))
    c += (LANDMARK_SLOT + claims) * int(k_landmarks)
    if target:
        groups.append(EntityGroup("target", c, 1, LANDMARK_SLOT))
    return tuple(groups)


def local_dim(k_per_team, k_landmarks: int, claims: bool = False, target: bool = False) -> int:
    """Size of an observation with k_per_team[t] slots for team t."""
    lm = (LANDMARK_SLOT + claims) * k_landmarks + LANDMARK_SLOT * target
    return int(4 + AGENT_SLOT * sum(k_per_team) + lm)


@njit(cache=True, inline="always")
def _approx_atan2(y, x):
    """atan2 to within 3e-4 rad, a few times faster than libm's (a polynomial on [0, 1])."""
    ax, ay = abs(x), abs(y)
    hi, lo = max(ax, ay), min(ax, ay)
    if hi == 0.0:
        return 0.0
    a = lo / hi
    s = a * a
    r = ((-0.0464964749 * s + 0.15931422) * s - 0.327622764) * s * a + a
    if ay > ax:
        r = 0.5 * math.pi - r
    if x < 0.0:
        r = math.pi - r
    return -r if y < 0.0 else r


@njit(cache=True)
def ray_observe(pos, alive, n_pred, num_rays, view_distance, out):
    """out [E, N, num_rays] float32 (num_rays >= 3). Predators see prey, prey see predators;
    the dead see none and are seen by none. Ray k covers bearings [(k - 1/2) w, (k + 1/2) w),
    w = 2 pi / num_rays: an approximate atan2 picks the ray, then exact cross products with
    the sector's edges move it to the neighbour if the approximation crossed an edge."""
    E, N = pos.shape[0], pos.shape[1]
    spacing = 2.0 * math.pi / num_rays
    edge_x = np.cos((np.arange(num_rays) - 0.5) * spacing)  # [R] lower edge of ray k's sector
    edge_y = np.sin((np.arange(num_rays) - 0.5) * spacing)
    out[:] = 1.0
    for e in range(E):
        for i in range(N):
            if not alive[e, i]:
                continue
            lo, hi = (n_pred, N) if i < n_pred else (0, n_pred)
            for j in range(lo, hi):
                if not alive[e, j]:
                    continue
                dx = pos[e, j, 0] - pos[e, i, 0]
                dy = pos[e, j, 1] - pos[e, i, 1]
                d = math.sqrt(dx * dx + dy * dy)
                if d >= view_distance:
                    continue
                k = int(math.floor(_approx_atan2(dy, dx) / spacing + 0.5)) % num_rays
                k1 = (k + 1) % num_rays
                if edge_x[k] * dy - edge_y[k] * dx < 0.0:  # clockwise of the lower edge
                    k = (k - 1) % num_rays
                elif dx * edge_y[k1] - dy * edge_x[k1] <= 0.0:  # on or past the upper edge
                    k = k1
                v = d / view_distance
                if v < out[e, i, k]:
                    out[e, i, k] = v


@njit(cache=True)
def local_observe(pos, vel, landmark_pos, alive, team_start, k_team, k_landmarks, centre, inv_half,
                  claims, target, out):  # fmt: skip
    """out [E, N, D] float32, D >= every observer team's local_dim (the rest is left zero).
    team_start [T + 1]: agent index where each team starts (last entry N); k_team [T, T]:
    k_team[u, t] slots for team t in the observations of team u's agents. Own position is
    (pos - centre) * inv_half (centre [2]); relative positions and velocities are as given.
    claims: landmark slots end with the landmark's claim; target (0: none, TARGET_FREE,
    TARGET_MATCHED): the target slot under that rule follows them (module docstring).
    Neighbours come from a cell grid per team and one over the landmarks
    (`predprey.env.grid`): O(N) per env."""
    E, N = pos.shape[0], pos.shape[1]
    L = landmark_pos.shape[1]
    T = k_team.shape[0]
    kmax = max(k_landmarks, 1, k_team.max())
    idx = np.empty(kmax, np.int64)
    dist = np.empty(kmax, np.float64)
    other, other_d = np.empty(1, np.int64), np.empty(1, np.float64)
    near, near_d = np.empty(TARGET_SEARCH, np.int64), np.empty(TARGET_SEARCH, np.float64)
    crew, crew_d = np.empty(MATCH_AGENTS, np.int64), np.empty(MATCH_AGENTS, np.float64)
    pair_d = np.empty(MATCH_AGENTS * TARGET_SEARCH, np.float64)
    lm_slot = LANDMARK_SLOT + 1 if claims else LANDMARK_SLOT
    xs, ys, ids, items, cell_of, start, geo = grid_alloc(T + 1, max(N, L))
    m = np.zeros(T + 1, np.int64)
    every = np.empty(0, np.bool_)  # landmarks: no alive mask
    out[:] = 0.0
    for e in range(E):
        for g in range(T + 1):
            if g < T:
                m[g] = grid_fill(pos[e], alive[e], team_start[g], team_start[g + 1], xs[g],
                                 ys[g], ids[g])  # fmt: skip
            else:
                m[g] = grid_fill(landmark_pos[e], every, 0, L, xs[g], ys[g], ids[g])
            if m[g] >= GRID_MIN:
                grid_build(xs[g], ys[g], m[g], items[g], cell_of[g], start[g], geo[g])
        u = 0  # the observer's team
        for i in range(N):
            while i >= team_start[u + 1]:
                u += 1
            o = out[e, i]
            px, py = pos[e, i, 0], pos[e, i, 1]
            o[0] = vel[e, i, 0]
            o[1] = vel[e, i, 1]
            o[2] = (px - centre[0]) * inv_half
            o[3] = (py - centre[1]) * inv_half
            c = 4
            for t in range(T):
                n = grid_knn(px, py, i, k_team[u, t], xs[t], ys[t], ids[t], m[t], items[t],
                             start[t], geo[t], idx, dist)  # fmt: skip
                for s in range(n):
                    j = idx[s]
                    b = c + AGENT_SLOT * s
                    o[b] = 1.0
                    o[b + 1] = pos[e, j, 0] - px
                    o[b + 2] = pos[e, j, 1] - py
                    o[b + 3] = vel[e, j, 0] - vel[e, i, 0]
                    o[b + 4] = vel[e, j, 1] - vel[e, i, 1]
                c += AGENT_SLOT * k_team[u, t]
            n = grid_knn(px, py, -1, k_landmarks, xs[T], ys[T], ids[T], m[T], items[T],
                         start[T], geo[T], idx, dist)  # fmt: skip
            for s in range(n):
                j = idx[s]
                b = c + lm_slot * s
                lx, ly = landmark_pos[e, j, 0], landmark_pos[e, j, 1]
                o[b] = 1.0
                o[b + 1] = lx - px
                o[b + 2] = ly - py
                if claims:
                    found = grid_knn(lx, ly, i, 1, xs[u], ys[u], ids[u], m[u], items[u],
                                     start[u], geo[u], other, other_d)  # fmt: skip
                    o[b + 3] = min(math.sqrt(other_d[0]), CLAIM_CAP) if found else CLAIM_CAP
            if target:
                b = c + lm_slot * k_landmarks
                n = grid_knn(px, py, -1, TARGET_SEARCH, xs[T], ys[T], ids[T], m[T], items[T],
                             start[T], geo[T], near, near_d)  # fmt: skip
                if target == TARGET_MATCHED:
                    crew[0] = i
                    a = 1 + grid_knn(px, py, i, MATCH_AGENTS - 1, xs[u], ys[u], ids[u], m[u],
                                     items[u], start[u], geo[u], crew[1:], crew_d[1:])  # fmt: skip
                    s = _local_match(pos[e], landmark_pos[e], crew, a, near, n, pair_d)
                    if s >= 0:
                        lx, ly = landmark_pos[e, near[s], 0], landmark_pos[e, near[s], 1]
                        o[b] = 1.0
                        o[b + 1] = lx - px
                        o[b + 2] = ly - py
                    continue
                for s in range(n):
                    lx, ly = landmark_pos[e, near[s], 0], landmark_pos[e, near[s], 1]
                    found = grid_knn(lx, ly, i, 1, xs[u], ys[u], ids[u], m[u], items[u],
                                     start[u], geo[u], other, other_d)  # fmt: skip
                    if found == 0 or other_d[0] > near_d[s]:  # no one else is nearer
                        o[b] = 1.0
                        o[b + 1] = lx - px
                        o[b + 2] = ly - py
                        break


@njit(cache=True)
def _local_match(pos, landmark_pos, crew, a, near, n, pair_d):
    """Greedy matching of agents crew[:a] (the observer first) to landmarks near[:n],
    shortest pair first (ties: lower crew slot, then nearer landmark): the index s into near
    of the observer's landmark, or -1 if it gets none. pair_d: scratch of >= a * n."""
    for r in range(a):
        ax, ay = pos[crew[r], 0], pos[crew[r], 1]
        for s in range(n):
            dx, dy = landmark_pos[near[s], 0] - ax, landmark_pos[near[s], 1] - ay
            pair_d[r * n + s] = dx * dx + dy * dy
    order = np.argsort(pair_d[: a * n], kind="mergesort")  # stable: ties in slot order
    agent_done = np.zeros(a, np.bool_)
    landmark_done = np.zeros(n, np.bool_)
    for f in order:
        r, s = f // n, f % n
        if agent_done[r] or landmark_done[s]:
            continue
        if r == 0:
            return s
        agent_done[r] = True
        landmark_done[s] = True
    return -1
