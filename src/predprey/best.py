"""Evaluations during training and the best-policy snapshots they choose.

The training loop (predprey.loop, whatever its source: one process, Ray or HTTP)
evaluates on the same schedule with the same seeds (`TrainLoop.evaluate`) and keeps, per team,
the actor that scored best so far in `checkpoints/best.pt` (`predprey evaluate/simulate
--policy best`). Self-play oscillates, so the latest actor is not always the strongest.
"""

from __future__ import annotations

from typing import Any, Protocol

from predprey import checkpoint
from predprey.evaluate import team_scores
from predprey.rundir import RunDir


class HasActors(Protocol):
    def actor_state(self) -> dict[str, dict[str, Any]]: ...


class BestPolicies:
    """Per team: the actor weights with the best evaluation score, where and how it scored."""

    def __init__(self, run: RunDir, save: bool = True):
        self.run, self.save = run, save
        self.teams: dict[str, dict[str, Any]] = {}  # team -> {"actor", "env_steps", ...}

    def offer(self, evals: dict[str, float], env_steps: int, actors: HasActors) -> None:
        """Snapshot each team whose score in `evals` beats its best so far (and write
        best.pt when any did)."""
        state = None
        for team, (metric, score) in team_scores(evals).items():
            if team in self.teams and score <= self.teams[team]["score"]:
                continue
            state = state or actors.actor_state()
            self.teams[team] = {
                "actor": state[team], "env_steps": env_steps, "metric": metric,
                "score": score, "value": evals[metric],
            }  # fmt: skip
        if state is not None and self.save:
            checkpoint.save_best(self.run, self.teams)

    def state(self) -> dict[str, dict[str, Any]]:
        """The snapshots, weights included (a few KB per team), for the loop's checkpoint:
        a resumed run continues from exactly the snapshots its checkpoint saw."""
        return dict(self.teams)

    def restore(self, teams: dict[str, dict[str, Any]]) -> None:
        """Take back the snapshots of a checkpoint's `state()` and rewrite best.pt to match
        (a snapshot written after that checkpoint is redone by the resumed run)."""
        if any("actor" not in b for b in teams.values()):
            # Older checkpoints ("best_scores") kept only the scores: weights from best.pt.
            saved = checkpoint.load_best(self.run)
            teams = {t: {**saved[t], **b} for t, b in teams.items() if t in saved}
        self.teams = dict(teams)
        if self.teams and self.save:
            checkpoint.save_best(self.run, self.teams)
