"""Neighbour search in one environment: a uniform cell grid, so that K-nearest and
fixed-radius queries cost O(K) per query instead of O(M) (a step stays O(N log N) or better
as the number of agents N grows, not O(N^2)).

A grid over M points (one team's agents, or the landmarks, of one env) is a counting sort of
the points into square cells of side c, chosen so that about one point falls in a cell, and
capped at about 4M cells. K-nearest searches rings of cells around the query's cell outward
and stops once the K-th best distance is below the distance to the next ring, which no point
in it can beat. Ties are broken by point index, so the answer is exactly the all-pairs one
(`nearest` in brute-force mode), whatever order cells are visited in.

Below GRID_MIN points a linear scan is cheaper than building a grid; both go through the same
insertion, so results do not depend on which path ran.

Every function works on one env's arrays; kernels call them inside their loop over envs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

GRID_MIN = 24  # fewer points than this: linear scan


@njit(cache=True, inline="always")
def insert(idx, dist, found, k, j, d):
    """Insert point j at squared distance d into the sorted best-k lists idx[:found],
    dist[:found] (ties: lower index first); returns the new count."""
    if found == k:
        if k == 0 or d > dist[k - 1] or (d == dist[k - 1] and j > idx[k - 1]):
            return found
    else:
        found += 1
    s = found - 1
    while s > 0 and (dist[s - 1] > d or (dist[s - 1] == d and idx[s - 1] > j)):
        dist[s] = dist[s - 1]
        idx[s] = idx[s - 1]
        s -= 1
    dist[s] = d
    idx[s] = j
    return found


@njit(cache=True)
def grid_alloc(n_grids, capacity):
    """Buffers of `n_grids` grids over at most `capacity` points each, reused for every env:
    xs, ys [G, M] float64; ids, items, cell_of [G, M] int64; start [G, 4M + 2]; geo [G, 5]."""
    m = max(capacity, 1)
    return (
        np.empty((n_grids, m)),
        np.empty((n_grids, m)),
        np.empty((n_grids, m), np.int64),
        np.empty((n_grids, m), np.int64),
        np.empty((n_grids, m), np.int64),
        np.zeros((n_grids, 4 * m + 2), np.int64),
        np.zeros((n_grids, 5)),
    )


@njit(cache=True)
def grid_fill(pts, alive, lo, hi, xs, ys, ids):
    """Copy the living points pts[lo:hi] (pts [M, 2] of one env; alive [M] bool, or empty
    for all) into xs, ys with their indices in ids; returns how many."""
    m = 0
    for j in range(lo, hi):
        if alive.shape[0] > 0 and not alive[j]:
            continue
        xs[m] = pts[j, 0]
        ys[m] = pts[j, 1]
        ids[m] = j
        m += 1
    return m


@njit(cache=True)
def grid_build(xs, ys, m, items, cell_of, start, geo):
    """Counting-sort the m points into cells. geo <- (x0, y0, c, gx, gy); points of cell q
    are items[start[q]:start[q + 1]] (positions in xs/ys)."""
    if m == 0:
        geo[3] = 0.0
        return
    x0, x1, y0, y1 = xs[0], xs[0], ys[0], ys[0]
    for a in range(1, m):
        x0, x1 = min(x0, xs[a]), max(x1, xs[a])
        y0, y1 = min(y0, ys[a]), max(y1, ys[a])
    wx, wy = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    c = math.sqrt(wx * wy / m)  # about one point per cell
    c = max(c, max(wx, wy) / (2.0 * m), 1e-9)  # points on a line: at most 2m cells along it
    gx = min(int(wx / c) + 1, 2 * m)
    gy = min(int(wy / c) + 1, 2 * m)
    while gx * gy > 4 * m:  # cap the cell count (very elongated spreads)
        c *= 1.5
        gx, gy = int(wx / c) + 1, int(wy / c) + 1
    geo[0], geo[1], geo[2], geo[3], geo[4] = x0, y0, c, gx, gy
    ncell = gx * gy
    for q in range(ncell + 1):
        start[q] = 0
    for a in range(m):
        ix = min(int((xs[a] - x0) / c), gx - 1)
        iy = min(int((ys[a] - y0) / c), gy - 1)
        q = iy * gx + ix
        cell_of[a] = q
        start[q + 1] += 1
    for q in range(ncell):
        start[q + 1] += start[q]
    for q in range(ncell, 0, -1):  # start[q] <- first slot of cell q, filled back to front
        start[q] = start[q - 1]
    start[0] = 0
    for a in range(m):
        q = cell_of[a]
        items[start[q + 1]] = a
        start[q + 1] += 1


@njit(cache=True, inline="always")
def _cell(v, v0, c, g):
    i = int(math.floor((v - v0) / c))
    return min(max(i, 0), g - 1)


@njit(cache=True)
def grid_knn(qx, qy, skip, k, xs, ys, ids, m, items, start, geo, idx, dist):
    """The k nearest points to (qx, qy) other than index `skip` into idx[:found]
    (original indices, nearest first) and dist (squared); returns found."""
    found = 0
    if k == 0 or m == 0:
        return 0
    if m < GRID_MIN:
        for a in range(m):
            j = ids[a]
            if j == skip:
                continue
            dx, dy = xs[a] - qx, ys[a] - qy
            found = insert(idx, dist, found, k, j, dx * dx + dy * dy)
        return found
    x0, y0, c = geo[0], geo[1], geo[2]
    gx, gy = int(geo[3]), int(geo[4])
    cx, cy = _cell(qx, x0, c, gx), _cell(qy, y0, c, gy)
    last = max(cx, gx - 1 - cx, cy, gy - 1 - cy)
    for r in range(last + 1):
        for iy in range(max(cy - r, 0), min(cy + r, gy - 1) + 1):
            edge_row = iy == cy - r or iy == cy + r
            step = 1 if edge_row else 2 * r
            ix = cx - r
            while ix <= cx + r:
                if 0 <= ix < gx:
                    q = iy * gx + ix
                    for s in range(start[q], start[q + 1]):
                        a = items[s]
                        j = ids[a]
                        if j == skip:
                            continue
                        dx, dy = xs[a] - qx, ys[a] - qy
                        found = insert(idx, dist, found, k, j, dx * dx + dy * dy)
                ix += max(step, 1)
        # every point not seen yet lies more than r * c away
        if found == k and dist[k - 1] < (r * c) * (r * c):
            break
    return found


@njit(cache=True)
def grid_box(qx, qy, radius, geo):
    """Cell range (ix0, ix1, iy0, iy1), inclusive, holding every point within `radius`."""
    x0, y0, c = geo[0], geo[1], geo[2]
    gx, gy = int(geo[3]), int(geo[4])
    return (_cell(qx - radius, x0, c, gx), _cell(qx + radius, x0, c, gx),
            _cell(qy - radius, y0, c, gy), _cell(qy + radius, y0, c, gy))  # fmt: skip
