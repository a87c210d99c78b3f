"""A population's panels for `predprey plot`: each member's curves (`member/K/...` keys) of
the evaluations, returns and touches, one line per member, with the population's events
(rows with a string `event`: sync, selection, mutation, a curriculum's stage change) drawn
as vertical lines; a curriculum's fitness of each member at the next size (`stage/...`, one
point per stage change) is a panel of its own."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

MEMBER_KEY = re.compile(r"^member/(\d+)/(.+)$")
SUBJECTS = re.compile(r"^(eval/.+|return/.+|touches_per_episode|stage/.+)$")  # member curves drawn
MEMBER_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
EVENT_STYLE = {
    "sync": ("#2ca02c", "-."),
    "selection": ("#444444", ":"),
    "mutation": ("#ff7f0e", ":"),
    "stage": ("#000000", "--"),
}


def member_subjects(keys: set[str], rows: list[dict[str, Any]] = ()) -> list[str]:
    """The member metrics to draw, one panel each: `eval/pred_touches_v_evader`, ...; and
    the hyperparameters (`hp/actor_lr`) whose value differs between members or over time."""
    values: dict[str, set] = {}
    for r in rows:
        for k, v in r.items():
            if (m := MEMBER_KEY.match(k)) and m.group(2).startswith("hp/"):
                values.setdefault(m.group(2), set()).add(v)
    found = {m.group(2) for k in keys if (m := MEMBER_KEY.match(k))}
    varied = sorted(h for h, vs in values.items() if len(vs) > 1)
    return sorted(s for s in found if SUBJECTS.match(s)) + varied


def member_series(rows: list[dict[str, Any]], subject: str, xkey: str) -> dict[int, np.ndarray]:
    """member -> [n, 2] (x, value) of `member/K/<subject>`."""
    out: dict[int, list] = {}
    for r in rows:
        for k, v in r.items():
            m = MEMBER_KEY.match(k)
            if m and m.group(2) == subject and isinstance(v, int | float):
                out.setdefault(int(m.group(1)), []).append((r[xkey], v))
    return {k: np.array(v, float) for k, v in sorted(out.items())}


def events(rows: list[dict[str, Any]], xkey: str) -> list[tuple[float, str]]:
    """(x, kind) of the events that change members (not the first draws, `init`)."""
    return [(r[xkey], r["event"]) for r in rows if r.get("event") in EVENT_STYLE]


def draw_member_panel(ax, runs, subject: str, xkey: str, scale: float, label_of) -> None:
    """Members' curves of `subject` for each run in `runs` (RunMetrics), events marked."""
    for run in runs:
        prefix = f"{run.name}: " if len(runs) > 1 else ""
        for k, pts in member_series(run.rows, subject, xkey).items():
            ax.plot(pts[:, 0] / scale, pts[:, 1], color=MEMBER_COLORS[k % len(MEMBER_COLORS)],
                    lw=1.5, marker="o" if len(pts) < 4 else None, ms=3,
                    label=f"{prefix}member {k}")  # fmt: skip
        seen = set()
        for x, kind in events(run.rows, xkey):
            color, ls = EVENT_STYLE[kind]
            ax.axvline(x / scale, color=color, ls=ls, lw=0.8, alpha=0.6,
                       label=None if kind in seen else kind)  # fmt: skip
            seen.add(kind)
    label = label_of(subject)
    if subject.startswith("return/"):
        label = f"training return: {label}"
    elif subject == "touches_per_episode":
        label = "training touches per episode"
    elif subject.startswith("stage/"):
        label = f"{subject[6:]} at the next size (stage change)"
    elif subject.startswith("hp/"):
        label = f"hyperparameter: {subject[3:]}"
        if subject.endswith("_lr"):
            ax.set_yscale("log")
    ax.set_title(f"Members: {label}")
    ax.set_ylabel(label)
