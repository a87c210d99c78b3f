"""Slow: a short `configs/seed.yaml` run (the original service's walled 5 v 5 world, where a
capture ends the episode) leaves both teams clearly better than untrained ones.

Measured in mean steps to the first capture (fewer is better for predators, more for prey),
against the untrained references: random predators v random prey, and scripted chasers v
random prey. The budget is in env steps, so the outcome does not depend on the machine's
speed.
"""

from __future__ import annotations

import pytest
import torch

from predprey.build import build
from predprey.config import dump_config, load_config
from predprey.evaluate import make_eval_env, run_episodes
from predprey.rundir import RunDir
from train_helpers import ROOT

ENV_STEPS = 150_000
EPISODES = 200


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_short_seed_world_run_hunts_and_flees(tmp_path):
    torch.set_num_threads(2)
    overrides = [f"train.total_env_steps={ENV_STEPS}", "train.eval_every=100000000"]
    cfg = load_config(ROOT / "configs" / "seed.yaml", overrides)
    run = RunDir(tmp_path / "run").create()
    dump_config(cfg, run.config_path)
    build(cfg, run).run()

    from predprey.policy import load

    actors = load(run.path).actors
    env = make_eval_env(cfg, EPISODES, seed=123)

    def steps(predators: str, prey: str) -> float:
        who = {"predator": predators, "prey": prey}
        return run_episodes(env, who, actors, EPISODES, seed=123).episode_length

    random_v_random, chasers_v_random = steps("random", "random"), steps("chaser", "random")
    learned_predators, learned_prey = steps("learned", "random"), steps("chaser", "learned")
    print(f"steps to capture: random v random {random_v_random:.1f}, learned predators v "
          f"random prey {learned_predators:.1f}; chasers v random prey {chasers_v_random:.1f}, "
          f"chasers v learned prey {learned_prey:.1f}")  # fmt: skip
    assert learned_predators <= 0.5 * random_v_random
    assert learned_prey >= 2.5 * chasers_v_random
