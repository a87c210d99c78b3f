"""Crash consistency: a process killed (os._exit, nothing flushed or closed) at every write
step of a store's commit or checkpoint leaves a store that loads with every acknowledged
row. The child (forked) counts the steps and dies at step k; k runs from 1 until a child
gets through unharmed, so every step is a crash point."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from predprey import fsio
from predprey.distributed.durable import DurableBuffer
from predprey.distributed.wal import WriteAheadLog
from predprey.rundir import RunDir
from predprey.service.core import BufferService

KILLED = 17
MAX_STEPS = 40  # bound on the loop; each store needs far fewer
SPEC = {"obs": ((3,), "float32"), "version": ((), "int64")}


def run_child(target, log: Path, *args) -> tuple[int, list[int]]:
    """Run `target(log, *args)` in a forked process (cheap: torch is already imported); it
    appends the ids it got acknowledged to `log`. Returns (exit code, acknowledged ids)."""
    proc = multiprocessing.get_context("fork").Process(target=target, args=(log, *args))
    proc.start()
    proc.join(120)
    assert proc.exitcode in (0, KILLED), proc.exitcode
    text = log.read_text() if log.exists() else ""
    return proc.exitcode, [int(x) for x in text.split()]


def acknowledge(log: Path, ids) -> None:
    with open(log, "a") as f:  # the page cache outlives the process: no fsync needed
        f.write(" ".join(map(str, ids)) + "\n")


def die_at(k: int):
    """A function that kills the process (no cleanup at all) on its k-th call."""
    calls = [0]

    def step(*_):
        calls[0] += 1
        if calls[0] == k:
            os._exit(KILLED)

    return step


def http_child(log: Path, data: Path, kill_at: int, armed_from: int) -> None:
    service = BufferService(data, 25, seed=0)
    for i in range(armed_from + 1):  # the last record is the one that may be killed
        if i == armed_from:
            service.store.conn.set_trace_callback(die_at(kill_at))  # as each statement starts
        ids = list(range(10 * i, 10 * i + 10))
        service.record(record(ids))
        acknowledge(log, ids)
    os._exit(0)


def record(ids) -> dict:
    r = np.asarray(ids, np.float64)[:, None]
    return {
        "State": np.tile(r, (1, 3)).tolist(),
        "Action": np.zeros((len(ids), 2)).tolist(),
        "Reward": r.tolist(),
        "Next State": np.tile(r, (1, 3)).tolist(),
    }


@pytest.mark.parametrize("armed_from", [0, 3], ids=["first record", "after 3 records"])
def test_http_store_killed_at_every_statement_keeps_acknowledged_rows(tmp_path, armed_from):
    for k in range(1, MAX_STEPS):
        data = tmp_path / f"k{k}"
        code, acked = run_child(http_child, tmp_path / f"k{k}.log", data, k, armed_from)
        service = BufferService(data, 25, seed=0)  # loads (no torn state)
        rows = service.stats()["rows"]
        held = sorted(service.sample(rows)["Reward"][:, 0].astype(int).tolist()) if rows else []
        assert set(acked[-25:]) <= set(held), (k, acked, held)
        assert len(held) <= 25 and set(held) <= set(range(10 * armed_from + 10))
        assert service.record(
            {
                "State": [[0.0] * 3],
                "Action": [[0.0] * 2],
                "Reward": [[99.0]],
                "Next State": [[0.0] * 3],
            }  # fmt: skip
        ).total == min(rows + 1, 25)
        service.close()
        if code == 0:
            assert acked == list(range(10 * armed_from + 10))
            break
        print(f"killed at statement {k}: {len(acked)} rows acknowledged, {len(held)} held")
    else:
        raise AssertionError(f"the child never got through {MAX_STEPS} steps")
    assert k >= 4, k  # it did die at several statements (INSERT, DELETE, COMMIT...)


def rows(start: int, n: int) -> dict[str, np.ndarray]:
    idx = np.arange(start, start + n)
    return {"obs": np.repeat(idx[:, None], 3, 1).astype(np.float32), "version": idx}


def durable_child(log: Path, path: Path, kill_at: int) -> None:
    import torch

    run = RunDir(path).create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    for i in range(3):
        buf.add(i, rows(5 * i, 5))
        acknowledge(log, range(5 * i, 5 * i + 5))
    buf.checkpoint({"teams": []}, {"updates": 1})
    buf.add(3, rows(15, 5))
    acknowledge(log, range(15, 20))
    # every write step of a checkpoint: the data written, each fsync, rename, unlink, truncate
    step = die_at(kill_at)
    for owner, name in [(os, "fsync"), (os, "fdatasync"), (os, "replace"), (os, "unlink"),
                        (np, "savez"), (torch, "save"), (WriteAheadLog, "truncate")]:  # fmt: skip
        real = getattr(owner, name)
        setattr(owner, name, lambda *a, _real=real, **kw: (step(), _real(*a, **kw))[1])
    buf.checkpoint({"teams": []}, {"updates": 2})
    buf.add(4, rows(20, 5))
    acknowledge(log, range(20, 25))
    os._exit(0)


def test_durable_buffer_killed_at_every_checkpoint_step_keeps_acknowledged_rows(tmp_path):
    for k in range(1, MAX_STEPS):
        path = tmp_path / f"k{k}"
        code, acked = run_child(durable_child, tmp_path / f"k{k}.log", path, k)
        run = RunDir(path)
        buf = DurableBuffer(run, 100, SPEC, seed=0, restore=True)
        held = sorted(buf.buffer.newest(len(buf.buffer))["version"].tolist())
        assert set(acked) <= set(held) and held == list(range(len(held))), (k, acked, held)
        assert not list(run.checkpoint_dir.glob("*.tmp")), k  # a crash's leftovers are gone
        buf.add(10, {"obs": np.zeros((1, 3), np.float32), "version": np.array([len(held)])})
        if code == 0:
            assert acked == list(range(25))
            break
        print(f"killed at step {k}: {len(acked)} rows acknowledged, {len(held)} held")
    else:
        raise AssertionError(f"the child never got through {MAX_STEPS} steps")
    assert k > 5, k


# -- fsio ------------------------------------------------------------------------------
def test_atomic_write_replaces_whole_and_leaves_no_tmp(tmp_path):
    path = tmp_path / "x.bin"
    fsio.atomic_write(path, lambda f: f.write(b"old"))
    fsio.atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["x.bin"]


def test_atomic_write_takes_a_saving_callable(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "t.pt"
    fsio.atomic_write(path, lambda f: torch.save({"a": torch.arange(3)}, f))
    assert torch.load(path)["a"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("fail", ["write_fn", "fsync", "replace"])
def test_a_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch, fail):
    path = tmp_path / "x.bin"
    fsio.atomic_write(path, lambda f: f.write(b"old"))

    def boom(*a, **kw):
        raise OSError(5, "I/O error")

    def write(f):
        f.write(b"half")
        if fail == "write_fn":
            boom()

    if fail != "write_fn":
        monkeypatch.setattr(fsio.os, fail, boom)
    with pytest.raises(OSError):
        fsio.atomic_write(path, write)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.bin"]


def test_remove_stale_tmp_only_matching(tmp_path):
    for name in ("a.npz.tmp", "latest.pt.tmp", "keep.npz", "b.tmp.npz"):
        (tmp_path / name).write_bytes(b"x")
    removed = fsio.remove_stale_tmp(tmp_path, "*.npz")
    assert [p.name for p in removed] == ["a.npz.tmp"]
    assert sorted(p.name for p in fsio.remove_stale_tmp(tmp_path)) == ["latest.pt.tmp"]
    assert sorted(os.listdir(tmp_path)) == ["b.tmp.npz", "keep.npz"]
    assert fsio.remove_stale_tmp(tmp_path / "missing") == []


def test_replay_buffer_save_is_atomic(tmp_path, monkeypatch):
    from predprey.learn.buffer import ReplayBuffer

    buf = ReplayBuffer(10, {"x": ((2,), "float32")})
    buf.add({"x": np.ones((3, 2), np.float32)})
    path = tmp_path / "b.npz"
    buf.save(path)
    buf.add({"x": np.zeros((2, 2), np.float32)})
    monkeypatch.setattr(fsio.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        buf.save(path)
    monkeypatch.undo()
    assert len(ReplayBuffer.load(path)) == 3 and sorted(os.listdir(tmp_path)) == ["b.npz"]


def test_checkpoint_is_durable_before_the_log_is_emptied(tmp_path, monkeypatch):
    """What a process kill cannot show (a machine crash loses what is not fsynced): the
    buffer file, latest.pt and their directory entries are fsynced before the truncate."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_truncate = os.fsync, os.replace, WriteAheadLog.truncate

    def fsync(fd):
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.basename(dst)))
        return real_replace(src, dst)

    def truncate(wal):
        events.append(("truncate", wal.path.name))
        return real_truncate(wal)

    run = RunDir(tmp_path / "run").create()
    buf = DurableBuffer(run, 100, SPEC, seed=0)
    buf.add(0, rows(0, 5))
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(WriteAheadLog, "truncate", truncate)
    buf.checkpoint({"teams": []}, {"updates": 1})
    cut = events.index(("truncate", "buffer.wal"))
    before = events[:cut]
    npz = "buffer-000000000005.npz"
    assert ("fsync", npz + ".tmp") in before
    assert before.index(("fsync", npz + ".tmp")) < before.index(("replace", npz))
    assert before.index(("fsync", "latest.pt.tmp")) < before.index(("replace", "latest.pt"))
    last_dir_sync = max(i for i, e in enumerate(before) if e == ("fsync", "checkpoints"))
    assert last_dir_sync > before.index(("replace", "latest.pt")), events


# -- the training loop's checkpoint (one process) ---------------------------------------
def loop_child(log: Path, path: Path, kill_at: int) -> None:
    import torch

    from predprey.build import build
    from predprey.config import config_from_dict, dump_config
    from train_helpers import TINY

    torch.set_num_threads(1)
    config = config_from_dict({**TINY, "train": {**TINY["train"], "total_env_steps": 400}})
    run = RunDir(path).create()
    dump_config(config, run.config_path)
    loop = build(config, run, evals=False)
    loop.run()  # checkpoint 1, at 400 env steps
    loop.total_env_steps, loop.checkpoints = 800, False
    loop.run()  # 400 more env steps, not checkpointed yet
    step = die_at(kill_at)
    for owner, name in [(os, "fsync"), (os, "replace"), (os, "unlink"), (np, "savez"),
                        (torch, "save")]:  # fmt: skip
        real = getattr(owner, name)
        setattr(owner, name, lambda *a, _real=real, **kw: (step(), _real(*a, **kw))[1])
    loop.save_checkpoint()
    os._exit(0)


def test_training_checkpoint_killed_at_every_write_step_resumes(tmp_path):
    """Killed anywhere in `TrainLoop.save_checkpoint`, the run resumes from the old or the
    new checkpoint whole: its replay buffer holds exactly the env steps the payload says."""
    from predprey import checkpoint
    from predprey.build import build
    from predprey.config import load_config

    for k in range(1, MAX_STEPS):
        path = tmp_path / f"k{k}"
        code, _ = run_child(loop_child, tmp_path / f"k{k}.log", path, k)
        run = RunDir(path)
        resumed = build(load_config(run.config_path), run, resume=True, evals=False)
        assert not list(run.checkpoint_dir.glob("*.tmp")), k  # a crash's leftovers are gone
        payload = checkpoint.load(run)
        assert payload["env_steps"] in (400, 800), k
        assert resumed.env_steps == resumed.source.buffer.total_added == payload["env_steps"]
        assert len(list(run.checkpoint_dir.glob("buffer-*.npz"))) in (1, 2)
        if code == 0:
            assert payload["env_steps"] == 800
            break
        print(f"killed at step {k}: resumed at {payload['env_steps']} env steps")
    else:
        raise AssertionError(f"the child never got through {MAX_STEPS} steps")
    assert k > 4, k
