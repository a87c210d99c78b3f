"""n-step returns for the replay buffer, formed where the transitions are collected.

A row for step t then holds the rewards of steps t .. t+k-1 summed with discounts
(k = n, or fewer where the episode ends first), the observation after step t+k-1 (the
pre-reset final one at an episode's end), whether that step terminated, and
`discount` = gamma^k, so the learner's target is y = R + discount * (1 - terminated) * Q'.
With n = 1 this is the one-step row, `discount` = gamma.

`NStepWindow` holds the last n - 1 steps of every env and emits each row n - 1 vector
steps late: E rows per step after the first n - 1, so collection keeps its [S, E] shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DISCOUNT = "discount"


class NStepWindow:
    def __init__(self, n: int, gamma: float):
        self.n, self.gamma = int(n), float(gamma)
        self.pending: list[dict[str, np.ndarray]] = []  # oldest first, each field [E, ...]

    def push(self, step: Mapping[str, np.ndarray], done: np.ndarray) -> dict | None:
        """Add one vector step (fields of `transition_spec`, each [E, ...]; `done` [E]: the
        episode ended, by termination or time limit). Returns the row set due now, or None
        while the window fills."""
        for p in self.pending:  # rows still gathering rewards
            live = ~p["closed"]  # [E]
            for k, v in step.items():
                if k.startswith("rew/"):
                    p[k] += (p[DISCOUNT] * live)[:, None] * v  # [E, n]
                elif k.startswith("next_obs/") or k == "terminated":
                    p[k][live] = v[live]
            p[DISCOUNT] = np.where(live, p[DISCOUNT] * self.gamma, p[DISCOUNT])
            p["closed"] = p["closed"] | done
        row = {k: np.array(v, copy=True) for k, v in step.items()}
        row[DISCOUNT] = np.full(len(done), self.gamma, np.float32)
        row["closed"] = np.array(done, bool, copy=True)
        self.pending.append(row)
        if len(self.pending) < self.n:
            return None
        out = self.pending.pop(0)
        del out["closed"]
        return out

    def state_dict(self) -> list[dict[str, np.ndarray]]:
        return [{k: v.copy() for k, v in p.items()} for p in self.pending]

    def load_state_dict(self, state: list[Mapping[str, np.ndarray]]) -> None:
        self.pending = [{k: np.asarray(v).copy() for k, v in p.items()} for p in state]
