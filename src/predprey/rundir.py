"""The run directory: the one interface between training and everything that reads it.

Layout of `runs/NAME/`:
  config.yaml            resolved config (every default written out)
  metrics.jsonl          one JSON object per line, appended while training
  tb/                    TensorBoard events
  checkpoints/           latest.pt (+ buffer.npz), written atomically
  episodes/              recorded trajectories, one .npz per (episode, env index)
  finished.json          written when training ends normally (removed when it starts or
                         resumes): {"finished_at": unix time, "time": run seconds}

Metrics lines always carry `env_steps`, `updates` and `time` (seconds since the run
started, continued across resumes); other keys are flat strings with `/`, e.g.
`loss/critic/predator`, `return/prey`, `eval/touches_per_episode`, `perf/env_steps_per_s`.
A population logs each member's curves under `member/K/` (`member/2/return/predator`) and
its events as rows with a string `event` and `detail` ({"env_steps": ..., "event":
"selection", "detail": "member 2 <- member 0"}); `predprey view` charts both.

An episode file holds:
  pos        [T+1, N, 2] float32  agent positions, predators first (state before step 0 ... after T)
  alive      [T+1, N]    bool     False for prey that were captured and left
  landmark_pos [L, 2]   float32
  agent_size [N], landmark_size [L]  float32 (world units)
  team_sizes  [n_teams] int, teams: JSON list of team names (in `meta`)
  touches    [T]         int      touching predator-prey pairs at each step
  meta       JSON string: {"scenario", "teams", "team_sizes", "arena", "env_index",
                           "episode", "source", "env_steps"}; arena = [xmin, xmax, ymin, ymax]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EPISODE_RE = re.compile(r"^(?P<source>[a-z]+)_(?P<episode>\d+)_env(?P<env>\d+)\.npz$")


class RunDirError(FileNotFoundError):
    """Missing or malformed run directory; the message says what is wrong."""


@dataclass(frozen=True)
class EpisodeRef:
    path: Path
    source: str  # "train" or "simulate"
    episode: int
    env_index: int


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- paths ---------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def episodes_dir(self) -> Path:
        return self.path / "episodes"

    @property
    def tb_dir(self) -> Path:
        return self.path / "tb"

    @property
    def finished_path(self) -> Path:
        return self.path / "finished.json"

    def create(self) -> RunDir:
        for d in (self.path, self.checkpoint_dir, self.episodes_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def require(self) -> RunDir:
        """Raise a clear error unless this looks like a run directory."""
        if not self.path.is_dir():
            raise RunDirError(f"run directory not found: {self.path}")
        if not self.config_path.is_file():
            raise RunDirError(f"{self.path} is not a predprey run (no config.yaml)")
        return self

    # -- metrics -------------------------------------------------------------
    def append_metrics(self, row: Mapping[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(metrics_line(row))

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete metrics lines; a torn last line (run still writing) is skipped."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        with open(self.metrics_path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return rows

    # -- finished marker -----------------------------------------------------
    def mark_finished(self, **info: Any) -> None:
        """Say that training ended normally (viewers show "finished", not "live")."""
        tmp = self.finished_path.with_name(self.finished_path.name + ".tmp")
        tmp.write_text(json.dumps({k: _jsonable(v) for k, v in info.items()}) + "\n")
        os.replace(tmp, self.finished_path)

    def clear_finished(self) -> None:
        self.finished_path.unlink(missing_ok=True)

    def finished(self) -> dict[str, Any] | None:
        """The finished marker's contents, or None while training runs (or crashed)."""
        try:
            info = json.loads(self.finished_path.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    # -- episodes ------------------------------------------------------------
    def write_episode(self, source: str, episode: int, env_index: int, **arrays: Any) -> Path:
        """Write one trajectory atomically. `arrays` as documented in the module docstring;
        `meta` may be a dict (it is stored as a JSON string)."""
        self.episodes_dir.mkdir(parents=True, exist_ok=True)
        meta = dict(arrays.pop("meta", {}))
        meta.update(source=source, episode=int(episode), env_index=int(env_index))
        path = self.episodes_dir / f"{source}_{episode:07d}_env{env_index:04d}.npz"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
        return path

    def episodes(self, source: str | None = None) -> list[EpisodeRef]:
        refs = []
        if self.episodes_dir.is_dir():
            for p in self.episodes_dir.iterdir():
                m = EPISODE_RE.match(p.name)
                if m and (source is None or m["source"] == source):
                    refs.append(EpisodeRef(p, m["source"], int(m["episode"]), int(m["env"])))
        return sorted(refs, key=lambda r: (r.source, r.episode, r.env_index))

    def recorded_env_indices(self) -> list[int]:
        return sorted({r.env_index for r in self.episodes()})


def load_episode(path: str | Path) -> dict[str, Any]:
    """Load an episode file: arrays plus `meta` decoded to a dict."""
    with np.load(Path(path), allow_pickle=False) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files}
    out["meta"] = json.loads(str(out["meta"]))
    return out


def iter_new_metrics(run: RunDir, offset: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Complete metrics lines starting at byte `offset`: yields (next_offset, row)."""
    if not run.metrics_path.is_file():
        return
    with open(run.metrics_path, "rb") as f:
        f.seek(offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                return
            offset += len(raw)
            try:
                yield offset, json.loads(raw)
            except json.JSONDecodeError:
                continue


def metrics_line(row: Mapping[str, Any]) -> str:
    """One metrics.jsonl line for `row`, newline included."""
    return json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n"


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
