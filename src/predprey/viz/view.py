"""Live viewer: a small standard-library web app over one run directory.

Routes (all GET):
  /                       the page (static/index.html, *.js, viewer.css; no CDN); its
                          query `?env=I&episode=K&source=S` chooses the episode shown
  /api/info               run name, chart families (chart_families.py), colours
  /api/episodes           recorded episodes: all of them per (source, env index), latest
  /api/episode?env=I[&episode=K|latest][&source=train|simulate]
                          one episode: positions [T+1, N, 2], alive, touches, sizes, the
                          agent count and the count the run was trained with
  /api/metrics?since=OFFSET
                          complete metrics lines after byte OFFSET, the next offset, and
                          the run's state: finished (RUN/finished.json) or live, and when
                          the last metrics line arrived

A malformed query is a 400 and an episode that was not recorded a 404, each with a
JSON {"error": message}; the page polls /api/metrics and /api/episodes to stay live.
With a token (needed off loopback) every request needs it: `Authorization: Bearer T`, or
`?token=T` in the address a browser opens, which answers with a cookie that carries it
for the page's own requests; 401 without it, 403 with a wrong one.
`ViewerApp` holds the routes as plain methods; the HTTP handler only dispatches.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
import sys
import threading
import traceback
from dataclasses import dataclass
from functools import cached_property
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

from predprey.rundir import RunDir, RunDirError, iter_new_metrics
from predprey.viz.chart_families import families_json
from predprey.viz.episode import PENALTY_EDGE, read_episode, select_episode, team_color

STATIC_DIR = Path(__file__).with_name("static")
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
MAX_ROWS = 5000  # metrics rows per response; the page asks again while `more` is true
SOURCE_RE = re.compile(r"^[a-z]+$")
TOKEN_COOKIE = "predprey_view_token_{port}"  # cookies are per host, not per port


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


def _int_param(query: dict[str, list[str]], name: str, default: int | None = None) -> int:
    values = query.get(name)
    if not values:
        if default is None:
            raise ApiError(400, f"missing query parameter '{name}'")
        return default
    try:
        v = int(values[-1])
    except ValueError:
        raise ApiError(
            400, f"'{name}' must be a non-negative integer, got {values[-1]!r}"
        ) from None
    if v < 0:
        raise ApiError(400, f"'{name}' must be a non-negative integer, got {v}")
    return v


def _finite(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None (browsers reject NaN in JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def trained_num_agents(run: RunDir) -> int | None:
    """Agents per env in the run's own config (None if it cannot be read)."""
    from predprey.config import load_config

    try:
        env = load_config(run.config_path).env.make(num_envs=1, seed=0)
        return int(sum(env.team_sizes.values()))
    except (OSError, ValueError, TypeError, KeyError):  # an old or foreign config:
        return None  # the page just leaves the comparison out


class ViewerApp:
    def __init__(self, run: RunDir):
        self.run = run

    def info(self) -> dict[str, Any]:
        return {
            "run": self.run.path.resolve().name,
            "path": str(self.run.path.resolve()),
            **families_json(),
            "x_key": "env_steps",
        }

    def episodes(self) -> dict[str, Any]:
        refs = self.run.episodes()
        latest: dict[str, dict[str, int]] = {}
        recorded: dict[str, dict[str, list[int]]] = {}
        for r in refs:  # sorted by (source, episode, env): the last one wins
            latest.setdefault(r.source, {})[str(r.env_index)] = r.episode
            recorded.setdefault(r.source, {}).setdefault(str(r.env_index), []).append(r.episode)
        return {
            "episodes": [
                {"source": r.source, "episode": r.episode, "env_index": r.env_index} for r in refs
            ],
            "latest": latest,
            "recorded": recorded,  # source -> env index -> episode numbers, ascending
        }

    @cached_property
    def trained_num_agents(self) -> int | None:
        return trained_num_agents(self.run)

    def episode(self, query: dict[str, list[str]]) -> dict[str, Any]:
        env = _int_param(query, "env")
        which = (query.get("episode") or ["latest"])[-1]
        episode: int | str = "latest" if which == "latest" else _int_param(query, "episode")
        source = (query.get("source") or [None])[-1]
        if source is not None and not SOURCE_RE.match(source):
            raise ApiError(400, f"'source' must be a lowercase word like 'train', got {source!r}")
        try:
            ep = read_episode(select_episode(self.run, env, episode, source))
        except RunDirError as e:
            raise ApiError(404, str(e)) from None
        return {
            "env_index": env,
            "episode": ep.ref.episode,
            "source": ep.ref.source,
            "steps": ep.steps,
            "teams": list(ep.teams),
            "team_sizes": list(ep.team_sizes),
            "team_colors": [team_color(t, k) for k, t in enumerate(ep.teams)],
            "team_index": ep.team_index.tolist(),
            "arena": list(ep.arena),
            "view": list(ep.view_limits()),
            "walls": ep.walls,
            "penalty_edge": PENALTY_EDGE if ep.penalty_zone else None,
            "pos": np.round(ep.pos.astype(float), 5).tolist(),  # [T+1, N, 2]
            "alive": ep.alive.tolist(),  # [T+1, N]
            "touched": ep.touched().tolist(),  # [T+1, N]
            "captured": ep.captured().tolist(),  # [T+1, N]
            "touches": ep.touches.astype(int).tolist(),  # [T]
            "agent_size": ep.agent_size.astype(float).tolist(),
            "landmark_pos": ep.landmark_pos.astype(float).tolist(),
            "landmark_size": ep.landmark_size.astype(float).tolist(),
            "landmark_label": ep.landmark_label,
            "meta": _finite(ep.meta),
            "num_agents": int(ep.pos.shape[1]),
            "trained_num_agents": self.trained_num_agents,
        }

    def metrics(self, query: dict[str, list[str]]) -> dict[str, Any]:
        since = _int_param(query, "since", default=0)
        path = self.run.metrics_path
        size = path.stat().st_size if path.is_file() else 0
        reset = since > size  # the file was replaced (new run in the same place)
        if reset:
            since = 0
        if since > 0:
            with open(path, "rb") as f:
                f.seek(since - 1)
                if f.read(1) != b"\n":
                    raise ApiError(400, f"'since' ({since}) is not the start of a metrics line")
        rows, offset = [], since
        for offset, row in iter_new_metrics(self.run, since):  # noqa: B007 (offset used after)
            rows.append(_finite(row))
            if len(rows) >= MAX_ROWS:
                break
        return {
            "offset": offset,
            "rows": rows,
            "reset": reset,
            "more": len(rows) >= MAX_ROWS,
            "run_state": self.run_state(),
        }

    def run_state(self) -> dict[str, Any]:
        """Finished (the trainer left RUN/finished.json) or live, and when the newest
        metrics line arrived (the file's modification time, unix seconds)."""
        try:
            stat = self.run.metrics_path.stat()
            last = stat.st_mtime if stat.st_size else None
        except OSError:  # no metrics yet
            last = None
        done = self.run.finished()
        at = (done or {}).get("finished_at")
        return {
            "finished": done is not None,
            "finished_at": at if isinstance(at, int | float) and math.isfinite(at) else None,
            "last_row_at": last,
        }

    def handle(self, url: str) -> Response:
        """One GET request -> Response. Never raises."""
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        routes = {
            "/api/info": lambda: self.info(),
            "/api/episodes": lambda: self.episodes(),
            "/api/episode": lambda: self.episode(query),
            "/api/metrics": lambda: self.metrics(query),
        }
        try:
            if parts.path in routes:
                return _json(200, routes[parts.path]())
            return _static(parts.path)
        except ApiError as e:
            return _json(e.status, {"error": str(e)})
        except Exception as e:  # a bug, not a bad request: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            return _json(500, {"error": f"internal error: {type(e).__name__}: {e}"})


def _json(status: int, body: Any) -> Response:
    return Response(status, "application/json", json.dumps(body, allow_nan=False).encode())


def _static(path: str) -> Response:
    name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
    file = STATIC_DIR / name
    if "/" in name or file.suffix not in STATIC_TYPES or not file.is_file():
        raise ApiError(404, f"no such page: {path}")
    return Response(200, f"{STATIC_TYPES[file.suffix]}; charset=utf-8", file.read_bytes())


def _presented_token(path: str, headers: Any, cookie_name: str) -> tuple[str | None, bool]:
    """(the token a request carries, whether it came in the address's `?token=`)."""
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer "), False
    query = parse_qs(urlsplit(path).query).get("token")
    if query:
        return query[-1], True
    cookie = SimpleCookie()
    with contextlib.suppress(CookieError):
        cookie.load(headers.get("Cookie", ""))
    return (cookie[cookie_name].value if cookie_name in cookie else None), False


def check_token(
    token: str | None, path: str, headers: Any, cookie_name: str
) -> tuple[Response | None, bool]:
    """(the refusal to send, or None; whether to set the token cookie)."""
    if token is None:
        return None, False
    given, in_query = _presented_token(path, headers, cookie_name)
    if given is None:
        hint = "open the address `predprey view` printed (it ends in ?token=...)"
        return _json(401, {"error": f"token required: {hint}"}), False
    if not secrets.compare_digest(given.encode(), token.encode()):
        return _json(403, {"error": "wrong token"}), False
    return None, in_query


class _Handler(BaseHTTPRequestHandler):
    app: ViewerApp  # set on the subclass made by `start_server`
    token: str | None = None

    def do_GET(self) -> None:
        cookie_name = TOKEN_COOKIE.format(port=self.server.server_address[1])
        refused, set_cookie = check_token(self.token, self.path, self.headers, cookie_name)
        r = refused or self.app.handle(self.path)
        self.send_response(r.status)
        if set_cookie:
            cookie = f"{cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(r.body)  # the page may have gone away mid-answer

    def _not_allowed(self) -> None:
        body = json.dumps({"error": f"method {self.command} not allowed; use GET"}).encode()
        self.send_response(405)
        self.send_header("Allow", "GET")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the page polls often
        pass


@dataclass
class ViewerServer:
    server: ThreadingHTTPServer
    thread: threading.Thread
    token: str | None = None

    @property
    def url(self) -> str:
        """The address to open (with `?token=` when the server has a token)."""
        host, port = self.server.server_address[:2]
        query = f"?{urlencode({'token': self.token})}" if self.token else ""
        return f"http://{host}:{port}/{query}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_server(
    run_path: str | Path, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> ViewerServer:
    """Serve the viewer for a run on a background thread (port 0: a free port); with a
    `token`, only to requests that carry it."""
    run = RunDir(run_path).require()
    handler = type("Handler", (_Handler,), {"app": ViewerApp(run), "token": token or None})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="predprey-view", daemon=True)
    thread.start()
    return ViewerServer(server, thread, token or None)
