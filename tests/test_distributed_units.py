"""Plain-class parts of predprey.distributed (no Ray): write-ahead log, durable buffer,
rate limiter."""

from __future__ import annotations

import numpy as np
import pytest

from predprey import checkpoint
from predprey.config import config_from_dict
from predprey.distributed.durable import WAL_NAME, DurableBuffer
from predprey.distributed.wal import WriteAheadLog
from predprey.learn.rate_limiter import RateLimiter, samples_per_insert
from predprey.rundir import RunDir, RunDirError

SPEC = {"obs": ((3,), "float32"), "version": ((), "int64")}


def rows(start: int, n: int) -> dict[str, np.ndarray]:
    """n rows whose values encode their global row number (start .. start + n - 1)."""
    idx = np.arange(start, start + n)
    return {"obs": np.repeat(idx[:, None], 3, 1).astype(np.float32), "version": idx}


def held(buf: DurableBuffer) -> list[int]:
    return sorted(buf.buffer.newest(len(buf.buffer))["version"].tolist())


# -- write-ahead log -------------------------------------------------------------------
def test_wal_replays_what_was_appended(tmp_path):
    wal = WriteAheadLog(tmp_path / "x.wal")
    wal.append(0, 0, rows(0, 4))
    wal.append(1, 4, rows(4, 2))
    recs = list(WriteAheadLog(tmp_path / "x.wal").replay())
    assert [(r.insert_id, r.start) for r in recs] == [(0, 0), (1, 4)]
    np.testing.assert_array_equal(recs[1].batch["obs"], rows(4, 2)["obs"])
    assert recs[1].batch["version"].dtype == np.int64


def test_wal_cuts_a_torn_tail_and_keeps_appending(tmp_path):
    path = tmp_path / "x.wal"
    wal = WriteAheadLog(path)
    wal.append(0, 0, rows(0, 4))
    good = path.stat().st_size
    wal.append(1, 4, rows(4, 4))
    wal.close()
    with open(path, "r+b") as f:  # a crash in the middle of the second append
        f.truncate(path.stat().st_size - 7)
    wal = WriteAheadLog(path)
    assert [r.insert_id for r in wal.replay()] == [0]
    assert path.stat().st_size == good
    wal.append(2, 4, rows(4, 1))
    assert [r.insert_id for r in WriteAheadLog(path).replay()] == [0, 2]


def test_wal_stops_at_a_corrupt_record(tmp_path):
    path = tmp_path / "x.wal"
    wal = WriteAheadLog(path)
    wal.append(0, 0, rows(0, 4))
    wal.append(1, 4, rows(4, 4))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last payload: its crc no longer matches
    path.write_bytes(bytes(data))
    assert [r.insert_id for r in WriteAheadLog(path).replay()] == [0]


def test_wal_truncate_empties_it(tmp_path):
    wal = WriteAheadLog(tmp_path / "x.wal")
    wal.append(0, 0, rows(0, 4))
    wal.truncate()
    assert wal.size_bytes == 0 and list(wal.replay()) == []


# -- durable buffer ----------------------------------------------------------------------
def test_acknowledged_rows_survive_a_crash_without_checkpoint(tmp_path):
    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    acks = [buf.add(i, rows(5 * i, 5)) for i in range(3)]
    assert [a.total_added for a in acks] == [5, 10, 15]
    del buf  # "crash": nothing else is written
    again = DurableBuffer(run, 100, SPEC, seed=0, restore=True)
    assert held(again) == list(range(15))
    assert again.stats().replayed_rows == 15 and again.last_insert_id == 2


def test_checkpoint_plus_log_restores_every_acknowledged_row(tmp_path):
    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    buf.add(0, rows(0, 5))
    buf.add(1, rows(5, 5))
    out = buf.checkpoint({"teams": []}, {"updates": 7})
    assert out["env_steps"] == 10 and buf.stats().wal_bytes == 0
    payload = checkpoint.load(run)
    assert payload["env_steps"] == 10 and payload["updates"] == 7
    assert payload["last_insert_id"] == 1
    buf.add(2, rows(10, 3))
    again = DurableBuffer(run, 100, SPEC, seed=0, restore=True)
    assert held(again) == list(range(13))
    assert again.stats().replayed_rows == 3


def test_log_records_already_in_the_checkpoint_are_skipped(tmp_path):
    """Crash after the checkpoint's buffer was written but before the log was emptied."""
    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    buf.add(0, rows(0, 5))
    checkpoint.save(run, {"last_insert_id": 0}, buf.buffer)  # the log still holds insert 0
    buf.add(1, rows(5, 5))
    again = DurableBuffer(run, 100, SPEC, seed=0, restore=True)
    assert held(again) == list(range(10))


def test_resent_insert_is_not_added_twice(tmp_path):
    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    buf.add(0, rows(0, 5))
    again = DurableBuffer(run, 100, SPEC, seed=0, restore=True)
    ack = again.add(0, rows(0, 5))  # the driver never saw the first ack and sends it again
    assert ack.rows == 0 and ack.total_added == 5
    assert again.add(1, rows(5, 5)).total_added == 10


def test_bad_batch_is_rejected_before_it_is_logged(tmp_path):
    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    with pytest.raises(ValueError, match="obs"):
        buf.add(0, {"obs": np.zeros((2, 4), np.float32), "version": np.zeros(2, np.int64)})
    assert buf.stats().wal_bytes == 0


def test_log_that_does_not_continue_the_checkpoint_is_an_error(tmp_path):
    run = RunDir(tmp_path / "run").create()
    WriteAheadLog(run.checkpoint_dir / WAL_NAME).append(0, 50, rows(50, 5))
    with pytest.raises(RunDirError, match="continues at row 50"):
        DurableBuffer(run, 100, SPEC, seed=0, restore=True)


def test_sample_stacks_batches(tmp_path):
    buf = DurableBuffer(RunDir(tmp_path / "run").create(), 100, SPEC, seed=0, wal=False)
    buf.add(0, rows(0, 20))
    out = buf.sample(3, 8)
    assert out["obs"].shape == (24, 3) and set(out["version"]) <= set(range(20))


# -- rate limiter ------------------------------------------------------------------------
def test_rate_limiter_keeps_the_single_process_ratio():
    lim = RateLimiter(samples_per_insert=10.0, batch_size=100, warmup=1000, slack=500)
    assert lim.batches_allowed(inserted=999, sampled=0) == 0  # warm-up: no learning
    assert lim.may_insert(inserted=0, sampled=0, rows=1000)  # warm-up inserts are free
    # 100 env steps past warm-up earn 10 batches of 100 rows (1 update per 10 env steps)
    assert lim.batches_allowed(inserted=1100, sampled=0) == 10
    assert lim.batches_allowed(inserted=1100, sampled=900) == 1
    assert lim.batches_allowed(inserted=1100, sampled=1000) == 0  # learner may not run ahead


def test_rate_limiter_holds_runners_back_by_at_most_the_slack():
    lim = RateLimiter(samples_per_insert=10.0, batch_size=100, warmup=0, slack=500)
    # learner has sampled nothing: runners may get `slack` (+ one batch) env steps ahead
    assert lim.may_insert(inserted=0, sampled=0, rows=500)
    assert lim.may_insert(inserted=500, sampled=0, rows=10)
    assert not lim.may_insert(inserted=500, sampled=0, rows=11)
    # once the learner catches up, runners may go on
    assert lim.may_insert(inserted=500, sampled=5000, rows=500)


def test_rate_limiter_never_deadlocks():
    """Whenever runners are held back, the learner has a batch to sample."""
    lim = RateLimiter(samples_per_insert=6.4, batch_size=64, warmup=400, slack=200)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        inserted = int(rng.integers(0, 5000))
        sampled = int(rng.integers(0, 40000)) // 64 * 64
        if not lim.may_insert(inserted, sampled, rows=200) and inserted >= 400:
            assert lim.batches_allowed(inserted, sampled) >= 1


def test_samples_per_insert_defaults_to_the_update_to_data_ratio():
    cfg = config_from_dict({"algo": {"batch_size": 512, "env_steps_per_update": 50}})
    assert samples_per_insert(cfg) == pytest.approx(10.24)
    cfg = config_from_dict({"distributed": {"samples_per_insert": 3.0}})
    assert samples_per_insert(cfg) == 3.0


def test_weights_from_the_object_store_load_without_a_warning():
    """Regression: arrays that Ray hands back are read-only, and torch.from_numpy warned
    about it on every weight load (printed in the driver's output at each evaluation)."""
    import warnings

    import torch

    pytest.importorskip("ray")
    from predprey.distributed.actors import weights_to_numpy, weights_to_torch

    state = weights_to_numpy({"predator": {"w": torch.arange(6.0).reshape(2, 3)}})
    state["predator"]["w"].flags.writeable = False  # as ray.get returns it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = weights_to_torch(state)
    assert torch.equal(back["predator"]["w"], torch.arange(6.0).reshape(2, 3))


# -- packed transitions and batched inserts ----------------------------------------------
def _runner_pair():
    """Two runners with the same seed: one collects plainly, the other packed."""
    from predprey.runner import Runner

    cfg = config_from_dict({"env": {"num_envs": 4}})
    return Runner(cfg, seed=3), Runner(cfg, seed=3)


def _copy(batch):
    return {k: np.array(v) for k, v in batch.items()}  # packed arrays are reused next call


def test_packed_transitions_unpack_to_the_plain_rows_and_are_smaller():
    from predprey.learn.packing import ROWS, unpack

    plain, packed = _runner_pair()
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    for _ in range(2):  # the second call reuses the packed arrays of the first
        want = plain.collect(60, 0.1, rng_a, random_actions=True)  # 2.4 episodes per env
        got = packed.collect(60, 0.1, rng_b, random_actions=True, packed=True)
        assert got.env_steps == want.env_steps == 240
        np.testing.assert_array_equal(got.episodes.lengths, want.episodes.lengths)
        back = unpack(_copy(got.transitions))
        assert set(back) == set(want.transitions)
        for k, v in want.transitions.items():
            np.testing.assert_array_equal(back[k], v, err_msg=k)
        assert len(got.transitions[ROWS]) == 2 * 4  # the rows that ended an episode
    size = sum(v.nbytes for v in got.transitions.values())
    assert size < 0.7 * sum(v.nbytes for v in want.transitions.values())
    assert unpack(want.transitions).keys() == want.transitions.keys()  # plain: as it is


def test_a_group_of_inserts_is_logged_packed_with_one_sync(tmp_path, monkeypatch):
    plain, packed = _runner_pair()
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    calls = [plain.collect(30, 0.1, rng_a, random_actions=True) for _ in range(2)]
    batches = [
        _copy(packed.collect(30, 0.1, rng_b, random_actions=True, packed=True).transitions)
        for _ in range(2)
    ]
    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 1000, plain.spec, seed=0)
    syncs = []
    monkeypatch.setattr(buf.wal, "sync", lambda: syncs.append(1))
    acks = buf.add_many([(0, batches[0]), (1, batches[1]), (0, batches[0])])
    assert [a.total_added for a in acks] == [120, 240, 240] and acks[2].rows == 0
    assert len(syncs) == 1
    buf.wal._file.flush()
    again = DurableBuffer(run, 1000, plain.spec, seed=0, restore=True)
    assert again.stats().replayed_rows == 240
    for k, v in calls[1].transitions.items():
        np.testing.assert_array_equal(again.buffer.newest(120)[k], v, err_msg=k)
