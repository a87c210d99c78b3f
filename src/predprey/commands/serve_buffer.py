"""Serve the replay buffer over HTTP, compatible with the original service.

POST /record_data/ with {"State": [[...]], "Action": [[...]], "Reward": [[...]],
"Next State": [[...]]} (optional "Done") stores transitions durably (SQLite, fsync'd
before the 201); GET /batch_data/{size} samples them; GET/PUT /policy/{team} serve
actor weights. OpenAPI at /docs and /openapi.json. Binds 127.0.0.1 unless told
otherwise; any other address needs --token. A bad request is a 4xx naming the problem and
changes nothing; rows wider than --max-row-width, or a buffer that would need more than
--max-memory, are a 413 naming the flag. A --capacity below the rows already stored is
refused (nothing is dropped without --reset).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from predprey.commands import require_token_off_loopback
from predprey.config import ConfigError
from predprey.service.limits import MAX_MEMORY, MAX_ROW_WIDTH

UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
TOKEN_ENV = "PREDPREY_BUFFER_TOKEN"  # also BufferClient's default token


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data", default="buffer-data", help="directory of the database")
    p.add_argument("--capacity", type=int, default=1_000_000, help="rows kept (oldest evicted)")
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV) or None,
        help=f"bearer token required for writes (default: ${TOKEN_ENV})",
    )
    p.add_argument("--token-reads", action="store_true", help="require the token for reads too")
    p.add_argument("--reset", action="store_true", help="delete stored rows and policies first")
    p.add_argument(
        "--schema",
        default=None,
        help='row widths as JSON or a JSON file, e.g. {"State": 16, "Action": 4, '
        '"Reward": 2, "Next State": 16, "Done": 1}; default: the first record fixes them',
    )
    p.add_argument("--max-body", type=int, default=32 * 2**20, help="request body limit, bytes")
    p.add_argument("--max-batch", type=int, default=16384, help="largest batch_data size")
    p.add_argument(
        "--max-row-width",
        type=int,
        default=MAX_ROW_WIDTH,
        help=f"most values in a row of one key (default {MAX_ROW_WIDTH})",
    )
    p.add_argument(
        "--max-memory",
        type=memory_size,
        default=MAX_MEMORY,
        help="most memory the buffer may preallocate, capacity x 4 bytes x values per row; "
        "bytes or with K/M/G/T (default 8G)",
    )
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")


def memory_size(text: str) -> int:
    """'8G', '512M', '1000000' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 8G or 512M") from None
    if not 0 < value * UNITS[unit] < 2**63:
        raise argparse.ArgumentTypeError(f"'{text}': expected a positive size")
    return int(value * UNITS[unit])


def load_schema(text: str | None) -> dict[str, int] | None:
    from predprey.service.wire import parse_widths

    if text is None:
        return None
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--schema: '{text}' is neither JSON nor an existing file")
        source = path.read_text()
    try:
        spec = json.loads(source)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--schema: not valid JSON ({e})") from None
    if not isinstance(spec, dict):
        raise ConfigError("--schema: expected a JSON object {key: width}")
    try:
        return parse_widths(spec)
    except ValueError as e:
        raise ConfigError(f"--{e}") from None


def run(args: argparse.Namespace) -> int:
    require_token_off_loopback(args.host, args.token, "write to the buffer")
    if args.token_reads and not args.token:
        raise ConfigError("--token-reads needs --token")
    for name in ("capacity", "max_body", "max_batch", "max_row_width"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    widths = load_schema(args.schema)

    import uvicorn

    from predprey.service.app import create_app
    from predprey.service.core import BufferService, Limits

    limits = Limits(args.max_row_width, args.max_memory)
    try:
        service = BufferService(
            args.data, args.capacity, widths, reset=args.reset, seed=args.seed, limits=limits
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None
    app = create_app(service, args.token, args.token_reads, args.max_body, args.max_batch)
    stats = service.stats()
    print(
        f"predprey serve-buffer: http://{args.host}:{args.port} data={service.store.path} "
        f"rows={stats['rows']} capacity={args.capacity}",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        service.close()  # finish queued writes
    return 0
