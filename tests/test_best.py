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


def test_where_a_capture_ends_the_episode_steps_to_it_rate_the_teams(tmp_path):
    """Seed world: touches are ~1 per episode whatever the skill; the steps to the capture
    choose the snapshots (fewer for predators, more for prey)."""
    run = RunDir(tmp_path / "run").create()
    best = BestPolicies(run)

    def seed_evals(pred_steps: float, prey_steps: float) -> dict[str, float]:
        return {**evals(1.0, 1.0), "eval/pred_steps_to_capture_v_evader": pred_steps,
                "eval/prey_steps_to_capture_v_chaser": prey_steps}  # fmt: skip

    best.offer(seed_evals(90.0, 40.0), 100, FakeActors(1))
    best.offer(seed_evals(30.0, 20.0), 200, FakeActors(2))  # predators faster, prey worse
    best.offer(seed_evals(60.0, 80.0), 300, FakeActors(3))  # prey last longer
    assert saved_steps(run) == {"predator": 200, "prey": 300}
    assert checkpoint.load_best(run)["predator"]["metric"] == "eval/pred_steps_to_capture_v_evader"


def test_training_evals_report_steps_to_capture_in_the_seed_world():
    from predprey.config import config_from_dict
    from predprey.evaluate import training_evals
    from predprey.learn.maddpg import Learner
    from predprey.learn.spec import team_specs

    seed = {"scenario": "tag", "preset": "seed", "num_envs": 2}
    for env, has_steps in ((seed, True), ({"scenario": "tag", "num_envs": 2}, False)):
        config = config_from_dict({"env": env, "algo": {"hidden": [8]}})
        actors = Learner(team_specs(config.env.make(num_envs=1, seed=0)), config.algo)
        out = training_evals(config, actors, episodes=2, seed=0)
        keys = {"eval/pred_steps_to_capture_v_evader", "eval/prey_steps_to_capture_v_chaser"}
        assert (keys <= out.keys()) == has_steps
        assert all(1 <= out[k] <= 200 for k in keys & out.keys())
