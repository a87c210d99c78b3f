"""Numba kernels of tag's `mpe` preset (PettingZoo/mpe2 `simple_tag`): observation, rewards,
and the fused step that does action -> force, physics, touches, rewards, the time limit and
the observation of every environment in one call (one dispatch per step keeps E=1 fast).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

from predprey.env.physics import count_touches, physics_step
from predprey.env.state import State, StepOut


@njit(cache=True)
def mpe_observe(pos, vel, landmark_pos, n_pred, out_pred, out_prey):
    """simple_tag observation of every agent into out_pred [E, n_pred, D], out_prey [E, n_prey, D']
    (C-contiguous): [own vel (2), own pos (2), landmark - own pos (2L), other - own pos (2(N-1)),
    velocity of every other prey (2 each)].
    Writes go through flat 1-D views: about 2x faster than out[e, i, k] here."""
    E, N, L = pos.shape[0], pos.shape[1], landmark_pos.shape[1]
    n_prey = N - n_pred
    flat_pred, flat_prey = out_pred.reshape(-1), out_prey.reshape(-1)
    d_pred, d_prey = out_pred.shape[2], out_prey.shape[2]
    for e in range(E):
        for i in range(N):
            if i < n_pred:
                out, k = flat_pred, (e * n_pred + i) * d_pred
            else:
                out, k = flat_prey, (e * n_prey + i - n_pred) * d_prey
            px, py = pos[e, i, 0], pos[e, i, 1]
            out[k] = vel[e, i, 0]
            out[k + 1] = vel[e, i, 1]
            out[k + 2] = px
            out[k + 3] = py
            k += 4
            for j in range(L):
                out[k] = landmark_pos[e, j, 0] - px
                out[k + 1] = landmark_pos[e, j, 1] - py
                k += 2
            for j in range(N):
                if j != i:
                    out[k] = pos[e, j, 0] - px
                    out[k + 1] = pos[e, j, 1] - py
                    k += 2
            for j in range(n_pred, N):
                if j != i:
                    out[k] = vel[e, j, 0]
                    out[k + 1] = vel[e, j, 1]
                    k += 2


@njit(cache=True, inline="always")
def _bound(x):
    # mpe2's penalty for prey leaving the screen, per coordinate of |pos|
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10.0
    return min(math.exp(2.0 * x - 2.0), 10.0)


@njit(cache=True)
def mpe_rewards_into(pos, per_agent, touches, n_pred, own, out_pred, out_prey):
    """Predators +10 per touching pair (shared by all; with `own`, per prey this predator
    touches); prey -10 per touching predator minus the boundary penalty. per_agent [E, N],
    touches [E]; out_* [E, n_team] float32."""
    E, N = pos.shape[0], pos.shape[1]
    for e in range(E):
        for i in range(n_pred):
            out_pred[e, i] = 10.0 * (per_agent[e, i] if own else touches[e])
        for j in range(n_pred, N):
            out_prey[e, j - n_pred] = (
                -10.0 * per_agent[e, j] - _bound(abs(pos[e, j, 0])) - _bound(abs(pos[e, j, 1]))
            )


@njit(cache=True)
def mpe_rewards(pos, per_agent, touches, n_pred, own=False):
    """Rewards of all envs: predator [E, n_pred], prey [E, n_prey] float32."""
    E, N = pos.shape[0], pos.shape[1]
    pred = np.empty((E, n_pred), np.float32)
    prey = np.empty((E, N - n_pred), np.float32)
    mpe_rewards_into(pos, per_agent, touches, n_pred, own, pred, prey)
    return pred, prey


@njit(cache=True, inline="always")
def _clip1(x):
    # np.clip(x, -1, 1), NaN passing through as it does there
    if x < -1.0:
        return -1.0
    if x > 1.0:
        return 1.0
    return x


@njit(cache=True)
def mpe_tag_step(
    pos, vel, landmark_pos, t, alive,  # state [E, N, 2] x2, [E, L, 2], [E], [E, N]; in place
    act_pred, act_prey,  # [E, n_pred, 2], [E, n_prey, 2] float64 actions in [-1, 1]
    consts,  # float64 [6 + 3N + L], see `pack_consts`
    own,  # bool: predators rewarded for their own touches (predator_credit: own)
    obs_pred, obs_prey, rew_pred, rew_prey,  # outputs [E, n, D] and [E, n] float32
    touches, truncated, done,  # outputs [E] int64, bool, bool
    tile,  # envs per tile: every phase runs on one tile before the next tile starts
):  # fmt: skip
    """One step of every env; returns how many envs are done. The generic path's kernels
    (physics_step, count_touches, mpe_rewards_into, mpe_observe) in one call, a tile of
    envs at a time so that a tile's state, scratch and outputs stay in cache between the
    phases (envs are independent: the results do not depend on the tile size)."""
    E, N = pos.shape[0], pos.shape[1]
    L = landmark_pos.shape[1]
    n_pred = act_pred.shape[1]
    dt, damping, contact_force, margin, box = consts[0], consts[1], consts[2], consts[3], consts[4]
    episode_length = consts[5]
    size, accel = consts[6 : 6 + N], consts[6 + N : 6 + 2 * N]
    max_speed, landmark_size = consts[6 + 2 * N : 6 + 3 * N], consts[6 + 3 * N : 6 + 3 * N + L]
    tile = max(1, min(tile, E))
    force_tile = np.empty((tile, N, 2))  # clipped action times acceleration
    per_agent_tile = np.empty((tile, N), np.int64)
    n_done = 0
    for e0 in range(0, E, tile):
        e1 = min(e0 + tile, E)
        force, per_agent = force_tile[: e1 - e0], per_agent_tile[: e1 - e0]
        for e in range(e0, e1):
            for i in range(n_pred):
                force[e - e0, i, 0] = _clip1(act_pred[e, i, 0]) * accel[i]
                force[e - e0, i, 1] = _clip1(act_pred[e, i, 1]) * accel[i]
            for i in range(n_pred, N):
                force[e - e0, i, 0] = _clip1(act_prey[e, i - n_pred, 0]) * accel[i]
                force[e - e0, i, 1] = _clip1(act_prey[e, i - n_pred, 1]) * accel[i]
        p, v, al = pos[e0:e1], vel[e0:e1], alive[e0:e1]
        physics_step(
            p, v, force, al, size, max_speed, landmark_pos[e0:e1], landmark_size,
            dt, damping, contact_force, margin, box, True,
        )  # fmt: skip
        count_touches(p, al, size, n_pred, touches[e0:e1], per_agent)
        mpe_rewards_into(p, per_agent, touches[e0:e1], n_pred, own, rew_pred[e0:e1],
                         rew_prey[e0:e1])  # fmt: skip
        mpe_observe(p, v, landmark_pos[e0:e1], n_pred, obs_pred[e0:e1], obs_prey[e0:e1])
        for e in range(e0, e1):
            t[e] += 1
            truncated[e] = t[e] >= episode_length
            done[e] = truncated[e]
            n_done += done[e]
    return n_done


def pack_consts(bodies, episode_length: int) -> np.ndarray:
    """World and body constants as one float64 vector (one kernel argument instead of nine):
    dt, damping, contact_force, contact_margin, box, episode_length, size [N], accel [N],
    max_speed [N], landmark_size [L]."""
    b = bodies
    head = [b.dt, b.damping, b.contact_force, b.contact_margin, b.box, episode_length]
    parts = (head, b.size, b.accel, b.max_speed, b.landmark_size)
    return np.concatenate([np.asarray(p, np.float64).ravel() for p in parts])


def fused_mpe_step(scenario) -> Callable[[State, Sequence[np.ndarray], int], StepOut]:
    """The fused step of a tag scenario with preset mpe and mpe observations: called with the
    state, the team actions (float64, C order, predators then prey) and the envs per tile,
    returns a StepOut.
    The bodies are read once, here."""
    consts = pack_consts(scenario.bodies, scenario.episode_length)
    n_pred, n_prey = scenario.n_pred, scenario.n_prey
    own = scenario.own_credit
    d_pred, d_prey = scenario.obs_dims["predator"], scenario.obs_dims["prey"]

    def step(state: State, actions: Sequence[np.ndarray], tile: int) -> StepOut:
        E = state.pos.shape[0]
        obs_pred = np.empty((E, n_pred, d_pred), np.float32)
        obs_prey = np.empty((E, n_prey, d_prey), np.float32)
        rew_pred = np.empty((E, n_pred), np.float32)
        rew_prey = np.empty((E, n_prey), np.float32)
        touches = np.empty(E, np.int64)
        truncated = np.empty(E, np.bool_)
        done = np.empty(E, np.bool_)
        n_done = mpe_tag_step(
            state.pos, state.vel, state.landmark_pos, state.t, state.alive, actions[0],
            actions[1], consts, own, obs_pred, obs_prey, rew_pred, rew_prey, touches,
            truncated, done, tile,
        )  # fmt: skip
        return StepOut(
            obs={"predator": obs_pred, "prey": obs_prey},
            rewards={"predator": rew_pred, "prey": rew_prey},
            touches=touches,
            terminated=np.zeros(E, np.bool_),
            truncated=truncated,
            done=done,
            num_done=n_done,
        )

    N = n_pred + n_prey
    step.scratch_bytes_per_env = N * 2 * 8 + N * 8  # mpe_tag_step's force, per_agent per tile
    return step
