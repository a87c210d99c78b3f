"""The on-policy algorithm (PPO) as the training loop sees it: every iteration collects
`algo.rollout_steps` vector steps from every env with the current policy, then the learner
runs its epochs over that rollout alone and publishes the new weights before the next one.

`OnPolicy.step` is the same whatever the source (see predprey.loop). A source provides:

  inserted, updates        env steps collected / learner gradient steps taken
  collect(T)               every runner steps its envs T times with the sampling policy
                           and the source keeps the rollouts
  learn()                  GAE, epochs x minibatches over the kept rollouts (the learner's
                           `PPOLearner.learn`), then the weights go to the runners

In one process (`predprey.rollout.RolloutSource`) the runner acts with the learner's live
weights; on Ray (`predprey.distributed.onpolicy.RayRolloutSource`) K runner actors collect
at once, each returning its rollout as NumPy arrays, and get the new weights with their
next collect call.
"""

from __future__ import annotations

from predprey.config import Config


class OnPolicy:
    def __init__(self, config: Config):
        self.config = config

    def step(self, src, total: int) -> None:
        src.collect(self.config.algo.rollout_steps)
        src.learn()

    def work_left(self, src, total: int) -> bool:
        return src.inserted < total
