"""Scatter animation of one recorded environment to GIF or MP4.

Every frame is drawn by updating a fixed set of matplotlib artists on an Agg canvas
and copying the pixels out; one frame per recorded state (T+1 frames for T steps).
Bodies are circles at their true radius (world units); a marker at each centre keeps
small agents visible. Touches flash a gold ring around the touched prey; a captured
prey disappears and leaves a grey cross.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predprey.rundir import EpisodeRef, RunDir
from predprey.viz.episode import (
    PENALTY_EDGE,
    TEAM_MARKERS,
    Episode,
    read_episode,
    select_episode,
    team_color,
)

FORMATS = (".gif", ".mp4")
FIG_PX = (640, 720)  # width, height: multiples of 16 so MP4 needs no resize
TRAIL = 8  # frames of trail behind each agent
FLASH = 3  # frames a touch ring stays visible (fading)
RING = "#f0a500"


@dataclass(frozen=True)
class AnimationResult:
    path: Path
    frames: int
    episode: EpisodeRef


def flash_strength(events: np.ndarray, frames: int = FLASH) -> np.ndarray:
    """[T+1, N] bool events -> [T+1, N] float in [0, 1]: 1 at the event, fading after."""
    out = np.zeros(events.shape, float)
    for k in range(frames):
        shifted = np.zeros_like(out)
        shifted[k:] = events[: len(events) - k]
        out = np.maximum(out, shifted * (1 - k / frames))
    return out


class EpisodeRenderer:
    """Draws frame t of an episode to an RGB array [H, W, 3] uint8."""

    def __init__(self, ep: Episode, title: str):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Circle, Patch, Rectangle

        self.ep = ep
        w, h = FIG_PX
        self.fig = Figure(figsize=(w / 100, h / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.fig.add_axes((0.11, 0.16, 0.85, 0.73))
        x0, x1, y0, y1 = ep.view_limits()
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xlabel("x (world units)")
        ax.set_ylabel("y (world units)")
        self.fig.suptitle(title, fontsize=10, y=0.99, va="top")
        self.ax = ax
        legend = self._draw_arena(ax, Rectangle, Patch, Line2D)
        for p, r in zip(ep.landmark_pos, ep.landmark_size, strict=True):
            ax.add_patch(Circle(tuple(p), float(r), color="#8c8c8c", alpha=0.8, zorder=2))
        if len(ep.landmark_size):
            legend.append(Patch(color="#8c8c8c", label=f"{ep.landmark_label} (true size)"))

        team = ep.team_index  # [N]
        self.colors = [team_color(ep.teams[k], k) for k in team]
        self.bodies = [
            ax.add_patch(Circle((0, 0), float(r), fc=c, ec=c, alpha=0.35, lw=1, zorder=4))
            for r, c in zip(ep.agent_size, self.colors, strict=True)
        ]
        self.trails, self.markers = [], []
        for k, name in enumerate(ep.teams):
            c = team_color(name, k)
            self.trails.append(ax.add_collection(LineCollection([], colors=c, lw=1.5, zorder=3)))
            marker = TEAM_MARKERS.get(name, "s")
            (m,) = ax.plot([], [], marker, color=c, mec="black", mew=0.6, ms=8, zorder=5)
            self.markers.append(m)
            label = f"{name} ({ep.team_sizes[k]})"
            legend.append(Line2D([], [], ls="", marker=marker, color=c, mec="black", label=label))
        ring_r = np.maximum(ep.agent_size * 2.2, 0.025 * (x1 - x0))  # [N]
        self.rings = [
            ax.add_patch(Circle((0, 0), float(r), fill=False, ec=RING, lw=2.5, zorder=6))
            for r in ring_r
        ]
        (self.crosses,) = ax.plot([], [], "x", color="#555555", ms=9, mew=2, zorder=3)
        self.flash = np.maximum(flash_strength(ep.touched()), flash_strength(ep.captured()))
        self.captured_at = ep.captured()  # [T+1, N]
        if len(ep.teams) > 1:
            legend.append(Line2D([], [], ls="", marker="o", mfc="none", mec=RING, mew=2.5,
                                 ms=12, label="touch or capture"))  # fmt: skip
        if (~ep.alive).any():
            legend.append(Line2D([], [], ls="", marker="x", color="#555555", mew=2,
                                 label="prey captured (removed)"))  # fmt: skip
        self.fig.legend(handles=legend, loc="lower center", ncols=3, fontsize=8, frameon=False)
        # the counter sits above the plot so it never hides an agent
        self.text = self.fig.text(0.11, 0.905, "", va="bottom", ha="left", fontsize=9,
                                  family="monospace")  # fmt: skip
        # Blitting: draw the static picture once, then only the moving artists per frame.
        self.dynamic = [*self.trails, self.crosses, *self.bodies, *self.markers, *self.rings,
                        self.text]  # fmt: skip
        for a in self.dynamic:
            a.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def _draw_arena(self, ax, Rectangle, Patch, Line2D) -> list:
        ep = self.ep
        xmin, xmax, ymin, ymax = ep.arena
        box = Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False, zorder=1)
        if ep.walls:
            box.set(ec="black", lw=3)
            ax.add_patch(box)
            return [Line2D([], [], color="black", lw=3, label="walls")]
        box.set(ec="#444444", lw=1, ls="--")
        ax.add_patch(box)
        out = [Line2D([], [], color="#444444", lw=1, ls="--", label="arena (no walls)")]
        if ep.penalty_zone:  # everything outside [-0.9, 0.9]^2, as four bands
            e, big = PENALTY_EDGE, 1e3
            for xy, w, h in (((-big, -big), 2 * big, big - e), ((-big, e), 2 * big, big - e),
                             ((-big, -e), big - e, 2 * e), ((e, -e), big - e, 2 * e)):  # fmt: skip
                ax.add_patch(Rectangle(xy, w, h, fc="#fdd49e", ec="none", alpha=0.5, zorder=0))
            out.append(Patch(fc="#fdd49e", alpha=0.5, label="prey penalty zone (|x|,|y|>0.9)"))
        return out

    def frame(self, t: int) -> np.ndarray:
        ep = self.ep
        pos, alive = ep.pos[t], ep.alive[t]  # [N, 2], [N]
        for n, body in enumerate(self.bodies):
            body.set_center(tuple(pos[n]))
            body.set_visible(bool(alive[n]))
            self.rings[n].set_center(tuple(pos[n]))
            self.rings[n].set_visible(self.flash[t, n] > 0)
            self.rings[n].set_alpha(self.flash[t, n])
        team = ep.team_index
        lo = max(0, t - TRAIL)
        for k, (trail, marker) in enumerate(zip(self.trails, self.markers, strict=True)):
            mine = np.flatnonzero((team == k) & alive)
            marker.set_data(pos[mine, 0], pos[mine, 1])
            seg = np.stack([ep.pos[lo:t, mine], ep.pos[lo + 1 : t + 1, mine]], axis=2)  # [k,n,2,2]
            fade = np.linspace(0.1, 0.7, max(t - lo, 1))[: t - lo]  # older = fainter
            trail.set_segments(seg.reshape(-1, 2, 2))
            trail.set_alpha(None)
            rgba = np.tile(_rgba(team_color(ep.teams[k], k)), (seg.shape[0] * seg.shape[1], 1))
            rgba[:, 3] = np.repeat(fade, seg.shape[1])
            trail.set_color(rgba)
        gone = self.captured_at[: t + 1].any(axis=0)  # [N]
        where = ep.pos[self.captured_at[: t + 1].argmax(axis=0), np.arange(len(gone))][gone]
        self.crosses.set_data(where[:, 0], where[:, 1])
        total = int(ep.touches[:t].sum())
        now = int(ep.touches[t - 1]) if t > 0 else 0
        lines = [f"step {t:>3}/{ep.steps}", f"touches: {now} now, {total} so far"]
        if (~ep.alive).any():
            prey = team != 0
            lines.append(f"prey left: {int(alive[prey].sum())}/{int(prey.sum())}")
        self.text.set_text("   ".join(lines))
        self.canvas.restore_region(self.background)
        for a in self.dynamic:
            self.ax.draw_artist(a)
        return np.asarray(self.canvas.buffer_rgba())[:, :, :3].copy()  # [H, W, 3]


def _rgba(color: str) -> np.ndarray:
    from matplotlib.colors import to_rgba

    return np.array(to_rgba(color))


def render_frames(ep: Episode, title: str) -> list[np.ndarray]:
    r = EpisodeRenderer(ep, title)
    return [r.frame(t) for t in range(ep.steps + 1)]


def write_video(frames: list[np.ndarray], out: Path, fps: float) -> None:
    import imageio.v2 as iio2
    from PIL import Image

    if out.suffix.lower() == ".gif":  # fast octree palette: ~6x quicker than the default
        ims = [Image.fromarray(f).quantize(255, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
               for f in frames]  # fmt: skip
        ims[0].save(out, format="GIF", save_all=True, append_images=ims[1:],
                    duration=1000.0 / fps, loop=0)  # fmt: skip
        return
    with iio2.get_writer(out, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                         macro_block_size=16) as w:  # fmt: skip
        for f in frames:
            w.append_data(f)


def animate(
    run_path: str | Path,
    env_index: int,
    episode: int | str = "latest",
    source: str | None = None,
    out: str | Path | None = None,
    fps: float = 10.0,
) -> AnimationResult:
    run = RunDir(run_path).require()
    ref = select_episode(run, env_index, episode, source)
    tag = "" if ref.source == "train" else f"_{ref.source}"
    out = Path(out) if out else run.path / "plots" / f"env{env_index}{tag}_ep{ref.episode}.gif"
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out must end in {' or '.join(FORMATS)}, got {out.name!r}")
    if not fps > 0:
        raise ValueError(f"--fps must be positive, got {fps}")
    ep = read_episode(ref)
    when = f", after {ep.meta['env_steps']:,} env steps" if "env_steps" in ep.meta else ""
    world = [ep.meta.get("scenario"), ep.meta.get("preset")]
    teams = " v ".join(f"{n} {t}" for t, n in zip(ep.teams, ep.team_sizes, strict=True))
    title = (
        f"{run.path.resolve().name}: env {env_index}, {ref.source} episode {ref.episode}{when}\n"
        f"{' '.join(w for w in world if w)}: {teams}"
    )
    frames = render_frames(ep, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(frames, out, fps)
    return AnimationResult(out, len(frames), ref)
