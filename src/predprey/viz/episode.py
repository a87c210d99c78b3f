"""Recorded episodes as the viewers see them: pick one by env index, load it, derive
what is drawn (who touches whom, who was just captured) once, for both the GIF/MP4
animation and the browser viewer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from predprey.rundir import EpisodeRef, RunDir, RunDirError, load_episode

TEAM_COLORS = {"predator": "#d7301f", "prey": "#2b8cbe"}
OTHER_COLORS = ("#6a3d9a", "#33a02c", "#ff7f00", "#b15928")
TEAM_MARKERS = {"predator": "^", "prey": "o"}
MPE_ARENA = (-1.0, 1.0, -1.0, 1.0)
PENALTY_EDGE = 0.9  # mpe simple_tag: prey are penalised where |x| or |y| > 0.9


def team_color(team: str, k: int) -> str:
    return TEAM_COLORS.get(team, OTHER_COLORS[k % len(OTHER_COLORS)])


@dataclass(frozen=True)
class Episode:
    ref: EpisodeRef
    pos: np.ndarray  # [T+1, N, 2] float32
    alive: np.ndarray  # [T+1, N] bool
    landmark_pos: np.ndarray  # [L, 2]
    agent_size: np.ndarray  # [N]
    landmark_size: np.ndarray  # [L]
    touches: np.ndarray  # [T] int: touching predator-prey pairs at each step
    teams: tuple[str, ...]
    team_sizes: tuple[int, ...]
    arena: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax
    walls: bool  # True: a walled box (seed preset); False: open plane (mpe)
    penalty_zone: bool  # draw mpe's prey penalty band at |x|, |y| > 0.9
    meta: dict[str, Any]

    @property
    def landmark_label(self) -> str:
        return "obstacle" if self.meta.get("scenario", "tag") == "tag" else "landmark"

    @property
    def steps(self) -> int:
        return self.pos.shape[0] - 1

    @property
    def team_index(self) -> np.ndarray:
        """[N] int: the team of each agent (agents are ordered team by team)."""
        return np.repeat(np.arange(len(self.teams)), self.team_sizes)

    def touched(self) -> np.ndarray:
        """[T+1, N] bool: prey (agents not in the first team) in contact with a predator
        (bodies overlap). When the recorded touch count says a step touched or captured but
        no bodies overlap (the seed preset captures within a radius larger than the
        bodies), the prey nearest to a predator is marked."""
        first = self.team_index == 0  # [N] predators
        d = np.linalg.norm(self.pos[:, :, None, :] - self.pos[:, None, :, :], axis=-1)  # [T+1,N,N]
        live = self.alive[:, :, None] & self.alive[:, None, :]
        live[1:] |= self.alive[:-1, :, None] & self.alive[:-1, None, :]  # caught this step
        d = np.where(live & first[:, None] & ~first[None, :], d, np.inf)  # predator rows
        out = (d < self.agent_size[:, None] + self.agent_size[None, :]).any(axis=1)
        if (~first).any():
            nearest = d.min(axis=1)[:, ~first].argmin(axis=1)  # [T+1] prey column
            unseen = np.r_[False, self.touches > 0] & ~out.any(axis=1)  # [T+1]
            out[np.flatnonzero(unseen), np.flatnonzero(~first)[nearest[unseen]]] = True
        return out

    def captured(self) -> np.ndarray:
        """[T+1, N] bool: agents alive at frame t-1 but not at frame t."""
        out = np.zeros_like(self.alive)
        out[1:] = self.alive[:-1] & ~self.alive[1:]
        return out

    def view_limits(self, margin: float = 0.05) -> tuple[float, float, float, float]:
        """A square window holding the arena and every alive agent of the episode."""
        xmin, xmax, ymin, ymax = self.arena
        p = self.pos[self.alive]  # [k, 2]
        if len(p) and not self.walls:
            xmin, xmax = min(xmin, float(p[:, 0].min())), max(xmax, float(p[:, 0].max()))
            ymin, ymax = min(ymin, float(p[:, 1].min())), max(ymax, float(p[:, 1].max()))
        half = max(xmax - xmin, ymax - ymin) * (0.5 + margin)
        cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
        return cx - half, cx + half, cy - half, cy + half


def select_episode(
    run: RunDir, env_index: int, episode: int | str = "latest", source: str | None = None
) -> EpisodeRef:
    """The recorded episode of `env_index` (latest or number K). `source=None`: training
    episodes if any were recorded, else `simulate` ones. Errors list what was recorded."""
    refs = run.episodes()
    if not refs:
        raise RunDirError(f"no episodes recorded yet in {run.episodes_dir}")
    sources = sorted({r.source for r in refs})
    if source is None:
        source = "train" if "train" in sources else sources[0]
    refs = [r for r in refs if r.source == source]
    if not refs:
        raise RunDirError(f"no '{source}' episodes in {run.path}; recorded sources: {sources}")
    indices = sorted({r.env_index for r in refs})
    mine = [r for r in refs if r.env_index == env_index]
    if not mine:
        raise RunDirError(
            f"env index {env_index} was not recorded in {run.path} ({source} episodes); "
            f"recorded env indices: {', '.join(map(str, indices))}"
        )
    if episode == "latest":
        return mine[-1]
    found = [r for r in mine if r.episode == int(episode)]
    if not found:
        eps = [r.episode for r in mine]
        shown = ", ".join(map(str, eps[-20:])) + (" ..." if len(eps) > 20 else "")
        raise RunDirError(
            f"episode {episode} of env index {env_index} was not recorded ({source}); "
            f"recorded episodes: {shown}"
        )
    return found[0]


def read_episode(ref: EpisodeRef) -> Episode:
    """Load and check one episode file (format: `predprey.rundir` docstring)."""
    try:
        z = load_episode(ref.path)
    except (OSError, ValueError, KeyError) as e:
        raise RunDirError(f"cannot read episode file {ref.path}: {e}") from e
    missing = [k for k in ("pos", "landmark_pos", "agent_size", "landmark_size") if k not in z]
    if missing:
        raise RunDirError(f"episode file {ref.path} lacks {missing}")
    meta = z["meta"]
    if meta.get("positions") is False:  # a foreign world without a positions() hook
        raise RunDirError(
            f"episode file {ref.path}: this world ({meta.get('world', meta.get('scenario'))}) "
            "exposes no positions to draw; give its env a positions() method "
            "(docs/your-own-world.md). plot and the metrics work without them"
        )
    pos = np.asarray(z["pos"], np.float32)  # [T+1, N, 2]
    if pos.ndim != 3 or pos.shape[2] != 2 or pos.shape[0] < 1:
        raise RunDirError(f"episode file {ref.path}: pos has shape {pos.shape}, want [T+1, N, 2]")
    n = pos.shape[1]
    alive = np.asarray(z.get("alive", np.ones(pos.shape[:2], bool)), bool)  # [T+1, N]
    touches = np.asarray(z.get("touches", np.zeros(pos.shape[0] - 1, np.int64)))  # [T]
    teams = tuple(meta.get("teams") or ("predator", "prey"))
    sizes = meta.get("team_sizes")
    sizes = tuple(int(s) for s in (sizes if sizes is not None else z.get("team_sizes", [n])))
    if sum(sizes) != n or len(sizes) != len(teams) or alive.shape != pos.shape[:2]:
        raise RunDirError(
            f"episode file {ref.path}: teams {teams} x sizes {sizes} do not match {n} agents"
        )
    arena = tuple(float(a) for a in meta.get("arena", MPE_ARENA))
    # Walls: told by meta "walls" or "preset" when the writer gave them; else the mpe
    # arena [-1, 1]^2 is the open plane and any other arena is the seed preset's box.
    preset = meta.get("preset")
    guess = preset == "seed" if preset else arena != MPE_ARENA
    walls = bool(meta.get("walls", guess))
    return Episode(
        ref=ref,
        pos=pos,
        alive=alive,
        landmark_pos=np.asarray(z["landmark_pos"], np.float32).reshape(-1, 2),
        agent_size=np.asarray(z["agent_size"], np.float32).reshape(n),
        landmark_size=np.asarray(z["landmark_size"], np.float32).reshape(-1),
        touches=touches,
        teams=teams,
        team_sizes=sizes,
        arena=arena,  # type: ignore[arg-type]
        walls=walls,
        penalty_zone=not walls and meta.get("scenario", "tag") == "tag",
        meta=meta,
    )
