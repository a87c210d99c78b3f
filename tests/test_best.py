"""Best-policy snapshots (`predprey.best.BestPolicies`): chosen by score, saved to best.pt,
and restored from a checkpoint exactly as that checkpoint saw them."""

from __future__ import annotations

import torch

from predprey import checkpoint
from predprey.best import BestPolicies
from predprey.rundir import RunDir


class FakeActors:
    """Actor weights that are a single tensor filled with `value`."""

    def __init__(self, value: float):
        self.value = value

    def actor_state(self):
        return {t: {"w": torch.full((2,), self.value)} for t in ("predator", "prey")}


def evals(pred: float, prey: float) -> dict[str, float]:
    return {"eval/pred_touches_v_evader": pred, "eval/prey_touches_v_chaser": prey}


def saved_steps(run: RunDir) -> dict[str, int]:
    return {t: b["env_steps"] for t, b in checkpoint.load_best(run).items()}


def test_each_team_keeps_its_best_and_the_first_of_ties(tmp_path):
    run = RunDir(tmp_path / "run").create()
    best = BestPolicies(run)
    best.offer(evals(1.0, 3.0), 100, FakeActors(1))
    best.offer(evals(2.0, 3.0), 200, FakeActors(2))  # predators better, prey tied
    best.offer(evals(0.5, 1.0), 300, FakeActors(3))  # prey better (fewer touches conceded)
    assert saved_steps(run) == {"predator": 200, "prey": 300}
    on_disk = checkpoint.load_best(run)
    assert on_disk["predator"]["actor"]["w"][0] == 2 and on_disk["prey"]["actor"]["w"][0] == 3
    assert on_disk["prey"]["value"] == 1.0 and on_disk["prey"]["score"] == -1.0


def test_restore_returns_to_the_checkpoints_snapshots(tmp_path):
    """A snapshot written after the checkpoint (then a crash) is undone on resume: best.pt
    matches the checkpoint again, weights and all."""
    run = RunDir(tmp_path / "run").create()
    best = BestPolicies(run)
    best.offer(evals(1.0, 2.0), 100, FakeActors(1))
    at_checkpoint = best.state()
    best.offer(evals(5.0, 0.0), 200, FakeActors(2))
    assert saved_steps(run) == {"predator": 200, "prey": 200}

    resumed = BestPolicies(run)
    resumed.restore(at_checkpoint)
    assert saved_steps(run) == {"predator": 100, "prey": 100}
    assert checkpoint.load_best(run)["predator"]["actor"]["w"][0] == 1
    resumed.offer(evals(1.0, 2.0), 200, FakeActors(9))  # a tie keeps the older snapshot
    assert saved_steps(run) == {"predator": 100, "prey": 100}


def test_restore_reads_weights_of_score_only_checkpoints_from_best_pt(tmp_path):
    run = RunDir(tmp_path / "run").create()
    best = BestPolicies(run)
    best.offer(evals(1.0, 2.0), 100, FakeActors(4))
    scores_only = {t: {k: v for k, v in b.items() if k != "actor"} for t, b in best.state().items()}
    resumed = BestPolicies(run)
    resumed.restore(scores_only)
    assert resumed.teams["prey"]["actor"]["w"][0] == 4
    assert resumed.teams["prey"]["env_steps"] == 100


def test_without_checkpoints_nothing_is_written(tmp_path):
    run = RunDir(tmp_path / "run").create()
    best = BestPolicies(run, save=False)
    best.offer(evals(1.0, 2.0), 100, FakeActors(1))
    assert best.teams["predator"]["env_steps"] == 100
    assert not (run.checkpoint_dir / checkpoint.BEST).exists()
