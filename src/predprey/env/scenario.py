"""What a scenario provides to the vector env: bodies, reset, observe, reward."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from predprey.env.state import State


def check_params(params, *, choices=None, ints=None, positive=(), nonnegative=(), flags=(),
                 only_for=None, settings=None) -> None:  # fmt: skip
    """Raise one ValueError naming the first bad field of a scenario's params dataclass; a
    field left at None (the default) passes every check. choices: name -> (what it is,
    allowed values); ints: name -> minimum; positive: positive finite numbers; nonnegative:
    finite numbers >= 0; flags: true or false; only_for: name -> (setting, value), the field
    may be set only where settings[setting] == value."""
    for name, (what, allowed) in (choices or {}).items():
        v = getattr(params, name)
        if v is not None and v not in allowed:
            raise ValueError(f"{name}: unknown {what} {v!r}; choose one of {allowed}")
    for name, low in (ints or {}).items():
        v = getattr(params, name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    for names, zero_ok, what in ((positive, False, "a positive number"),
                                 (nonnegative, True, "a number >= 0")):  # fmt: skip
        for name in names:
            v = getattr(params, name)
            if v is not None and (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not (v >= 0 if zero_ok else v > 0)
                or not v < math.inf  # NaN fails the line above
            ):
                raise ValueError(f"{name} must be {what}, got {v!r}")
    for name in flags:
        v = getattr(params, name)
        if v is not None and not isinstance(v, bool):
            raise ValueError(f"{name} must be true or false, got {v!r}")
    for name, (setting, value) in (only_for or {}).items():
        have = settings[setting]
        if getattr(params, name) is not None and have != value:
            raise ValueError(f"{name} applies only to {setting} {value!r}, not {have!r}")


class Outcome(NamedTuple):
    rewards: dict[str, np.ndarray]  # team -> [E, n_team] float32
    touches: np.ndarray  # [E] int64, touching predator-prey pairs this step
    terminated: np.ndarray  # [E] bool, episode ended by the task (not the time limit)
    metrics: dict[str, np.ndarray] | None = None  # name -> [E] per-step task measures


@dataclass
class Bodies:
    """Per-agent and per-landmark constants plus world physics constants."""

    size: np.ndarray  # [N] radius
    accel: np.ndarray  # [N] force per unit action
    max_speed: np.ndarray  # [N]
    landmark_size: np.ndarray  # [L]
    dt: float = 0.1
    damping: float = 0.25
    contact_force: float = 100.0
    contact_margin: float = 1e-3
    box: float = 0.0  # > 0: walled box [0, box]^2
    arena: tuple[float, float, float, float] = field(default=(-1.0, 1.0, -1.0, 1.0))
    landmarks_collide: bool = True  # False: landmarks are targets agents pass through


class Scenario:
    """Base class; subclasses set the attributes below in __init__ and implement the methods."""

    name: str
    params: object
    teams: tuple[str, ...]
    team_sizes: dict[str, int]
    obs_dims: dict[str, int]
    # team -> its `local` observation's entity slots (`observe.local_layout`); empty: none
    obs_layouts: dict[str, tuple] = {}
    bodies: Bodies
    num_landmarks: int
    episode_length: int

    @property
    def num_agents(self) -> int:
        return sum(self.team_sizes.values())

    def team_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for team in self.teams:
            out[team] = slice(start, start + self.team_sizes[team])
            start += self.team_sizes[team]
        return out

    def reset(self, state: State, idx: np.ndarray, rng: np.random.Generator) -> None:
        """Draw fresh initial positions for environments `idx` (int array) in place."""
        raise NotImplementedError

    def observe(self, state: State) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def outcome(self, state: State) -> Outcome:
        raise NotImplementedError
