"""Slow: distributed training (2 Ray runners) learns as well as the single-process loop on
`configs/tag.yaml` for the same number of env steps.

For each seed in SEEDS both loops train STEPS env steps (one torch thread each): the
tag.yaml world, networks and hyperparameters, with the predators learning against
scripted random prey in every env (`algo.teams=[predator]`, `train.scripted_fraction=1`),
so self-play's swings are out of the comparison. Their final policies play EPISODES
episodes against random prey. The rate limiter keeps the single-process update-to-data
ratio, so both loops make the same number of updates (within 2 per cent). Every run must
chase at least FLOOR x as well as the scripted chasers, and the distributed runs' mean
must be at least CLOSE x the single-process runs'.

Measured (touches per episode v random prey, 400 episodes): single process 8.34 / 8.29
(seed 0 / 1), two Ray runners 8.35 / 8.57; untrained 0.30, scripted chasers 6.65. Before
`algo.actor_reg` (tanh saturated, |a| ~ 1) the predators took off at random times between
~250k and past 750k env steps in either loop, and two seeds could not tell the loops apart.
Prints the numbers (run with -s to see them).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from distributed_harness import new_run
from predprey.build import build
from predprey.config import load_config
from predprey.evaluate import make_eval_env, run_episodes
from predprey.learn.maddpg import ActorSet
from predprey.learn.spec import team_specs
from train_helpers import ROOT

pytest.importorskip("ray")

STEPS = 300_000
SEEDS = (0, 1)
EPISODES = 400
FLOOR = 0.6  # every run's touches >= FLOOR x the scripted chasers'
CLOSE = 0.85  # distributed mean >= CLOSE x single-process mean


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_runners_learn_as_well_as_one_process(tmp_path):
    from predprey.build import train
    from predprey.policy import load

    torch.set_num_threads(1)
    base = load_config(
        ROOT / "configs" / "tag.yaml",
        [f"train.total_env_steps={STEPS}", "train.eval_every=100000", "train.eval_prey=random",
         "train.torch_threads=1", "train.record_envs=[]", "algo.teams=[predator]",
         "train.scripted_team=prey", "train.scripted_policy=random",
         "train.scripted_fraction=1.0", "algo.batch_size=1024",
         "algo.env_steps_per_update=100"],
    )  # fmt: skip
    env = make_eval_env(base, EPISODES, seed=123)

    def touches(actors, predators: str) -> float:
        who = {"predator": predators, "prey": "random"}
        return run_episodes(env, who, actors, EPISODES, seed=123).touches_mean

    fresh = ActorSet.build(team_specs(env), base.algo, seed=1)
    untrained, chasers = touches(fresh, "learned"), touches(fresh, "chaser")
    learned: dict[str, list[float]] = {"single": [], "ray2": []}
    for seed in SEEDS:
        cfg = base.replace(train=dataclasses.replace(base.train, seed=seed))
        single_run = new_run(tmp_path / f"single{seed}", cfg)
        single = build(cfg, single_run).run()
        dist_run = new_run(tmp_path / f"dist{seed}", cfg)
        dist = train(cfg, dist_run, runners=2)
        assert dist["restarts"] == {"runner": 0, "buffer": 0, "learner": 0}
        assert dist["env_steps"] >= STEPS and single["env_steps"] >= STEPS
        assert abs(dist["updates"] / single["updates"] - 1) < 0.02
        learned["single"].append(touches(load(single_run.path).actors, "learned"))
        learned["ray2"].append(touches(load(dist_run.path).actors, "learned"))
        print(
            f"\nseed {seed}: updates single {single['updates']} ray2 {dist['updates']}; wall "
            f"single {single['time']:.0f}s ray2 {dist['time']:.0f}s; touches v random prey: "
            f"single {learned['single'][-1]:.3f} ray2 {learned['ray2'][-1]:.3f}"
        )
    print(f"untrained {untrained:.3f}, scripted chasers {chasers:.3f}")
    assert untrained < 0.2 * chasers  # the bar is not met by chance
    for runs in learned.values():
        assert min(runs) >= FLOOR * chasers  # every run learned to chase
    assert np.mean(learned["ray2"]) >= CLOSE * np.mean(learned["single"])
