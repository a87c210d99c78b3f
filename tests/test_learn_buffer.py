"""The ring replay buffer against a plain list of rows: order, wrap-around, oversize
batches, sampling range, save/load round trip, errors; large buffers (huge-page memory)
behave exactly like small ones."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predprey.learn import buffer as buffer_mod
from predprey.learn.buffer import ReplayBuffer

SPEC = {"obs": ((3,), "float32"), "done": ((), "float32"), "idx": ((), "int64")}


def rows(start: int, n: int) -> dict[str, np.ndarray]:
    i = np.arange(start, start + n)
    return {
        "obs": np.stack([i, -i, 2 * i], 1).astype(np.float32),
        "done": (i % 2).astype(np.float32),
        "idx": i.astype(np.int64),
    }


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=12),
)
def test_ring_holds_the_newest_rows_in_order(capacity, sizes):
    buf, added = ReplayBuffer(capacity, SPEC), 0
    for n in sizes:
        assert buf.add(rows(added, n)) == min(n, capacity)
        added += n
        expect = np.arange(max(0, added - capacity), added)  # the newest `capacity` rows
        assert len(buf) == len(expect) and buf.total_added == added
        newest = buf.newest(len(buf))
        np.testing.assert_array_equal(newest["idx"], expect)
        np.testing.assert_array_equal(newest["obs"], rows(int(expect[0]) if len(expect) else 0,
                                                          len(expect))["obs"])  # fmt: skip
        # every stored row is internally consistent (fields written to the same slot)
        held = buf.data["idx"][: len(buf)]
        np.testing.assert_array_equal(buf.data["obs"][: len(buf), 1], -held)


def test_sample_draws_only_held_rows_and_round_trips_through_a_file(tmp_path):
    buf = ReplayBuffer(50, SPEC)
    buf.add(rows(0, 70))  # wrapped: rows 20..69
    batch = buf.sample(4000, np.random.default_rng(0))
    assert set(np.unique(batch["idx"])) == set(range(20, 70))
    np.testing.assert_array_equal(batch["obs"][:, 2], 2 * batch["idx"])
    buf.save(tmp_path / "b.npz")
    back = ReplayBuffer.load(tmp_path / "b.npz")
    assert (back.capacity, back.total_added, len(back)) == (50, 70, 50)
    np.testing.assert_array_equal(back.newest(50)["idx"], np.arange(20, 70))
    back.add(rows(70, 5))  # continues as the original would
    buf.add(rows(70, 5))
    np.testing.assert_array_equal(back.newest(50)["idx"], buf.newest(50)["idx"])


def test_bad_batches_name_the_field_and_change_nothing():
    buf = ReplayBuffer(10, SPEC)
    buf.add(rows(0, 3))
    with pytest.raises(ValueError, match="missing \\['idx'\\]"):
        buf.add({k: v for k, v in rows(3, 2).items() if k != "idx"})
    with pytest.raises(ValueError, match="field 'obs'"):
        buf.add({**rows(3, 2), "obs": np.zeros((2, 4), np.float32)})
    with pytest.raises(ValueError, match="rows"):
        buf.add({**rows(3, 2), "done": np.zeros(3, np.float32)})
    assert len(buf) == 3 and buf.total_added == 3


def test_large_buffers_use_huge_page_memory_and_behave_like_small_ones():
    capacity = 400_000  # obs field: 4.8 MB, over the huge-page threshold
    big = ReplayBuffer(capacity, SPEC)
    assert big.data["obs"].nbytes >= buffer_mod.HUGE_PAGE_MIN_BYTES
    if hasattr(buffer_mod.mmap, "MADV_HUGEPAGE"):
        owner = big.data["obs"]
        while isinstance(owner, np.ndarray):
            owner = owner.base
        assert isinstance(owner.obj, buffer_mod.mmap.mmap)  # a memoryview of the mapping
    assert big.data["obs"].flags.writeable and not big.data["obs"].any()
    big.add(rows(0, capacity - 5))
    big.add(rows(capacity - 5, 12))  # wraps by 7
    np.testing.assert_array_equal(big.data["idx"][:7], np.arange(capacity, capacity + 7))
    np.testing.assert_array_equal(big.newest(3)["obs"], rows(capacity + 4, 3)["obs"])


def test_rows_match_numpy_indexing_across_the_wrap():
    """`rows` (np.take) gives what `v[idx]` gives: the same values, shapes and dtypes, for
    repeated indices and after the ring wrapped; and new arrays, not views of the ring."""
    buf = ReplayBuffer(7, {**SPEC, "obs2": ((2, 3), "float32")})
    for start in (0, 5):  # 10 rows into a ring of 7: the cursor wraps
        n = 5
        buf.add({**rows(start, n), "obs2": np.arange(start, start + n, dtype=np.float32)[
            :, None, None] * np.ones((n, 2, 3), np.float32)})  # fmt: skip
    idx = np.array([6, 0, 0, 3, 6, 1])
    got = buf.rows(idx)
    for k, v in buf.data.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v[idx])
        assert not np.shares_memory(got[k], v)
