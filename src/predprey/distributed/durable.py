"""The buffer actor's state as a plain class: a ReplayBuffer whose acknowledged inserts
survive crashes.

Durability = the latest checkpoint (which holds the buffer) + a write-ahead log of every
insert acknowledged since. An insert is applied, appended to the log and fsynced before
`add` returns its `Ack`; `checkpoint` writes the buffer with the run's checkpoint and then
empties the log. `DurableBuffer(..., restore=True)` rebuilds the buffer from the latest
checkpoint and replays the log records that continue it, so after any crash the buffer
holds every acknowledged row. Inserts carry the driver's increasing `insert_id`; a re-sent
insert (its first copy reached the log, its ack was lost in the crash) is not added twice.
Inserts may come `pack`ed (predprey.learn.packing): the log keeps them packed, the
buffer holds them unpacked; `add_many` makes a group of inserts durable with one fsync.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from predprey import checkpoint
from predprey.distributed.wal import WriteAheadLog
from predprey.fsio import remove_stale_tmp
from predprey.learn.buffer import FieldSpec, ReplayBuffer
from predprey.learn.packing import unpack
from predprey.rundir import RunDir, RunDirError

WAL_NAME = "buffer.wal"


class Ack(NamedTuple):
    insert_id: int
    rows: int  # rows this insert added (0: a duplicate that was already held)
    total_added: int  # rows ever added to the buffer, this insert included


class BufferStats(NamedTuple):
    size: int
    total_added: int
    last_insert_id: int
    replayed_rows: int  # rows recovered from the write-ahead log when this buffer opened
    wal_bytes: int


class DurableBuffer:
    def __init__(
        self,
        run: RunDir,
        capacity: int,
        spec: FieldSpec,
        seed: int,
        wal: bool = True,
        restore: bool = False,
    ):
        self.run = run
        self.capacity = capacity
        # what a crash in the middle of this class's checkpoint left (no one else writes these)
        for pattern in ("buffer-*.npz", checkpoint.LATEST):
            remove_stale_tmp(run.checkpoint_dir, pattern)
        self.buffer = ReplayBuffer(capacity, spec)
        self.rng = np.random.default_rng(seed)
        self.last_insert_id = -1
        self.replayed_rows = 0
        if restore and checkpoint.latest_path(run).is_file():
            payload = checkpoint.load(run)
            if payload.get("buffer_file"):
                self.buffer = checkpoint.load_buffer(run, payload, capacity)
            self.last_insert_id = int(payload.get("last_insert_id", -1))
        if _fields(self.buffer.spec) != _fields(spec):
            raise RunDirError(f"replay buffer in {run.checkpoint_dir} has other fields than {spec}")
        self.wal = WriteAheadLog(run.checkpoint_dir / WAL_NAME) if wal else None
        if self.wal is not None:
            if restore:
                self._replay()
            else:
                self.wal.truncate()  # a fresh run: nothing before it can be wanted

    def _replay(self) -> None:
        for rec in self.wal.replay():
            if rec.start < self.buffer.total_added:
                continue  # already in the checkpoint's buffer
            if rec.start > self.buffer.total_added:
                raise RunDirError(
                    f"{self.wal.path}: log continues at row {rec.start}, but the checkpoint "
                    f"buffer ends at row {self.buffer.total_added}"
                )
            self.replayed_rows += self.buffer.add(unpack(rec.batch))
            self.last_insert_id = max(self.last_insert_id, rec.insert_id)

    def add(self, insert_id: int, batch: Mapping[str, np.ndarray]) -> Ack:
        """Insert rows and make them durable; the returned Ack is the acknowledgement."""
        return self.add_many([(insert_id, batch)])[-1]

    def add_many(self, inserts: Sequence[tuple[int, Mapping[str, np.ndarray]]]) -> list[Ack]:
        """Insert each `(insert_id, batch)` in order, then make them all durable at once
        (one fsync); the Acks are returned only after that."""
        acks = []
        for insert_id, batch in inserts:
            if insert_id <= self.last_insert_id:
                acks.append(Ack(insert_id, 0, self.buffer.total_added))
                continue
            start = self.buffer.total_added
            rows = self.buffer.add(unpack(batch))  # validates before anything is logged
            if self.wal is not None:
                self.wal.append(insert_id, start, batch, sync=False)
            self.last_insert_id = insert_id
            acks.append(Ack(insert_id, rows, self.buffer.total_added))
        if self.wal is not None:
            self.wal.sync()
        return acks

    def sample(self, n_batches: int, batch_size: int) -> dict[str, np.ndarray]:
        """`n_batches` uniform batches stacked: {field: [n_batches * batch_size, ...]}."""
        return self.buffer.sample(n_batches * batch_size, self.rng)

    def checkpoint(self, payload: Mapping[str, Any], learner: Mapping[str, Any]) -> dict:
        """Write the run's checkpoint (payload + learner state + this buffer), then empty the
        log. The buffer's counters go into the payload: `env_steps` is every row it holds."""
        t0 = time.perf_counter()
        full = {
            **payload,
            **learner,
            "env_steps": self.buffer.total_added,
            "last_insert_id": self.last_insert_id,
        }
        checkpoint.save(self.run, full, self.buffer)  # durable when it returns
        if self.wal is not None:
            self.wal.truncate()
        return {"env_steps": self.buffer.total_added, "seconds": time.perf_counter() - t0}

    def stats(self) -> BufferStats:
        wal_bytes = self.wal.size_bytes if self.wal is not None else 0
        return BufferStats(
            len(self.buffer),
            self.buffer.total_added,
            self.last_insert_id,
            self.replayed_rows,
            wal_bytes,
        )


def _fields(spec: FieldSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    return {k: (tuple(shape), np.dtype(dt)) for k, (shape, dt) in spec.items()}
