"""The learner of `train --buffer-url` in this process against a real `serve-buffer`:
the update-to-data ratio against the service's insert count, publishing, resume."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from predprey import checkpoint
from predprey.build import build
from predprey.config import config_from_dict, dump_config
from predprey.rundir import RunDir
from predprey.runner import Runner
from predprey.service.client import BufferClient
from predprey.service.layout import RecordLayout
from predprey.service.process import start_server
from train_helpers import TINY

# batch 64, one update per 8 env steps (8 sampled rows per inserted row), warm-up 200 rows


def config(total_env_steps: int):
    return config_from_dict(
        {**TINY, "train": {**TINY["train"], "total_env_steps": total_env_steps}}
    )


def expected_updates(rows: int) -> int:
    return (rows - 200) * 8 // 64


def post_rows(url: str, runner: Runner, vector_steps: int) -> None:
    rng = np.random.default_rng(0)
    trans = runner.collect(vector_steps, 0.1, rng, random_actions=True).transitions
    with BufferClient(url) as c:
        c.post_transitions(RecordLayout(runner.teams).to_record(trans))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def server(tmp_path):
    s = start_server(tmp_path / "data")
    yield s
    s.stop(signal.SIGKILL)


def test_learner_keeps_the_ratio_publishes_and_resumes(tmp_path, server):
    run = RunDir(tmp_path / "run").create()
    dump_config(config(600), run.config_path)
    runner = Runner(config(600), seed=1)  # 4 envs
    post_rows(server.url, runner, 150)  # 600 rows

    client = BufferClient(server.url)
    trainer = build(config(600), run, client=client, url=server.url, time_budget=60, evals=False)
    result = trainer.run()  # ends once the updates owed to total_env_steps=600 rows are done
    # every batch the ratio allows and no more: (600 - 200) * 8 / 64
    assert result["updates"] == expected_updates(600) == 50 and result["env_steps"] == 600
    assert client.policy_versions() == {"predator": 50, "prey": 50}
    policy = client.get_policy("predator")
    actor = trainer.source.learner.actor_state()["predator"]
    assert set(policy.tensors) == set(actor)
    for k, v in actor.items():
        np.testing.assert_array_equal(policy.tensors[k], v.numpy())
    rows = run.read_metrics()
    assert rows[-1]["updates"] == 50 and "loss/critic/prey" in rows[-1]
    assert checkpoint.load(run)["remote"]["published"] == 50

    post_rows(server.url, runner, 50)  # 200 more rows, of which 160 count for total 760
    resumed = build(
        config(760), run, client=client, url=server.url, resume=True, time_budget=60, evals=False
    )
    assert resumed.source.learner.version == 50
    result = resumed.run()
    assert result["updates"] == expected_updates(760) == 70
    assert client.policy_versions() == {"predator": 70, "prey": 70}
    steps = [r["env_steps"] for r in run.read_metrics()]
    assert steps == sorted(steps) and steps[-1] == 800
    client.close()


def test_a_new_learner_refuses_a_buffer_with_newer_policies(tmp_path, server):
    run = RunDir(tmp_path / "run").create()
    with BufferClient(server.url) as c:
        c.put_policy("prey", 3, {"w": [0.0]})
        with pytest.raises(ValueError, match="already holds policies"):
            build(config(600), run, client=c, url=server.url)
