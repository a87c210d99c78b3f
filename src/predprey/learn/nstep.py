"""n-step returns for the replay buffer, formed where the transitions are collected.

A row for step t then holds the rewards of steps t .. t+k-1 summed with discounts
(k = n, or fewer where the episode ends first), the observation after step t+k-1 (the
pre-reset final one at an episode's end), whether that step terminated, and
`discount` = gamma^k, so the learner's target is y = R + discount * (1 - terminated) * Q'.
With n = 1 this is the one-step row, `discount` = gamma. Teams with discount factors of
their own (`algo.team_gamma`) sum their rewards with them, and every team's row then
holds its own `discount/{team}` instead.

`NStepWindow` holds the last n - 1 steps of every env and emits each row n - 1 vector
steps late: E rows per step after the first n - 1, so collection keeps its [S, E] shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DISCOUNT = "discount"


def discount_keys(gammas: Mapping[str, float]) -> dict[str, float]:
    """The discount fields of rows of teams with discount factors `gammas` {team: gamma}:
    {"discount": gamma} where they share one, else {"discount/{team}": gamma_team}."""
    if len(set(gammas.values())) == 1:
        return {DISCOUNT: next(iter(gammas.values()))}
    return {f"{DISCOUNT}/{team}": g for team, g in gammas.items()}


class NStepWindow:
    def __init__(self, n: int, gammas: Mapping[str, float]):
        """n steps a row; `gammas` {team: discount factor} of every team."""
        self.n = int(n)
        # the discount fields of a row and the factor each multiplies by per step
        self.discounts = {k: float(g) for k, g in discount_keys(gammas).items()}
        # the discount field that scales each team's rewards
        self.discount_of = {
            f"rew/{team}": DISCOUNT if DISCOUNT in self.discounts else f"{DISCOUNT}/{team}"
            for team in gammas
        }
        self.pending: list[dict[str, np.ndarray]] = []  # oldest first, each field [E, ...]

    def push(self, step: Mapping[str, np.ndarray], done: np.ndarray) -> dict | None:
        """Add one vector step (fields of `transition_spec`, each [E, ...]; `done` [E]: the
        episode ended, by termination or time limit). Returns the row set due now, or None
        while the window fills."""
        for p in self.pending:  # rows still gathering rewards
            live = ~p["closed"]  # [E]
            for k, v in step.items():
                if k.startswith("rew/"):
                    p[k] += (p[self.discount_of[k]] * live)[:, None] * v  # [E, n]
                elif k.startswith("next_obs/") or k == "terminated":
                    p[k][live] = v[live]
            for k, g in self.discounts.items():
                p[k] = np.where(live, p[k] * g, p[k])
            p["closed"] = p["closed"] | done
        row = {k: np.array(v, copy=True) for k, v in step.items()}
        for k, g in self.discounts.items():
            row[k] = np.full(len(done), g, np.float32)
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
