"""Crash-consistent file writes: a file replaced by `atomic_write` is, after a crash of the
process or the machine, either the whole old file or the whole new one.

The steps: write `<name>.tmp`, flush and fsync it, `os.replace` it over `<name>`, fsync the
directory (the rename lives in the directory; without this a machine crash can bring back
the old name). A crash between them leaves at most a stale `<name>.tmp`, which
`remove_stale_tmp` deletes when the directory is opened again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"


def tmp_path(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def fsync_file(path: str | Path) -> None:
    """Make a written file's bytes durable (e.g. one written by code we do not own)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make the entries of directory `path` (created, renamed, removed files) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write_fn: Callable[[IO[bytes]], Any]) -> None:
    """Replace `path` with what `write_fn(f)` writes to a binary file object `f`, e.g.
    `atomic_write(p, lambda f: torch.save(obj, f))`; durable when it returns."""
    path = Path(path)
    tmp = tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_stale_tmp(directory: str | Path, pattern: str = "*") -> list[Path]:
    """Delete the `<pattern>.tmp` files a crash in `atomic_write` left in `directory`; call
    it where nothing else is writing such files (a process that shares the directory
    passes a `pattern` of only its own files). Returns what was removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = sorted(p for p in directory.glob(pattern + TMP_SUFFIX) if p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        fsync_dir(directory)
    return stale
