"""Slow: distributed training (2 Ray runners) learns as well as the single-process loop on
`configs/tag.yaml` for the same number of env steps. OPEN: this fails today (issue 6).

For each seed in SEEDS both loops train STEPS env steps (one torch thread each): the
tag.yaml world, networks and hyperparameters, with the predators learning against
scripted random prey in every env (`algo.teams=[predator]`, `train.scripted_fraction=1`),
so self-play's swings are out of the comparison. Their final policies play EPISODES
episodes against random prey. The rate limiter keeps the single-process update-to-data
ratio, so both loops make the same number of updates (within 2 per cent). Each loop must
have learned to chase in one seed at least, and the distributed runs' mean must be within
a factor RATIO of the single-process runs'.

Measured (touches per episode, learned predators; untrained 0.39 v random prey, scripted
chasers 6.69): v random prey at 400k steps, single 0.35 / 1.63 (seed 0 / 1), Ray 0.43 /
0.34 (this test, failed: no Ray seed took off); at 300k, seed 0, single 0.35 v Ray 1.52.
Self-play at 750k, v the evader: single 2.75 / 1.60 (seed 0 / 1; 1.29 with 64 envs), Ray
1.45, 1.40, 0.17 (seed 0, three runs, the first with an earlier version; Ray runs are
not deterministic). Predators v a scripted evader (prey not trained) after 400k: single
0.41 / 0.22, Ray 0.17 (K=2) and 0.17 (K=1). When predators take off varies between runs
of either loop from ~250k to past 750k env steps; Ray took off in 3 of 8 runs, single
process in 4 of 7. Whether that gap is the loop or chance needs more seeds and longer runs
than this test has.
Prints the numbers (run with -s to see them).
"""

from __future__ import annotations

import dataclasses

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

STEPS = 400_000
SEEDS = (0, 1)
EPISODES = 400
RATIO = 3.0  # the distributed runs' mean touches may fall short by this factor at most


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_two_runners_learn_as_well_as_one_process(tmp_path):
    from predprey.distributed import train_distributed
    from predprey.policy import load

    torch.set_num_threads(1)
    base = load_config(
        ROOT / "configs" / "tag.yaml",
        [f"train.total_env_steps={STEPS}", "train.eval_every=100000", "train.eval_prey=random",
         "train.torch_threads=1", "train.record_envs=[]", "algo.teams=[predator]",
         "train.scripted_team=prey", "train.scripted_policy=random",
         "train.scripted_fraction=1.0"],
    )  # fmt: skip
    env = make_eval_env(base, EPISODES, seed=123)

    def touches(actors, predators: str) -> float:
        rng = np.random.default_rng(0)
        who = {"predator": predators, "prey": "random"}
        return run_episodes(env, who, actors, EPISODES, rng, seed=123).touches_mean

    fresh = ActorSet.build(team_specs(env), base.algo, seed=1)
    untrained, chasers = touches(fresh, "learned"), touches(fresh, "chaser")
    learned: dict[str, list[float]] = {"single": [], "ray2": []}
    for seed in SEEDS:
        cfg = base.replace(train=dataclasses.replace(base.train, seed=seed))
        single_run = new_run(tmp_path / f"single{seed}", cfg)
        single = Trainer(cfg, single_run).run()
        dist_run = new_run(tmp_path / f"dist{seed}", cfg)
        dist = train_distributed(cfg, dist_run, runners=2)
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
    for runs in learned.values():
        assert max(runs) > 2 * untrained  # each loop learned to chase (in one seed at least)
    assert np.mean(learned["ray2"]) >= np.mean(learned["single"]) / RATIO
