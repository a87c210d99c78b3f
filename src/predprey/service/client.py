"""Python client of the HTTP replay buffer (for `run-env`, `train --buffer-url`, tests).

Connection failures and 502/503/504 answers are retried with exponential backoff,
bounded both in attempts and in seconds; any other error answer raises
`BufferServiceError` with the server's message. A retried POST is at-least-once: if
the first attempt was stored but its answer was lost, the rows are stored twice.
The token defaults to $PREDPREY_BUFFER_TOKEN (as for `serve-buffer --token`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx
import numpy as np
import orjson

from predprey.service.wire import (
    FIELDS,
    ROWS_MEDIA,
    WIDTHS_HEADER,
    decode_rows,
    decode_tensors,
    encode_tensors,
)

RETRY_STATUS = (502, 503, 504)


class BufferServiceError(RuntimeError):
    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class RecordAck(NamedTuple):
    recorded: int
    total: int


class Policy(NamedTuple):
    version: int
    tensors: dict[str, np.ndarray]  # state_dict-like: name -> array


class BufferClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        retry_seconds: float = 30.0,
    ):
        token = token or os.environ.get("PREDPREY_BUFFER_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.retries, self.retry_seconds = retries, retry_seconds

    def __enter__(self) -> BufferClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _request(
        self, method: str, path: str, body: bytes | None = None, accept: str | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if accept:
            headers["Accept"] = accept
        deadline = time.monotonic() + self.retry_seconds
        for attempt in range(self.retries + 1):
            last = attempt == self.retries or time.monotonic() >= deadline
            try:
                r = self.http.request(method, path, content=body, headers=headers)
            except httpx.TransportError:
                if last:
                    raise
            else:
                if r.status_code not in RETRY_STATUS or last:
                    if r.status_code >= 400:
                        raise BufferServiceError(r.status_code, _detail(r))
                    return r
            time.sleep(min(0.05 * 2**attempt, 2.0, max(0.0, deadline - time.monotonic())))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def post_transitions(self, batch: Mapping[str, Any]) -> RecordAck:
        """POST rows {"State": [n, ws], "Action", "Reward", "Next State"(, "Done")}."""
        body = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in batch.items()}
        r = self._request(
            "POST", "/record_data/", orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        )
        return RecordAck(**r.json())

    def sample(self, size: int, packed: bool = True) -> dict[str, np.ndarray]:
        """`size` distinct rows drawn uniformly: {key: float32 [size, width]}; `packed`
        fetches them as binary float32 rows (exact, fast), else as JSON numbers."""
        path = f"/batch_data/{int(size)}"
        if packed:
            r = self._request("GET", path, accept=ROWS_MEDIA)
            return decode_rows(r.content, r.headers[WIDTHS_HEADER])
        got = orjson.loads(self._request("GET", path).content)
        return {k: np.asarray(got[k], dtype=np.float32) for k in FIELDS}

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/stats").json()

    def policy_versions(self) -> dict[str, int]:
        """Newest published version per team (cheap: polls /stats, not the weights)."""
        return self.stats()["policies"]

    def get_policy(self, team: str) -> Policy | None:
        """Newest weights of `team`, or None when none were published yet."""
        try:
            got = orjson.loads(self._request("GET", f"/policy/{team}").content)
        except BufferServiceError as e:
            if e.status == 404:
                return None
            raise
        return Policy(int(got["version"]), decode_tensors(got["tensors"]))

    def put_policy(self, team: str, version: int, weights: Mapping[str, Any]) -> int:
        """Publish weights (numpy arrays or torch tensors by name); versions must increase."""
        body = {"version": int(version), "team": team, "tensors": encode_tensors(weights)}
        return int(self._request("PUT", f"/policy/{team}", orjson.dumps(body)).json()["version"])

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll /health until it answers (bounded by `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/health", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"buffer service at {self.http.base_url} not ready in {timeout}s"
                )
            time.sleep(0.05)


def _detail(r: httpx.Response) -> str:
    try:
        got = r.json()
    except ValueError:
        return r.text
    return str(got["detail"]) if isinstance(got, dict) and "detail" in got else r.text
