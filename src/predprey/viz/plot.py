"""Training curves of one or more runs in one PNG, read from `metrics.jsonl` only.

Panels appear for the metric families a run actually logged (see `PANELS`); each
series is drawn raw (faint) with a moving average on top. Several runs share the
panels: colour tells the run, line style the series. A population run adds panels of
its members' evaluations, returns, touches and varied hyperparameters, with its events
marked (`plot_members`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from predprey.rundir import RunDir, RunDirError
from predprey.viz.plot_members import draw_member_panel, member_subjects


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    pattern: str  # regex over metric keys (also used by the browser viewer)
    log: bool = False  # log y-axis; values <= 0 (e.g. 0 updates/s in warmup) left out


PANELS = (
    Panel("Critic loss", "mean squared TD error", r"^loss/critic/"),
    Panel("Actor loss", "-Q(o, a=π(o)) + actor_reg·pre², mean", r"^loss/actor/"),
    Panel("Episode return", "return per agent", r"^(eval/)?return/"),
    Panel("Q value", "mean Q(o, a) of replayed batches", r"^q/"),
    Panel(
        "Touches per episode",
        "predator-prey touches / episode",
        r"^(eval/.*touches.*|(train/)?touches_per_episode)$",
    ),
    Panel("Throughput", "per second (log scale)", r"^perf/", log=True),
)
X_KEYS = {"steps": "env_steps", "time": "time"}
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
SERIES_COLORS = ("#d7301f", "#2b8cbe", "#4daf4a", "#984ea3", "#ff7f00", "#a65628")
LINESTYLES = ("-", "--", ":", "-.")


@dataclass(frozen=True)
class RunMetrics:
    name: str
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Series:
    key: str
    x: np.ndarray  # [n] float
    y: np.ndarray  # [n] float


def series_label(key: str) -> str:
    """`loss/critic/predator` -> `predator`; `eval/a_v_b` -> `eval: a v b`."""
    if key in ("touches_per_episode", "train/touches_per_episode"):
        return "training episodes"
    head, _, tail = key.partition("/")
    if head == "loss" or key.startswith("eval/return/"):
        tail = tail.partition("/")[2] or tail
    label = tail.replace("_per_s", "/s").replace("_", " ")
    return f"eval: {label}" if head == "eval" else label


def drop_superseded(rows: list[dict[str, Any]], xkey: str) -> list[dict[str, Any]]:
    """After a resume the log goes back to the checkpoint's step; rows logged past that
    point before the crash are superseded and dropped, so every curve runs forward."""
    out: list[dict[str, Any]] = []
    for row in rows:
        x = row.get(xkey)
        if not isinstance(x, int | float):
            continue
        while out and out[-1][xkey] > x:  # equal x: e.g. an eval row after a train row
            out.pop()
        out.append(row)
    return out


def extract(rows: list[dict[str, Any]], key: str, xkey: str) -> Series:
    pts = [
        (r[xkey], r[key])
        for r in rows
        if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)
    ]
    a = np.array(pts, float).reshape(-1, 2)
    return Series(key, a[:, 0], a[:, 1])


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` points (fewer at the start). [n] -> [n]"""
    if window <= 1 or len(y) < 2:
        return y
    c = np.concatenate([[0.0], np.cumsum(y)])
    hi = np.arange(1, len(y) + 1)
    lo = np.maximum(hi - window, 0)
    return (c[hi] - c[lo]) / (hi - lo)


def auto_window(n: int) -> int:
    return int(min(50, max(1, n // 20)))


def load_runs(paths: list[str | Path]) -> list[RunMetrics]:
    """Metrics of each run; runs without any metrics line yet are an error."""
    runs = []
    for p in paths:
        run = RunDir(p).require()
        rows = run.read_metrics()
        if not rows:
            raise RunDirError(f"no metrics yet in {run.metrics_path} (has training logged?)")
        runs.append(RunMetrics(_run_name(run.path, paths), rows))
    return runs


def _run_name(path: Path, all_paths: list[str | Path]) -> str:
    names = [Path(p).resolve().name for p in all_paths]
    name = path.resolve().name
    return name if names.count(name) == 1 else f"{path.resolve().parent.name}/{name}"


def panels_for(keys: set[str]) -> list[tuple[Panel, list[str]]]:
    out = []
    for panel in PANELS:
        mine = sorted(k for k in keys if re.search(panel.pattern, k))
        if mine:
            out.append((panel, mine))
    return out


def plot_metrics(runs: list[RunMetrics], x: str = "steps", smooth: int | None = None):
    """One matplotlib Figure with a panel per metric family present in any run."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    if x not in X_KEYS:
        raise ValueError(f"x must be one of {sorted(X_KEYS)}, got {x!r}")
    xkey = X_KEYS[x]
    cleaned = [RunMetrics(r.name, drop_superseded(r.rows, xkey)) for r in runs]
    keys = {k for r in cleaned for row in r.rows for k in row}
    panels = panels_for(keys)
    rows = [row for r in cleaned for row in r.rows]
    subjects = member_subjects(keys, rows)  # a population's member curves: panels of their own
    if not panels:
        raise RunDirError(
            f"nothing to plot: the metrics have no loss/, return/, touches or perf/ keys "
            f"(found: {sorted(keys - {'env_steps', 'updates', 'time'})[:12]})"
        )
    tmax = max((row.get("time") or 0) for r in cleaned for row in r.rows)
    t_unit, t_div = ("h", 3600.0) if tmax > 7200 else ("min", 60.0) if tmax > 180 else ("s", 1.0)
    scale = t_div if x == "time" else 1.0
    xlabel = f"wall-clock time ({t_unit})" if x == "time" else "environment steps"

    n_panels = len(panels) + len(subjects)
    ncols = 2 if n_panels > 1 else 1
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(6.4 * ncols, 3.6 * nrows + 0.8), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    windows = set()
    for ax, (panel, keys_here) in zip(axes, panels, strict=False):
        for ri, run in enumerate(cleaned):
            for si, key in enumerate(keys_here):
                s = extract(run.rows, key, xkey)
                if panel.log:
                    keep = s.y > 0
                    s = Series(key, s.x[keep], s.y[keep])
                if not len(s.x):
                    continue
                w = smooth if smooth is not None else auto_window(len(s.y))
                windows.add(w)
                if len(cleaned) == 1:
                    color, ls, label = (
                        SERIES_COLORS[si % len(SERIES_COLORS)],
                        "-",
                        series_label(key),
                    )
                else:
                    color = RUN_COLORS[ri % len(RUN_COLORS)]
                    ls = LINESTYLES[si % len(LINESTYLES)]
                    label = f"{run.name}: {series_label(key)}"
                xs = s.x / scale
                if w > 1:
                    ax.plot(xs, s.y, color=color, ls=ls, alpha=0.25, lw=0.8)
                mark = "o" if len(xs) < 4 else None  # a lone point draws no line
                ax.plot(xs, moving_average(s.y, w), color=color, ls=ls, lw=1.8, marker=mark,
                        ms=4, label=label)  # fmt: skip
        if panel.log and ax.get_lines():
            ax.set_yscale("log")
        ax.set_title(panel.title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel)
        if x == "steps":
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    for ax, subject in zip(axes[len(panels) :], subjects, strict=False):
        draw_member_panel(ax, cleaned, subject, xkey, scale, series_label)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    xs = [row[xkey] / scale for r in cleaned for row in r.rows]
    pad = 0.02 * (max(xs) - min(xs)) or 1.0
    for ax in axes[:n_panels]:  # one x range for all panels, to compare them by eye
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    smooth_txt = (
        "no smoothing"
        if windows <= {1}
        else f"bold: moving average over {_fmt_windows(windows)} logged points, faint: raw"
    )
    fig.suptitle(f"predprey training metrics: {', '.join(r.name for r in runs)}\n{smooth_txt}")
    return fig


def _fmt_windows(ws: set[int]) -> str:
    ws = sorted(ws - {1}) or [1]
    return str(ws[0]) if len(ws) == 1 else f"{ws[0]}-{ws[-1]}"


@dataclass(frozen=True)
class PlotResult:
    path: Path
    panels: list[str]


def write_plot(
    paths: list[str | Path],
    out: str | Path | None = None,
    x: str = "steps",
    smooth: int | None = None,
) -> PlotResult:
    """Plot runs to a PNG (default `RUN/plots/metrics.png` of the first run)."""
    runs = load_runs(paths)
    fig = plot_metrics(runs, x=x, smooth=smooth)
    out = Path(out) if out else RunDir(paths[0]).path / "plots" / "metrics.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return PlotResult(out, [ax.get_title() for ax in fig.axes if ax.get_visible()])
