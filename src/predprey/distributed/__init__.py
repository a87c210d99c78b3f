"""Distributed training on Ray: K runner actors, a buffer actor and a learner actor that
wrap the same `Runner`, `ReplayBuffer` and `Learner` as the single-process trainer.
`predprey.build` starts Ray and composes these sources into the one training loop:

  predprey.build.train(config, run, runners=4)                        # local Ray instance
  predprey.build.train(config, run, runners=16, address="head:6379")  # a Ray cluster

Modules: `driver` (`RaySource`, the off-policy source), `fleet` (actors, placement,
restarts), `actors` (Ray shells), `durable` (buffer + write-ahead log), `wal`, `cluster`
(Ray init), `onpolicy` (`RayRolloutSource`, PPO's runners), `population` (members on Ray).
"""
