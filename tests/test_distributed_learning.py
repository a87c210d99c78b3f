"""Slow: distributed training (2 Ray runners) learns as well as the single-process loop on
`configs/tag.yaml` for the same number of env steps.

Both train STEPS env steps from the same config and seed (one torch thread each); their
final policies then play the same EPISODES episodes: learned predators v the scripted
evader, scripted chasers v learned prey. The rate limiter keeps the single-process
update-to-data ratio, so both runs make the same number of updates (within 2 per cent)
and the distributed policies must be about as good: within TOLERANCE of the
single-process touches in each match-up, and both clearly better than the untrained
actors. Prints the numbers (run with -s to see them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distributed_harness import new_run
from predprey.config import load_config
from predprey.evaluate import make_eval_env, run_episodes
from predprey.learn.maddpg import ActorSet
from predprey.learn.spec import team_specs
from predprey.train import Trainer
from train_helpers import ROOT

pytest.importorskip("ray")

STEPS = 300_000
EPISODES = 400
TOLERANCE = 0.25  # relative difference in touches per episode allowed either way


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_two_runners_learn_as_well_as_one_process(tmp_path):
    from predprey.distributed import train_distributed
    from predprey.policy import load

    torch.set_num_threads(1)
    cfg = load_config(
        ROOT / "configs" / "tag.yaml",
        [f"train.total_env_steps={STEPS}", "train.eval_every=100000000",
         "train.torch_threads=1", "train.record_envs=[]"],
    )  # fmt: skip
    single_run = new_run(tmp_path / "single", cfg)
    single = Trainer(cfg, single_run, evals=False).run()
    dist_run = new_run(tmp_path / "dist", cfg)
    dist = train_distributed(cfg, dist_run, runners=2, evals=False)
    assert dist["restarts"] == {"runner": 0, "buffer": 0, "learner": 0}

    env = make_eval_env(cfg, EPISODES, seed=123)

    def touches(actors, predators: str, prey: str) -> float:
        who = {"predator": predators, "prey": prey}
        rng = np.random.default_rng(0)
        return run_episodes(env, who, actors, EPISODES, rng, seed=123).touches_mean

    untrained = ActorSet.build(team_specs(env), cfg.algo, seed=1)
    results = {}
    for name, actors in [("untrained", untrained), ("single", load(single_run.path).actors),
                         ("ray2", load(dist_run.path).actors)]:  # fmt: skip
        results[name] = (touches(actors, "learned", "evader"), touches(actors, "chaser", "learned"))
    print(
        f"\nenv steps single {single['env_steps']} ray2 {dist['env_steps']}; updates single "
        f"{single['updates']} ray2 {dist['updates']}; wall single {single['time']:.0f}s ray2 "
        f"{dist['time']:.0f}s\n(learned predators v evader, chasers v learned prey) touches: "
        + ", ".join(f"{k} {p:.3f} {q:.3f}" for k, (p, q) in results.items())
    )
    assert dist["env_steps"] >= STEPS and single["env_steps"] >= STEPS
    assert abs(dist["updates"] / single["updates"] - 1) < 0.02
    (pred_u, prey_u), (pred_s, prey_s), (pred_d, prey_d) = results.values()
    assert pred_s > 1.5 * pred_u and pred_d > 1.5 * pred_u  # both learned to chase
    assert prey_s < prey_u and prey_d < prey_u  # and to flee
    assert pred_d >= (1 - TOLERANCE) * pred_s
    assert prey_d <= (1 + TOLERANCE) * prey_s + 0.05
