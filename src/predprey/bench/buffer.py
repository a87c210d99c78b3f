"""HTTP replay-buffer ingest (transitions/s) and sample latency (ms), as JSON lines.

Starts `predprey serve-buffer` on a free loopback port in a temporary directory. Ingest:
`--clients` threads POST pre-encoded `--rows`-row JSON records for `--seconds` (each
answer is a durable 201). Sampling: `--samples` GET /batch_data/`--batch` requests as
JSON numbers (the original API), timed to the last byte received, then the same with
`Accept: application/octet-stream` (the packed float32 rows `train --buffer-url` uses);
decoding to numpy is timed separately. With a server it started, ingest also reports the
server's CPU seconds (Linux /proc): transitions per server CPU second do not depend on
what else runs on the machine. The clients use the standard library's
http.client (keep-alive, C-buffered reads) so that the numbers are the server's, not a
heavy client's (httpx costs ~9 ms more per 1.5 MB JSON batch on this machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=5.0, help="ingest duration")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rows", type=int, default=256, help="transitions per POST")
    p.add_argument("--samples", type=int, default=50, help="batch requests timed")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--state-width", type=int, default=64)
    p.add_argument("--action-width", type=int, default=8)
    p.add_argument("--reward-width", type=int, default=4)
    p.add_argument("--capacity", type=int, default=1_000_000)
    p.add_argument("--url", default=None, help="bench a running server instead of starting one")


def make_bodies(args: argparse.Namespace, count: int, seed: int) -> list[bytes]:
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    widths = {
        "State": args.state_width,
        "Action": args.action_width,
        "Reward": args.reward_width,
        "Next State": args.state_width,
        "Done": 1,
    }
    bodies = []
    for _ in range(count):
        rec = {k: rng.standard_normal((args.rows, w), dtype=np.float32) for k, w in widths.items()}
        rec["Done"] = (rng.random((args.rows, 1)) < 0.01).astype(np.float32)
        bodies.append(orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY))
    return bodies


def connect(url: str):
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30.0)


def request(conn, method: str, path: str, body: bytes | None = None, headers=None):
    """(status, headers, body) of one keep-alive request."""
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.headers, r.read()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` so far (Linux /proc), or None."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest(url: str, args: argparse.Namespace, server_pid: int | None = None) -> dict:
    bodies = [make_bodies(args, 4, seed) for seed in range(args.clients)]
    posted = [0] * args.clients
    failures: list[str] = []
    start = threading.Barrier(args.clients + 1)

    def client(i: int) -> None:
        headers = {"Content-Type": "application/json"}
        conn = connect(url)
        try:
            start.wait()
            stop_at, n = time.perf_counter() + args.seconds, 0
            while time.perf_counter() < stop_at and n < 1_000_000:
                status, _, text = request(conn, "POST", "/record_data/", bodies[i][n % 4], headers)
                if status != 201:
                    failures.append(f"{status} {text[:200]!r}")
                    return
                n += 1
            posted[i] = n
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    start.wait()
    t0, cpu0 = time.perf_counter(), cpu_seconds(server_pid)
    for t in threads:
        t.join(args.seconds + 60)
    wall, cpu1 = time.perf_counter() - t0, cpu_seconds(server_pid)
    if failures:
        raise RuntimeError(f"ingest failed: {failures[0]}")
    rows = sum(posted) * args.rows
    cpu = {}
    if cpu0 is not None and cpu1 is not None and cpu1 > cpu0:
        # what the server spent per row, whatever else shares the cores: a load-free measure
        cpu["server_cpu_seconds"] = round(cpu1 - cpu0, 3)
        cpu["transitions_per_server_cpu_s"] = round(rows / (cpu1 - cpu0), 1)
    return {
        "bench": "buffer_ingest",
        "clients": args.clients,
        "rows_per_post": args.rows,
        "floats_per_row": 2 * args.state_width + args.action_width + args.reward_width + 1,
        "posts": sum(posted),
        "seconds": round(wall, 3),
        "transitions_per_s": round(rows / wall, 1),
        **cpu,
    }


def sample(url: str, args: argparse.Namespace, packed: bool) -> dict:
    import numpy as np
    import orjson

    from predprey.service.wire import ROWS_MEDIA, WIDTHS_HEADER, decode_rows

    headers = {"Accept": ROWS_MEDIA} if packed else {}
    fetch, decode = [], []
    conn = connect(url)
    try:
        for _ in range(args.samples):
            t0 = time.perf_counter()
            status, got_headers, body = request(
                conn, "GET", f"/batch_data/{args.batch}", None, headers
            )
            t1 = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"batch_data answered {status}: {body[:200]!r}")
            if packed:
                arrays = decode_rows(body, got_headers[WIDTHS_HEADER])
            else:
                arrays = {k: np.asarray(v, dtype=np.float32) for k, v in orjson.loads(body).items()}
            t2 = time.perf_counter()
            assert len(arrays["State"]) == args.batch
            fetch.append(t1 - t0)
            decode.append(t2 - t1)
    finally:
        conn.close()
    return {
        "bench": "buffer_sample_packed" if packed else "buffer_sample",
        "batch": args.batch,
        "requests": args.samples,
        "median_ms": round(1e3 * statistics.median(fetch), 2),
        "p90_ms": round(1e3 * sorted(fetch)[int(0.9 * (len(fetch) - 1))], 2),
        "client_decode_median_ms": round(1e3 * statistics.median(decode), 2),
        "response_bytes": len(body),
    }


def measure(url: str, args: argparse.Namespace, server_pid: int | None = None) -> None:
    for result in (
        ingest(url, args, server_pid),
        sample(url, args, False),
        sample(url, args, True),
    ):
        print(json.dumps(result), flush=True)


def run(args: argparse.Namespace) -> int:
    from predprey.service.process import start_server

    if args.url:
        measure(args.url, args)
        return 0
    with tempfile.TemporaryDirectory(prefix="predprey-bench-buffer-") as data:
        server = start_server(data, "--capacity", str(args.capacity), "--seed", "0")
        try:
            measure(server.url, args, server.proc.pid)
        finally:
            server.stop()
    return 0
