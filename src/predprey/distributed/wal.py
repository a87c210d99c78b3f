"""Write-ahead log of replay-buffer inserts: an insert is acknowledged only once it is on disk.

Each record is `MAGIC | payload length (u64) | crc32 (u32) | payload`, the payload an
uncompressed `.npz` of the batch plus `__insert_id` and `__start` (the buffer's
`total_added` before the insert). `append` writes, flushes and fsyncs, so a record that was
acknowledged survives a crash of the process or the machine. A crash in the middle of
`append` leaves a torn last record; `replay` stops there and cuts it off (it was never
acknowledged). The log is emptied after each checkpoint, which holds the buffer itself.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

MAGIC = b"PPWAL1\n\0"
HEADER = struct.Struct("<8sQI")  # magic, payload bytes, crc32 of payload


class WalRecord(NamedTuple):
    insert_id: int  # the driver's sequence number of this insert
    start: int  # buffer.total_added before this insert
    batch: dict[str, np.ndarray]


class WriteAheadLog:
    def __init__(self, path: str | Path, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 (kept open for the log's lifetime)

    def append(self, insert_id: int, start: int, batch: Mapping[str, np.ndarray]) -> int:
        """Write one record durably; returns the bytes written."""
        buf = io.BytesIO()
        np.savez(buf, __insert_id=np.int64(insert_id), __start=np.int64(start), **batch)
        payload = buf.getvalue()
        self._file.write(HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        return HEADER.size + len(payload)

    def replay(self) -> Iterator[WalRecord]:
        """Every complete record, oldest first; a torn or corrupt tail is cut off the file."""
        good = 0
        with open(self.path, "rb") as f:
            while True:
                head = f.read(HEADER.size)
                if len(head) < HEADER.size:
                    break
                magic, size, crc = HEADER.unpack(head)
                payload = f.read(size) if magic == MAGIC else b""
                if magic != MAGIC or len(payload) < size or zlib.crc32(payload) != crc:
                    break
                good = f.tell()
                with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                yield WalRecord(int(arrays.pop("__insert_id")), int(arrays.pop("__start")), arrays)
        if good < self.path.stat().st_size:
            self._file.truncate(good)
            self._file.flush()
            os.fsync(self._file.fileno())

    def truncate(self) -> None:
        """Empty the log (call once a checkpoint holding these rows is safely written)."""
        self._file.truncate(0)
        self._file.flush()
        os.fsync(self._file.fileno())

    @property
    def size_bytes(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()
