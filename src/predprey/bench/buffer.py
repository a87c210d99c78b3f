"""HTTP replay-buffer ingest (transitions/s) and sample latency (ms), as JSON lines.

Starts `predprey serve-buffer` on a free loopback port in a temporary directory. Ingest:
`--clients` threads POST pre-encoded `--rows`-row JSON records for `--seconds` (each
answer is a durable 201). Sampling: `--samples` GET /batch_data/`--batch` requests,
timed to the last byte received; decoding to numpy is timed separately.
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


def ingest(url: str, args: argparse.Namespace) -> dict:
    import httpx

    bodies = [make_bodies(args, 4, seed) for seed in range(args.clients)]
    posted = [0] * args.clients
    failures: list[str] = []
    start = threading.Barrier(args.clients + 1)

    def client(i: int) -> None:
        headers = {"Content-Type": "application/json"}
        with httpx.Client(base_url=url, timeout=30.0) as http:
            start.wait()
            stop_at, n = time.perf_counter() + args.seconds, 0
            while time.perf_counter() < stop_at and n < 1_000_000:
                r = http.post("/record_data/", content=bodies[i][n % 4], headers=headers)
                if r.status_code != 201:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    return
                n += 1
            posted[i] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(args.seconds + 60)
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"ingest failed: {failures[0]}")
    rows = sum(posted) * args.rows
    return {
        "bench": "buffer_ingest",
        "clients": args.clients,
        "rows_per_post": args.rows,
        "floats_per_row": 2 * args.state_width + args.action_width + args.reward_width + 1,
        "posts": sum(posted),
        "seconds": round(wall, 3),
        "transitions_per_s": round(rows / wall, 1),
    }


def sample(url: str, args: argparse.Namespace) -> dict:
    import httpx
    import numpy as np
    import orjson

    fetch, decode = [], []
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for _ in range(args.samples):
            t0 = time.perf_counter()
            r = http.get(f"/batch_data/{args.batch}")
            t1 = time.perf_counter()
            if r.status_code != 200:
                raise RuntimeError(f"batch_data answered {r.status_code}: {r.text[:200]}")
            got = orjson.loads(r.content)
            arrays = {k: np.asarray(v, dtype=np.float32) for k, v in got.items()}
            t2 = time.perf_counter()
            assert len(arrays["State"]) == args.batch
            fetch.append(t1 - t0)
            decode.append(t2 - t1)
    return {
        "bench": "buffer_sample",
        "batch": args.batch,
        "requests": args.samples,
        "median_ms": round(1e3 * statistics.median(fetch), 2),
        "p90_ms": round(1e3 * sorted(fetch)[int(0.9 * (len(fetch) - 1))], 2),
        "client_decode_median_ms": round(1e3 * statistics.median(decode), 2),
        "response_bytes": len(r.content),
    }


def run(args: argparse.Namespace) -> int:
    from predprey.service.process import start_server

    if args.url:
        for result in (ingest(args.url, args), sample(args.url, args)):
            print(json.dumps(result), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="predprey-bench-buffer-") as data:
        server = start_server(data, "--capacity", str(args.capacity), "--seed", "0")
        try:
            for result in (ingest(server.url, args), sample(server.url, args)):
                print(json.dumps(result), flush=True)
        finally:
            server.stop()
    return 0
