"""`predprey serve-buffer` as a real process on loopback: the Python client, concurrent
writers, kill -9 durability, CLI refusals and the benchmark command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from predprey.cli import main
from predprey.service.client import BufferClient, BufferServiceError
from predprey.service.process import free_port, start_server


def rows(ids: list[int]) -> dict[str, np.ndarray]:
    """Transitions whose Reward column holds the given unique ids."""
    r = np.asarray(ids, dtype=np.float32)[:, None]  # [n, 1]
    return {
        "State": np.tile(r, (1, 4)),
        "Action": np.zeros((len(ids), 2), np.float32),
        "Reward": r,
        "Next State": np.tile(r, (1, 4)) + 1,
        "Done": np.zeros((len(ids), 1), np.float32),
    }


def stored_ids(url: str) -> list[int]:
    with BufferClient(url) as c:
        n = c.stats()["rows"]
        return sorted(c.sample(n)["Reward"][:, 0].astype(int).tolist()) if n else []


@pytest.fixture
def server(tmp_path):
    servers = []

    def start(*args: str):
        s = start_server(tmp_path / "data", "--max-batch", "100000", *args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop(signal.SIGKILL)


def test_client_roundtrip_and_policy(server):
    s = server("--token", "tok")
    with BufferClient(s.url, token="tok") as c:
        ack = c.post_transitions(rows([1, 2, 3]))
        assert (ack.recorded, ack.total) == (3, 3)
        batch = c.sample(3)
        assert batch["State"].dtype == np.float32 and batch["State"].shape == (3, 4)
        assert sorted(batch["Reward"][:, 0].tolist()) == [1, 2, 3]
        with pytest.raises(BufferServiceError) as e:
            c.sample(4)
        assert e.value.status == 409
        assert c.get_policy("predator") is None
        weights = {"net.0.weight": np.random.default_rng(0).random((2, 4), np.float32)}
        weights["net.0.bias"] = np.zeros(2, np.float32)
        assert c.put_policy("predator", 1, weights) == 1
        assert c.policy_versions() == {"predator": 1}
        policy = c.get_policy("predator")
        assert policy.version == 1 and set(policy.tensors) == set(weights)
        assert all(np.array_equal(policy.tensors[k], v) for k, v in weights.items())
        with pytest.raises(BufferServiceError) as e:
            c.put_policy("predator", 1, weights)
        assert e.value.status == 409
    with BufferClient(s.url) as anonymous, pytest.raises(BufferServiceError) as e:
        anonymous.post_transitions(rows([4]))
    assert e.value.status == 401


def test_body_limit_on_a_live_server(server):
    s = server("--max-body", "5000")
    big = json.dumps({k: v.tolist() for k, v in rows(list(range(200))).items()}).encode()
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=s.url, timeout=10.0) as http:
        assert http.post("/record_data/", content=big, headers=headers).status_code == 413

        def stream():  # chunked, no Content-Length
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        r = http.post("/record_data/", content=stream(), headers=headers)
        assert r.status_code == 413, r.text
    with BufferClient(s.url) as c:
        assert c.post_transitions(rows([1, 2])).total == 2  # the server is fine afterwards


def test_oversized_first_record_on_a_live_server_costs_nothing(server):
    """Issue 37: a very wide first record was a 500 and then every record was refused or
    hung. Now a 413 naming the flag, twice, and the next normal record is stored."""
    s = server("--max-row-width", "1000", "--max-memory", "64M")
    wide = {**{k: v.tolist() for k, v in rows([0]).items()}, "State": [[0.0] * 5000]}
    with httpx.Client(base_url=s.url, timeout=30.0) as http:
        for _ in range(2):
            r = http.post("/record_data/", json=wide)
            assert r.status_code == 413 and "--max-row-width" in r.json()["detail"], r.text
        wide["State"] = [[0.0] * 1000]  # within the width limit, but not the memory one
        r = http.post("/record_data/", json={**wide, "Next State": wide["State"]})
        assert r.status_code == 413 and "--max-memory" in r.json()["detail"], r.text
    with BufferClient(s.url) as c:
        assert c.post_transitions(rows([1, 2])).total == 2
        assert c.stats()["widths"]["State"] == 4


def test_client_retries_are_bounded(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.monotonic()
    with BufferClient(url, retries=3, retry_seconds=2.0) as c, pytest.raises(httpx.ConnectError):
        c.stats()
    assert time.monotonic() - t0 < 5.0


def hammer(url: str, clients: int, posts: int, rows_per_post: int = 2) -> list[int]:
    """`clients` threads each POST `posts` records of unique ids; returns acknowledged ids."""
    acked: list[list[int]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def work(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30.0) as http:
            for p in range(posts):
                first = (i * posts + p) * rows_per_post
                ids = list(range(first, first + rows_per_post))
                body = {k: v.tolist() for k, v in rows(ids).items()}
                r = http.post("/record_data/", json=body)
                if r.status_code != 201:
                    errors.append(r.text)
                    return
                acked[i].extend(ids)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    return sorted(x for ids in acked for x in ids)


def test_32_concurrent_clients_lose_nothing(server):
    s = server()
    acked = hammer(s.url, clients=32, posts=100)
    assert len(acked) == 32 * 100 * 2
    assert stored_ids(s.url) == acked


@pytest.mark.slow
def test_32_concurrent_clients_x_1000_posts_lose_nothing(server):
    s = server("--capacity", "100000")
    acked = hammer(s.url, clients=32, posts=1000, rows_per_post=1)
    assert len(acked) == 32_000
    assert stored_ids(s.url) == acked


def test_kill_9_right_after_acknowledgements_keeps_every_acked_row(server, tmp_path):
    s = server()
    acked: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(i: int) -> None:
        with httpx.Client(base_url=s.url, timeout=10.0) as http:
            for p in range(10_000):
                if stop.is_set():
                    return
                ids = [i * 1_000_000 + p * 3 + j for j in range(3)]
                body = {k: v.tolist() for k, v in rows(ids).items()}
                try:
                    r = http.post("/record_data/", json=body)
                except httpx.TransportError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 201:
                    with lock:
                        acked.extend(ids)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 600 and time.monotonic() < deadline:
        time.sleep(0.005)
    s.proc.send_signal(signal.SIGKILL)  # while writers are still posting
    s.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 600
    restarted = server()
    stored = set(stored_ids(restarted.url))
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {sorted(missing)[:5]}"


def test_non_loopback_bind_without_token_is_refused(capsys):
    assert main(["serve-buffer", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--token" in err and "0.0.0.0" in err


def test_bad_schema_option_is_a_clear_error(capsys, tmp_path):
    assert main(["serve-buffer", "--data", str(tmp_path), "--schema", '{"State": 3}']) == 2
    assert "missing width" in capsys.readouterr().err


def test_bench_buffer_prints_json_lines():
    cmd = [sys.executable, "-m", "predprey.cli", "bench", "buffer", "--seconds", "0.5"]
    cmd += ["--samples", "3", "--batch", "16", "--rows", "8", "--capacity", "10000"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["bench"] for x in lines] == ["buffer_ingest", "buffer_sample", "buffer_sample_packed"]
    assert lines[0]["transitions_per_s"] > 0 and lines[1]["median_ms"] > 0
    assert lines[2]["response_bytes"] == 16 * (2 * 64 + 8 + 4 + 1) * 4  # float32 rows
