"""Rows of agents that left the episode early (a PettingZoo world where an agent is caught or
done before the others): batches carry `alive/{team}` [B, n], 1 where the agent took part in
the step (`predprey.learn.spec.transition_spec`). The learners leave the other rows out of
every mean of their losses, and the left agents' observations and actions are zeroed before
anyone's critic reads them, so nothing a left agent's rows hold reaches a loss or a gradient.
Without the fields (our own worlds) every agent takes part and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from predprey.learn.spec import TeamSpec

ROW_FIELDS = ("obs", "act", "rew", "next_obs")  # a left agent's rows: zeroed


def alive(batch: Mapping, teams: Sequence[TeamSpec]):
    """[B, A] the teams' agents' masks side by side (numpy or torch as the batch), or None
    where no team has them (ones for a team without)."""
    if not any(f"alive/{t.name}" in batch for t in teams):
        return None
    parts = []
    for t in teams:
        m = batch.get(f"alive/{t.name}")
        if m is None:
            m = batch[f"rew/{t.name}"] * 0 + 1  # [B, n]: all took part
        parts.append(m)
    cat = torch.cat if isinstance(parts[0], torch.Tensor) else np.concatenate
    return cat(parts, 1)


def zero_left(batch: Mapping, teams: Sequence[TeamSpec]) -> dict:
    """The batch with the left agents' rows zeroed (fields [B, n, ...], numpy or torch; the
    batch's own arrays are left as they are)."""
    out = dict(batch)
    for t in teams:
        m = batch.get(f"alive/{t.name}")  # [B, n]
        if m is None:
            continue
        for k in ROW_FIELDS:
            x = batch[f"{k}/{t.name}"]
            out[f"{k}/{t.name}"] = x * m.reshape(*m.shape, *([1] * (x.ndim - 2)))
    return out


def mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """x [..., B] -> the mean over the rows where w [..., B] is 1 (all rows where w is None);
    0 where no row is."""
    if w is None:
        return x.mean(-1)
    return (x * w).sum(-1) / w.sum(-1).clamp(min=1.0)


def next_alive(live: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Whether each agent takes part in the step after each row, [T, E, A] from live [T, E, A]
    and done [T, E]: the next row's mask within an episode, 1 after an episode's end (its
    bootstrap is the env's); after the rollout's last step, as in it (a left agent does not
    come back within its episode)."""
    out = live.copy()
    out[:-1] = live[1:]
    out[done.astype(bool)] = 1.0
    return out
