"""Start `predprey serve-buffer` as a child process on a free loopback port (tests, bench)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, NamedTuple

import httpx


class ServerProcess(NamedTuple):
    proc: subprocess.Popen
    url: str
    log: IO[bytes]  # the server's stderr

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the server (SIGKILL to simulate a crash) and wait for it to exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: str | Path, *args: str, timeout: float = 60.0) -> ServerProcess:
    """Run the server with `--data data_dir` plus `args`; returns once /health answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "predprey.cli", "serve-buffer", "--port", str(port)]
    log = tempfile.TemporaryFile()  # noqa: SIM115 (ServerProcess.stop closes it)
    proc = subprocess.Popen([*cmd, "--data", str(data_dir), *args], stderr=log)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    err = server.stderr()
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"serve-buffer did not start on port {port}: {err[-2000:]}")
