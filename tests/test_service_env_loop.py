"""`run-env`'s loop without a server: it keeps to the learner's samples-per-insert pace."""

from __future__ import annotations

from predprey.config import config_from_dict
from predprey.service.env_loop import EnvFeeder
from train_helpers import TINY

# 4 envs x 25 steps = 100 rows per post; batch 64, 8 rows sampled per row inserted
# (env_steps_per_update 8), warm-up 200 rows; slack max(4 posts, 16 batches) = 400 rows:
# a post may go while (inserted + 100 - 200) * 8 - sampled <= 400 * 8 + 64
CONFIG = config_from_dict(TINY)


def test_env_rows_wait_for_the_learner_beyond_warmup_and_slack():
    feeder = EnvFeeder(CONFIG, client=None, seed=0, steps_per_post=25)
    assert feeder.rows_per_post == 100 and feeder.policy_version == 0
    # no learner yet: warm-up plus slack, then wait
    assert not feeder.ahead_of_learner(0)
    assert not feeder.ahead_of_learner(508)  # (608 - 200) * 8 = 3264
    assert feeder.ahead_of_learner(509)
    # a learner published version 9 (9 batches of 64 sampled): 72 more rows may go
    feeder.versions = {"predator": 9, "prey": 9}
    assert feeder.policy_version == 9
    assert not feeder.ahead_of_learner(580) and feeder.ahead_of_learner(581)
    # one team's weights alone do not count as the learner's progress
    feeder.versions = {"predator": 9}
    assert feeder.policy_version == 0 and feeder.ahead_of_learner(581)


def test_without_rate_limit_the_loop_runs_free():
    feeder = EnvFeeder(CONFIG, client=None, seed=0, steps_per_post=25, rate_limit=False)
    assert not feeder.ahead_of_learner(10**9)
