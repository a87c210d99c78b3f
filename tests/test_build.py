"""`predprey.build`: the one place that chooses a run's pieces, and the one checkpoint path
(the loop writes every kind of run's checkpoint and restores it with one message)."""

from __future__ import annotations

import pytest
import torch

from distributed_harness import new_run
from predprey import checkpoint
from predprey.build import build
from predprey.config import config_from_dict
from predprey.learn.offpolicy import OffPolicy
from predprey.learn.onpolicy import OnPolicy
from predprey.loop import TrainLoop
from predprey.population.trainer import Population
from predprey.rollout import RolloutSource
from predprey.rundir import RunDirError
from predprey.train import LocalSource
from train_helpers import TINY

PPO = {
    **TINY,
    "algo": {"name": "ppo", "hidden": [16, 16], "rollout_steps": 10, "epochs": 1,
             "minibatches": 2},
    "buffer": {},
}  # fmt: skip
POPULATION = {**TINY, "population": {"size": 2, "mode": "independent"}}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("data", "algorithm", "source"),
    [(TINY, OffPolicy, LocalSource), (PPO, OnPolicy, RolloutSource),
     (POPULATION, Population, Population)],
    ids=["maddpg", "ppo", "population"],
)  # fmt: skip
def test_build_composes_the_one_loop(tmp_path, data, algorithm, source):
    config = config_from_dict(data)
    loop = build(config, new_run(tmp_path / "run", config))
    assert type(loop) is TrainLoop  # never a subclass
    assert isinstance(loop.algorithm, algorithm) and isinstance(loop.source, source)
    assert loop.source.run_dir is loop.run_dir


@pytest.mark.parametrize("data", [TINY, PPO, POPULATION], ids=["maddpg", "ppo", "population"])
def test_every_kind_of_run_checkpoints_and_resumes_through_the_loop(tmp_path, data):
    """The payload is the loop's keys plus the source's `state_dict`, and a resume gives the
    source back exactly that state."""
    data = {**data, "train": {**data["train"], "total_env_steps": 400}}
    config = config_from_dict(data)
    run = new_run(tmp_path / "run", config)
    loop = build(config, run, evals=False)
    loop.run()
    payload = checkpoint.load(run)
    assert payload["loop_env_steps"] == loop.env_steps == payload["env_steps"]
    assert payload["teams"] == checkpoint.team_list(loop.teams)
    resumed = build(config, run, resume=True, evals=False)
    assert (resumed.env_steps, resumed.updates) == (loop.env_steps, loop.updates)
    assert resumed.episodes == loop.episodes and resumed.next_eval == loop.next_eval
    before, after = loop.source.state_dict(), resumed.source.state_dict()
    assert before.keys() == after.keys()
    assert before["env_steps"] == after["env_steps"]


@pytest.mark.parametrize(
    ("written", "resumed_as"),
    [(TINY, PPO), (PPO, TINY), (TINY, POPULATION), (POPULATION, TINY)],
    ids=["maddpg-as-ppo", "ppo-as-maddpg", "single-as-population", "population-as-single"],
)
def test_a_checkpoint_of_another_kind_of_run_is_one_clear_error(tmp_path, written, resumed_as):
    first = {**written, "train": {**written["train"], "total_env_steps": 200}}
    config = config_from_dict(first)
    run = new_run(tmp_path / "run", config)
    build(config, run, evals=False).run()
    with pytest.raises(RunDirError, match=r"^incompatible checkpoint in .*run: "):
        build(config_from_dict(resumed_as), run, resume=True)
