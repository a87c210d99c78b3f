"""Per-agent credit of the envs (PPO's trajectory separation needs credit to separate):
tag's predators rewarded for their own touches. The default stays mpe2's shared reward."""

from __future__ import annotations

import numpy as np
import pytest

import predprey.env as E


def _tag_rewards(credit, fused):
    env = E.make("tag", num_envs=1, seed=0, preset="mpe", predator_credit=credit)
    s = env.state
    s.pos[0] = [[0.0, 0.0], [0.8, 0.8], [-0.8, 0.8], [0.01, 0.0]]  # predator 0 touches prey
    s.vel[:] = 0.0
    s.landmark_pos[0] = [[-0.8, -0.8], [0.8, -0.8]]
    if not fused:
        return env.scenario.outcome(s).rewards["predator"][0]
    assert env.fused
    zero = {"predator": np.zeros((1, 3, 2)), "prey": np.zeros((1, 1, 2))}
    return env.step(zero).reward["predator"][0]


@pytest.mark.parametrize("fused", [True, False])
def test_tag_predators_shared_or_own_touches(fused):
    assert _tag_rewards(None, fused).tolist() == [10.0, 10.0, 10.0]  # mpe2: shared
    assert _tag_rewards("shared", fused).tolist() == [10.0, 10.0, 10.0]
    assert _tag_rewards("own", fused).tolist() == [10.0, 0.0, 0.0]


def test_tag_credit_is_checked():
    with pytest.raises(ValueError, match="predator_credit: unknown credit 'mine'"):
        E.make("tag", preset="mpe", predator_credit="mine")
    with pytest.raises(ValueError, match="predator_credit applies only to preset 'mpe'"):
        E.make("tag", preset="seed", predator_credit="own")
