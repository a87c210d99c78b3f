"""Slow: a few minutes of `configs/tag.yaml` training beat the scripted baselines clearly.

Baseline: scripted chasers v scripted evader (about 0.7 touches per episode on this world).
Learned predators must touch the evader clearly more often than the chasers do and catch
random prey nearly as often as the chasers do; learned prey must concede clearly fewer
touches to the chasers than the evader does. The budget is in env steps (about 5 minutes
on the 2-core development machine), so the outcome does not depend on the machine's speed.
"""

from __future__ import annotations

import pytest
import torch

from predprey.build import build
from predprey.config import dump_config, load_config
from predprey.evaluate import make_eval_env, run_episodes
from predprey.rundir import RunDir
from train_helpers import ROOT

ENV_STEPS = 400_000
EPISODES = 400


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a bound: ~6 minutes on the development machine
def test_few_minutes_of_training_beat_scripted_baselines(tmp_path):
    torch.set_num_threads(2)
    cfg = load_config(
        ROOT / "configs" / "tag.yaml",
        ["train.eval_every=100000000", f"train.total_env_steps={ENV_STEPS}"],
    )
    run = RunDir(tmp_path / "run").create()
    dump_config(cfg, run.config_path)
    build(cfg, run).run()

    from predprey.policy import load

    actors = load(run.path).actors
    env = make_eval_env(cfg, EPISODES, seed=123)

    def touches(predators: str, prey: str) -> float:
        who = {"predator": predators, "prey": prey}
        return run_episodes(env, who, actors, EPISODES, seed=123).touches_mean

    baseline = touches("chaser", "evader")
    learned_predators = touches("learned", "evader")
    learned_prey = touches("chaser", "learned")
    chasers_v_random, learned_v_random = touches("chaser", "random"), touches("learned", "random")
    print(f"chaser v evader {baseline:.2f}, learned predators v evader {learned_predators:.2f}, "
          f"chasers v learned prey {learned_prey:.2f}, v random prey: chasers "
          f"{chasers_v_random:.2f}, learned {learned_v_random:.2f}")  # fmt: skip
    assert learned_predators >= 1.5 * baseline
    assert learned_prey <= 0.7 * baseline
    assert learned_v_random >= 0.8 * chasers_v_random
