"""Trajectory separation (seed 003, MagMA) as array reductions, and GAE(lambda).

A *unit* is what one reward, value or advantage belongs to: an agent, a group of agents of
one team, or a team. The A agents of the trained teams (teams in env order, agents in team
order) map to U units through a membership matrix `M [A, U]` (M[i, u] = 1 when agent i is
in unit u); every level is such a matrix, so the learner has one code path:

    unit_sum(x, M)   = x @ M                -> [..., U]  (log-probabilities, entropies)
    unit_mean(x, M)  = x @ M / |u|          -> [..., U]  (rewards, values, advantages)
    to_agents(y, M)  = y @ M^T              -> [..., A]  (each agent gets its unit's value)

Units never cross teams: `team` is one unit per team, `group` splits each team into groups
of `group_size` agents (the last one smaller if it does not divide), `agent` is the
identity. `team` for reward, value and advantage is the single-brain baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def membership(team_sizes: Sequence[int], level: str, group_size: int = 0) -> np.ndarray:
    """M [A, U] float32 for agents of teams of `team_sizes` at `level` (module docstring)."""
    A = sum(team_sizes)
    cols: list[np.ndarray] = []
    first = 0
    for n in team_sizes:
        size = {"agent": 1, "group": group_size or n, "team": n}[level]
        for start in range(0, n, size):
            col = np.zeros(A, np.float32)
            col[first + start : first + min(start + size, n)] = 1.0
            cols.append(col)
        first += n
    return np.stack(cols, axis=1)  # [A, U]


def unit_teams(team_sizes: Sequence[int], M: np.ndarray) -> np.ndarray:
    """K [U, n_teams] float32: unit u belongs to team k (for per-team means of unit losses)."""
    team_of_agent = np.repeat(np.arange(len(team_sizes)), team_sizes)  # [A]
    team_of_unit = team_of_agent[M.argmax(axis=0)]  # [U]: a unit's first agent's team
    return np.eye(len(team_sizes), dtype=np.float32)[team_of_unit]


def unit_mean(x, M):
    """x [..., A] -> the mean over each unit's agents [..., U] (numpy or torch)."""
    return (x @ M) / M.sum(0)


def separate(x, M):
    """x [..., A] -> each agent's unit mean [..., A]: a unit-level quantity at agent resolution."""
    return unit_mean(x, M) @ M.T


def gae(
    rew: np.ndarray,
    value: np.ndarray,
    next_value: np.ndarray,
    terminated: np.ndarray,
    done: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Generalised advantage estimates (Schulman et al. 2016), [T, E, A].

    rew, value, next_value [T, E, A]; terminated, done [T, E] (done = terminated or
    truncated). next_value[t] is V of the step's own next observation (the pre-reset final
    one at an episode end), so a time limit bootstraps and only termination zeroes it:

        delta_t = r_t + gamma * (1 - terminated_t) * V(o'_t) - V(o_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   A_T = 0
    """
    T = rew.shape[0]
    not_term = (1.0 - terminated.astype(np.float32))[..., None]  # [T, E, 1]
    not_done = (1.0 - done.astype(np.float32))[..., None]  # [T, E, 1]
    delta = rew + gamma * not_term * next_value - value  # [T, E, A]
    adv = np.empty_like(delta)
    last = np.zeros_like(delta[0])  # [E, A]
    for t in range(T - 1, -1, -1):  # over time only: every env and agent at once
        last = delta[t] + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv
