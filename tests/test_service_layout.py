"""Trainer transitions <-> the original record keys, and the packed batch fast path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from predprey.config import config_from_dict
from predprey.learn.buffer import ReplayBuffer
from predprey.runner import Runner
from predprey.service.app import create_app
from predprey.service.core import BufferService
from predprey.service.layout import RecordLayout, server_widths
from predprey.service.wire import ROWS_MEDIA, WIDTHS_HEADER, decode_rows, encode_rows
from train_helpers import TINY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "install httpx2"
    from fastapi.testclient import TestClient


def collected(steps: int = 30) -> tuple[Runner, dict[str, np.ndarray]]:
    runner = Runner(config_from_dict(TINY), seed=3)
    rng = np.random.default_rng(0)
    return runner, runner.collect(steps, 0.1, rng, random_actions=True).transitions


def test_record_roundtrip_restores_every_learner_field():
    runner, trans = collected()  # 30 steps x 4 envs: episodes of 25 steps end inside
    layout = RecordLayout(runner.teams)
    # 3 predators x 16 obs + 1 prey x 14 obs; 4 agents x 2 actions; 4 rewards
    assert layout.widths == {"State": 62, "Action": 8, "Reward": 4, "Next State": 62, "Done": 1}
    record = layout.to_record(trans)
    assert all(v.dtype == np.float32 and v.shape == (120, layout.widths[k])
               for k, v in record.items())  # fmt: skip
    back = layout.from_record(record)
    for k, (shape, _) in runner.spec.items():
        assert back[k].shape == (120, *shape), k
        if k != "version":
            np.testing.assert_array_equal(back[k], trans[k], err_msg=k)
    assert (back["version"] == -1).all()
    # truncated episodes bootstrap: Done stays 0 where next_obs is a time-limit final obs
    assert record["Done"].sum() == trans["terminated"].sum()
    # the unpacked rows are what Learner.update reads: a buffer of the spec accepts them
    ReplayBuffer(200, runner.spec).add(back)


def test_widths_mismatch_names_the_key_and_the_config():
    runner, _ = collected(1)
    layout = RecordLayout(runner.teams)
    layout.check(None, "x")  # a buffer that has not fixed its widths fits anything
    layout.check(dict(layout.widths), "x")
    with pytest.raises(ValueError, match=r"3 predator x 16 obs.*State: 10 \(config needs 62\)"):
        layout.check({**layout.widths, "State": 10}, "the buffer at U")
    with pytest.raises(ValueError, match="not as a predprey serve-buffer"):
        server_widths({"hello": 1}, "http://u")


def test_packed_batch_holds_the_same_rows_as_the_json_batch(tmp_path):
    runner, trans = collected(5)
    layout = RecordLayout(runner.teams)
    record = layout.to_record(trans)
    body, widths = encode_rows(record)
    assert len(body) == 20 * 137 * 4
    got = decode_rows(body, widths)
    for k, v in record.items():
        np.testing.assert_array_equal(got[k], v)
    assert got["State"].flags.writeable  # torch.as_tensor needs writable arrays

    service = BufferService(tmp_path / "data", 100, seed=0)
    try:
        c = TestClient(create_app(service))
        payload = {k: v.tolist() for k, v in record.items()}
        assert c.post("/record_data/", json=payload).status_code == 201
        r = c.get("/batch_data/20", headers={"Accept": ROWS_MEDIA})
        assert r.status_code == 200 and r.headers["content-type"] == ROWS_MEDIA
        packed = decode_rows(r.content, r.headers[WIDTHS_HEADER])
        order = np.lexsort(packed["State"].T)  # sampled order is random: compare sorted
        expect = np.lexsort(record["State"].T)
        for k in record:
            np.testing.assert_array_equal(packed[k][order], record[k][expect], err_msg=k)
        assert c.get("/batch_data/21", headers={"Accept": ROWS_MEDIA}).status_code == 409
        assert c.get("/batch_data/3").headers["content-type"] == "application/json"
    finally:
        service.close()
