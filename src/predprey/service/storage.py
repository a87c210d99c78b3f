"""Durable storage for the HTTP replay buffer: one SQLite file in WAL mode.

`synchronous=FULL` makes every commit reach the disk (the WAL is fsync'd) before
`append` returns, so a row the server acknowledged survives kill -9. Rows are stored in
chunks (one per commit): a packed float32 blob `[n, W]` with the record's keys side by
side (widths in `meta`) and `last`, the count of rows ever recorded up to its end.
Capacity is enforced oldest-first in the same transaction: a chunk goes once all its
rows are older than the newest `capacity`; `load` trims to exactly `capacity` rows, so
a restart sees the same rows as the in-memory ring held. A restart with a capacity
smaller than the rows held is refused (`CapacityTooSmall`) rather than dropping rows.
Actor weights live in `policies` (one JSON payload per team, the newest version).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

DB_NAME = "buffer.sqlite3"


class Stored(NamedTuple):
    """What a (re)start finds on disk."""

    widths: dict[str, int] | None  # row width per key; None before the first record
    rows: np.ndarray  # [n, sum(widths)] float32, oldest first, n <= capacity
    total: int  # rows ever recorded
    policies: dict[str, tuple[int, bytes]]  # team -> (version, JSON payload)


class CapacityTooSmall(ValueError):
    """The store holds more rows than the capacity asked for."""


class SqliteStore:
    def __init__(self, data_dir: str | Path, capacity: int, reset: bool = False):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_NAME
        if reset:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
        self.lock = threading.Lock()  # one connection, shared by the writer and policy PUTs
        self.conn = sqlite3.connect(self.path, check_same_thread=False)  # implicit BEGIN
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS chunks (
                last INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS policies (
                team TEXT PRIMARY KEY, version INTEGER NOT NULL, payload BLOB NOT NULL);
            """
        )
        self.widths_saved = False
        self.total: int | None = None  # rows ever recorded (kept here: one query less per commit)

    def _meta(self, key: str) -> object:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def load(self) -> Stored:
        """Everything stored (at most `capacity` rows: the chunks hold up to one chunk more);
        CapacityTooSmall when the rows held at the stored capacity do not fit."""
        with self.lock:
            widths = self._meta("widths")
            self.widths_saved = widths is not None
            total = self.total = self._total()
            stored = int(self.conn.execute("SELECT coalesce(sum(n), 0) FROM chunks").fetchone()[0])
            held = min(stored, self._meta("capacity") or stored)  # what the last server served
            if held > self.capacity:
                raise CapacityTooSmall(
                    f"--capacity {self.capacity} is smaller than the {held} rows stored in "
                    f"{self.path}: refusing to drop rows. Pass --capacity {held} or more, or "
                    "--reset to start an empty buffer (deletes the stored rows)"
                )
            with self.conn:  # BEGIN ... COMMIT
                self.conn.execute("DELETE FROM chunks WHERE last <= ?", (total - self.capacity,))
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('capacity', ?)", (str(self.capacity),)
                )
            blobs = [b for (b,) in self.conn.execute("SELECT data FROM chunks ORDER BY last")]
            policies = {
                team: (int(version), bytes(payload))
                for team, version, payload in self.conn.execute(
                    "SELECT team, version, payload FROM policies"
                )
            }
        width = sum(widths.values()) if widths else 0
        flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
        rows = flat.reshape(len(flat) // max(width, 1), width)  # [n, W]
        rows = rows[len(rows) - held :]  # the rows the last server held, not those it evicted
        return Stored(widths, rows, total, policies)

    def _total(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(last), 0) FROM chunks").fetchone()[0])

    def append(self, blocks: list[np.ndarray], widths: dict[str, int]) -> int:
        """Store row blocks `[n_i, W]` as one chunk in ONE transaction (durable on return);
        returns the count of rows ever recorded."""
        data = np.concatenate(blocks).astype("<f4").tobytes()  # [n, W] before taking the lock
        n = sum(len(b) for b in blocks)
        # Few statements per commit: each one gives the GIL away and waits to get it back.
        with self.lock:
            if self.total is None:
                self.total = self._total()
            total = self.total + n
            with self.conn:  # BEGIN ... COMMIT (fsync); a failure rolls back and raises
                if not self.widths_saved:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('widths', ?)", (json.dumps(widths),)
                    )
                self.conn.execute("INSERT INTO chunks VALUES (?, ?, ?)", (total, n, data))
                if total > self.capacity:
                    self.conn.execute(
                        "DELETE FROM chunks WHERE last <= ?", (total - self.capacity,)
                    )
            self.total = total  # only once committed
        self.widths_saved = True
        return total

    def put_policy(self, team: str, version: int, payload: bytes) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO policies VALUES (?, ?, ?)", (team, version, payload)
            )

    def close(self) -> None:
        with self.lock:
            self.conn.close()
