"""`predprey bench world`: the default recipe trained on a toy PettingZoo world whose optimal
policy is obvious (tests/pz_match_world.py: choose the cued index, 1 a step, 5 an episode;
random earns 1/3 a step) beats uniformly random teams, judged on returns with 95% intervals.
Budgets are in env steps, so the outcome does not depend on the machine's speed."""

from __future__ import annotations

import json

import pytest

from predprey.bench.world import mean_ci
from predprey.cli import main
from predprey.config import PPOConfig, config_from_dict

CASES = {
    "default-discrete": (None, {}, []),
    "maddpg-box": ("maddpg", {"box": True},
                   ["buffer.warmup=1000", "algo.env_steps_per_update=4", "algo.batch_size=64"]),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_learned_teams_beat_random_teams(tmp_path, capsys, case):
    algo, kwargs, sets = CASES[case]
    args = ["bench", "world", "--make", "pz_match_world:parallel_env", "--kwargs",
            json.dumps(kwargs), "--env-steps", "6000", "--episodes", "100",
            "--out", str(tmp_path), "--set", "env.workers=1"]  # fmt: skip
    if algo:
        args += ["--algo", algo]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["env_steps"] >= 6000 and summary["algo"] == (algo or "ppo")
    assert set(summary["matchups"]) == {"random", "caller", "guesser", "learned"}
    for team in ("caller", "guesser"):
        row = summary["teams"][team]
        (learned, _), (random, ci) = row["learned_v_random"], row["random_v_random"]
        assert 5 / 3 - 3 * ci < random < 5 / 3 + 3 * ci  # random play: 1/3 a step
        assert learned >= 4.0 and row["beats_random"]
        # the other team stayed random in this team's match-up
        other = "guesser" if team == "caller" else "caller"
        assert summary["matchups"][team][other][0] < 2.5
    assert (tmp_path / "run" / "config.yaml").exists()


def test_a_config_that_names_only_the_world_trains_ppo():
    """The default recipe in a foreign world is ppo; naming the learner still chooses it,
    and our own worlds keep maddpg."""
    world = {"scenario": "pettingzoo", "make": "pz_match_world:parallel_env"}
    cfg = config_from_dict({"env": world})
    assert cfg.algo.name == "ppo" and cfg.algo == PPOConfig()
    assert config_from_dict({"env": world, "algo": {"name": "maddpg"}}).algo.name == "maddpg"
    assert config_from_dict({"env": {"scenario": "spread"}}).algo.name == "maddpg"


def test_an_existing_out_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        main(["bench", "world", "--make", "pz_match_world:parallel_env", "--env-steps", "100",
              "--out", str(tmp_path)])  # fmt: skip


def test_mean_ci_is_the_normal_interval_of_the_mean():
    import numpy as np

    m, ci = mean_ci(np.array([1.0, 3.0, 5.0, 7.0]))
    assert m == 4.0 and ci == round(1.96 * np.std([1, 3, 5, 7], ddof=1) / 2, 3)
