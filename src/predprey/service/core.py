"""The replay-buffer service as a plain class; the FastAPI app is a thin shell around it.

Records are validated (`wire.parse_record`), then handed to ONE writer thread that
commits whatever is queued in a single SQLite transaction (group commit: concurrent
posts share one fsync) and only then adds the rows to the in-memory `ReplayBuffer`
(the trainer's class) and resolves each post's future. So an acknowledged row is on
disk, and a row that is sampled was acknowledged (or is about to be).

A rejected request changes nothing: limits (`Limits`: values per row, memory the ring
would preallocate) are checked before anything is allocated, and the row widths are fixed
by the writer only once the first record is on disk. A writer that hits an error fails
the requests of that group and goes on serving.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

from predprey.learn.buffer import ReplayBuffer
from predprey.service.limits import MAX_MEMORY, MAX_ROW_WIDTH
from predprey.service.storage import SqliteStore
from predprey.service.wire import (
    FIELDS,
    RecordError,
    TooLarge,
    check_widths,
    decode_tensors,
    parse_record,
    width_limit,
)

MAX_GROUP = 512  # posts per group commit


def size(n: int) -> str:
    """Bytes for a message: '728.0 KiB', '8.0 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


class Limits(NamedTuple):
    max_row_width: int = MAX_ROW_WIDTH  # values per row of one key
    max_memory: int = MAX_MEMORY  # bytes of the preallocated ring: capacity x 4 x sum(widths)

    def check(self, widths: dict[str, int], capacity: int, where: str = "body") -> None:
        """TooLarge (naming the flag that raises the limit) unless a ring of `capacity` rows
        of `widths` fits; `where`: what the widths came from."""
        for k, w in widths.items():
            width_limit(k, w, self.max_row_width)
        need = capacity * 4 * sum(widths.values())
        if need > self.max_memory:
            raise TooLarge(
                where,
                f"rows of {sum(widths.values())} values need {size(need)} for --capacity "
                f"{capacity}, over this server's limit of {size(self.max_memory)} "
                "(serve-buffer --max-memory raises it)",
            )


DEFAULT_LIMITS = Limits()


class Conflict(Exception):
    """The request is well formed but the buffer's state refuses it (HTTP 409)."""


class NotFound(Exception):
    """Nothing stored under that name yet (HTTP 404)."""


class StorageFailed(Exception):
    """The database refused a write (HTTP 503); nothing was acknowledged."""


class RecordAck(NamedTuple):
    recorded: int  # rows in this post
    total: int  # rows the buffer holds after it


class BufferService:
    def __init__(
        self,
        data_dir: str | Path,
        capacity: int,
        widths: dict[str, int] | None = None,
        reset: bool = False,
        seed: int | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ):
        self.store = SqliteStore(data_dir, capacity, reset=reset)
        try:
            stored = self.store.load()
            if widths and stored.widths and widths != stored.widths:
                raise ValueError(
                    f"--schema widths {widths} differ from the widths {stored.widths} stored "
                    f"in {self.store.path}; pass --reset to start an empty buffer"
                )
            if stored.widths or widths:
                where = f"the widths stored in {self.store.path}" if stored.widths else "--schema"
                limits.check(stored.widths or widths, capacity, where)
        except ValueError:
            self.store.close()
            raise
        self.capacity = int(capacity)
        self.limits = limits
        self.lock = threading.Lock()  # guards widths, buffer and rng
        self.widths: dict[str, int] | None = None
        self.buffer: ReplayBuffer | None = None
        if stored.widths or widths:
            self._fix_widths(stored.widths or widths)
            if len(stored.rows):
                self.buffer.add(self._split(stored.rows))
                self.buffer.total_added = stored.total
        self.rng = np.random.default_rng(seed)
        self.policies = dict(stored.policies)  # team -> (version, JSON payload)
        self.policy_lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue()
        self.writer = threading.Thread(target=self._write_loop, name="buffer-writer", daemon=True)
        self.writer.start()

    # -- records -----------------------------------------------------------------------
    def _fix_widths(self, widths: dict[str, int]) -> None:
        """Allocate the ring, then fix the widths (never one without the other)."""
        widths = {k: int(widths[k]) for k in FIELDS}
        spec = {k: ((w,), "float32") for k, w in widths.items()}
        buffer = ReplayBuffer(self.capacity, spec)
        self.widths, self.buffer = widths, buffer

    def _split(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """[n, W] packed rows -> {key: [n, width]}."""
        edges = np.cumsum([self.widths[k] for k in FIELDS])[:-1]
        return dict(zip(FIELDS, np.split(rows, edges, axis=1), strict=True))

    def check(self, obj: Any, numbers_only: bool = False) -> dict[str, np.ndarray]:
        """Validate a decoded record (see `parse_record`) against the widths, or before the
        first record against the limits; changes nothing (the writer fixes the widths)."""
        widths = self.widths
        arrays = parse_record(obj, widths, numbers_only, self.limits.max_row_width)
        if widths is None:
            self.limits.check({k: a.shape[1] for k, a in arrays.items()}, self.capacity)
        return arrays

    def submit(self, arrays: dict[str, np.ndarray]) -> Future:
        """Queue checked arrays for the writer; the future resolves to a RecordAck once durable."""
        fut: Future = Future()
        self.queue.put((arrays, fut))
        return fut

    def record(self, obj: Any) -> RecordAck:
        """check + submit + wait (for callers that are not on an event loop)."""
        return self.submit(self.check(obj)).result()

    def _write_loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            items = [item]
            while len(items) < MAX_GROUP:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:  # finish this group, then stop
                    self.queue.put(None)
                    break
                items.append(nxt)
            try:
                self._commit(items)
            except Exception as e:  # a bug, not a bad request: fail this group, keep serving
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(StorageFailed(f"record failed: {e!r}"))

    def _accept(self, items: list[tuple[dict[str, np.ndarray], Future]]) -> tuple[list, bool]:
        """The items whose widths fit (the first one fixes them when none are); the others'
        futures fail. Returns (accepted items, whether this call fixed the widths)."""
        accepted, fixed = [], False
        for arrays, fut in items:
            try:
                if self.widths is None:
                    try:
                        with self.lock:
                            self._fix_widths({k: a.shape[1] for k, a in arrays.items()})
                    except (MemoryError, OSError, ValueError, OverflowError) as e:
                        msg = f"cannot allocate the buffer ({e!r}); lower --capacity"
                        raise TooLarge("body", msg) from None
                    fixed = True
                check_widths(arrays, self.widths)
            except RecordError as e:
                fut.set_exception(e)
                continue
            accepted.append((arrays, fut))
        return accepted, fixed

    def _commit(self, items: list[tuple[dict[str, np.ndarray], Future]]) -> None:
        items, fixed = self._accept(items)
        if not items:
            return
        blocks = [np.concatenate([a[k] for k in FIELDS], axis=1) for a, _ in items]  # [n, W]
        try:
            self.store.append(blocks, self.widths)
        except Exception as e:  # disk full, file removed...: refuse, never half-acknowledge
            if fixed:  # nothing of the first record is stored: its widths are not fixed
                with self.lock:
                    self.widths = self.buffer = None
            for _, fut in items:
                fut.set_exception(StorageFailed(f"storage write failed: {e}"))
            return
        with self.lock:
            for arrays, _ in items:
                self.buffer.add(arrays)
            size = len(self.buffer)
        for arrays, fut in items:
            fut.set_result(RecordAck(len(arrays["State"]), size))

    def sample(self, size: int) -> dict[str, np.ndarray]:
        """`size` distinct rows drawn uniformly; Conflict when fewer are held."""
        with self.lock:
            held = len(self.buffer) if self.buffer is not None else 0
            if size > held:
                raise Conflict(f"asked for {size} rows, the buffer holds {held}")
            return self.buffer.sample_unique(size, self.rng)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            rows = len(self.buffer) if self.buffer is not None else 0
            total = self.buffer.total_added if self.buffer is not None else 0
            widths = dict(self.widths) if self.widths else None
        versions = {team: v for team, (v, _) in self.policies.items()}
        return {
            "rows": rows,
            "capacity": self.capacity,
            "total_recorded": total,
            "widths": widths,
            "policies": versions,
        }

    # -- policies ------------------------------------------------------------------------
    def get_policy(self, team: str) -> bytes:
        """The newest JSON payload published for `team`."""
        got = self.policies.get(team)
        if got is None:
            raise NotFound(f"no policy published for team '{team}' yet")
        return got[1]

    def put_policy(self, team: str, obj: Any) -> int:
        """Validate and durably store actor weights; versions must increase."""
        if not isinstance(obj, dict):
            raise RecordError("body", "expected a JSON object with keys version, tensors")
        unknown = [k for k in obj if k not in ("version", "team", "tensors")]
        if unknown:
            raise RecordError(str(unknown[0]), "unknown key; expected version, team, tensors")
        version = obj.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63:
            raise RecordError("version", "must be a non-negative integer")
        if obj.get("team", team) != team:
            raise RecordError("team", f"'{obj.get('team')}' does not match the URL's '{team}'")
        tensors = obj.get("tensors")
        if not isinstance(tensors, dict) or not all(isinstance(t, dict) for t in tensors.values()):
            raise RecordError("tensors", "expected an object {name: {shape, dtype, data}}")
        decode_tensors(tensors)  # validates every entry
        payload = orjson.dumps({"version": version, "team": team, "tensors": tensors})
        with self.policy_lock:
            current = self.policies.get(team)
            if current is not None and version <= current[0]:
                raise Conflict(f"version {version} is not newer than the stored {current[0]}")
            try:
                self.store.put_policy(team, version, payload)
            except Exception as e:  # disk full...: refused, the old policy stays
                raise StorageFailed(f"storage write failed: {e}") from None
            self.policies[team] = (version, payload)
        return version

    def close(self) -> None:
        """Finish queued writes, then close the database."""
        self.queue.put(None)
        self.writer.join(timeout=30)
        self.store.close()
