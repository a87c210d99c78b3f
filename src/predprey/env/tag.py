"""Predator-prey tag. Preset `mpe` is PettingZoo/mpe2 `simple_tag` exactly; preset `seed` is
the original service's walled 250 x 250 world (see `predprey.env.seed`).

Agents are ordered predators first, then prey. mpe2's continuous action (5 values)
corresponds to our force `(a[2] - a[1], a[4] - a[3])`, scaled by the agent's acceleration.
Observation modes: `mpe` (simple_tag's), `local` and `rays` (see `predprey.env.observe`);
`mpe` and `local` see the seed world in box half-widths centred on the box.

`density` (preset mpe; predators and prey per unit area) makes the world grow with the
number of agents N as spread's does: a walled square arena [0, 2h]^2 with h = 0.5 *
sqrt(N / density) (density 1 at 3 v 1 is simple_tag's 2 x 2 square), agents placed over all
of it and obstacles over its inner 90%, as in mpe. The prey's boundary penalty applies at
the same distance from the walls in world units (0.1) as in mpe. Add obstacles with
`num_obstacles` to keep them at the same density.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from predprey.env import seed
from predprey.env.observe import local_dim, local_layout, local_observe, ray_observe
from predprey.env.physics import touching_pairs
from predprey.env.scenario import Bodies, Outcome, Scenario, check_params
from predprey.env.spread import arena_half_width
from predprey.env.state import State
from predprey.env.tag_mpe import fused_mpe_step, mpe_observe, mpe_rewards

PRESETS = ("mpe", "seed")
CREDITS = ("shared", "own")
OBS_MODES = ("mpe", "local", "rays")


@dataclass(frozen=True)
class TagParams:
    """None = the preset's default (see PRESET_DEFAULTS)."""

    preset: str = "mpe"  # mpe: simple_tag's world; seed: the original service's walled box
    obs: str | None = None  # observation: mpe | local | rays (mpe: "mpe", seed: "rays")
    num_predators: int | None = None  # agents of team predator
    num_prey: int | None = None  # agents of team prey
    num_obstacles: int | None = None  # fixed round obstacles (landmarks)
    episode_length: int | None = None  # steps per episode before the time limit
    predator_size: float | None = None  # radii, world units
    prey_size: float | None = None  # radius of a prey, world units
    obstacle_size: float | None = None  # radius of an obstacle, world units
    # preset seed only
    arena_size: float | None = None  # side of the walled box
    capture_radius: float | None = None  # predator-prey centre distance that captures
    remove_caught: bool | None = None  # caught prey leave; the episode ends when none remain
    # obs rays only
    num_rays: int | None = None
    view_distance: float | None = None  # seed default: arena_size
    # obs local only: k_predators and k_prey are one number for every observer or a pair
    # [in predators' obs, in prey's obs]
    k_predators: int | tuple[int, ...] | None = None  # obs local: nearest predators seen
    k_prey: int | tuple[int, ...] | None = None  # obs local: nearest prey seen
    k_landmarks: int | None = None  # obs local: nearest obstacles seen
    # obs local only: false leaves the own-position feature at 0 (purely egocentric)
    own_position: bool | None = None
    density: float | None = None  # preset mpe: agents per unit area, the arena grows with N
    # preset mpe: shared = every predator +10 per touch by any (mpe2); own = per prey it touches
    predator_credit: str | None = None
    # true: mpe2's discrete action space, Discrete(5) per agent (no-op, left, right, down, up:
    # a full force along one axis); actions are scores [5] whose argmax is the move
    discrete_actions: bool | None = None

    def __post_init__(self):
        for name in ("k_predators", "k_prey"):
            v = getattr(self, name)
            if isinstance(v, tuple | list):
                if len(v) != 2 or not all(isinstance(k, int) and k >= 0 for k in v):
                    raise ValueError(f"{name} must be an integer >= 0 or a pair of them "
                                     f"[predators', prey's], got {list(v)!r}")  # fmt: skip
                object.__setattr__(self, name, tuple(v))
        check_params(self, choices=dict(preset=("preset", PRESETS)))  # resolved() needs it
        ints = {n: low for n, low in INT_MINIMUMS.items()
                if not isinstance(getattr(self, n), tuple)}  # pairs: checked above  # fmt: skip
        check_params(
            self,
            choices=dict(
                obs=("observation mode", OBS_MODES), predator_credit=("credit", CREDITS)
            ),  # fmt: skip
            ints=ints,
            positive=POSITIVE,
            flags=("remove_caught", "own_position", "discrete_actions"),
            only_for=ONLY_FOR,
            settings=dict(preset=self.preset, obs=self.resolved()["obs"]),
        )

    def resolved(self) -> dict:
        """The preset's defaults overridden by whatever the user set."""
        out = dict(PRESET_DEFAULTS[self.preset])
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is not None:
                out[f.name] = getattr(self, f.name)
        if out.get("view_distance") is None:
            out["view_distance"] = out["arena_size"]
        return out


INT_MINIMUMS = dict(num_predators=1, num_prey=1, num_obstacles=0, episode_length=1, num_rays=3,
                    k_predators=0, k_prey=0, k_landmarks=0)  # fmt: skip
POSITIVE = ("predator_size", "prey_size", "obstacle_size", "arena_size", "capture_radius",
            "view_distance", "density")  # fmt: skip
ONLY_FOR = dict(arena_size=("preset", "seed"), capture_radius=("preset", "seed"),
                remove_caught=("preset", "seed"), num_rays=("obs", "rays"),
                view_distance=("obs", "rays"), k_predators=("obs", "local"),
                k_prey=("obs", "local"), k_landmarks=("obs", "local"),
                own_position=("obs", "local"),
                density=("preset", "mpe"), predator_credit=("preset", "mpe"))  # fmt: skip
OBS_DEFAULTS = dict(num_rays=30, k_predators=3, k_prey=3, k_landmarks=2, own_position=True)
# fmt: off
PRESET_DEFAULTS = {
    "mpe": dict(obs="mpe", num_predators=3, num_prey=1, num_obstacles=2, episode_length=25,
                predator_size=0.075, prey_size=0.05, obstacle_size=0.2, view_distance=2.0,
                density=None, predator_credit="shared", **OBS_DEFAULTS),
    "seed": dict(obs="rays", num_predators=5, num_prey=5, num_obstacles=0, episode_length=200,
                 predator_size=seed.PREDATOR["size"], prey_size=seed.PREY["size"],
                 obstacle_size=seed.OBSTACLE_SIZE, arena_size=seed.ARENA_SIZE,
                 capture_radius=10.0, remove_caught=False, view_distance=None,
                 **OBS_DEFAULTS),
}
# fmt: on


class Tag(Scenario):
    name = "tag"
    teams = ("predator", "prey")

    def __init__(self, params: TagParams):
        self.params = params
        r = params.resolved()
        self.preset, self.obs_mode = params.preset, r["obs"]
        self.n_pred, self.n_prey = r["num_predators"], r["num_prey"]
        self.num_landmarks = r["num_obstacles"]
        self.episode_length = r["episode_length"]
        self.team_sizes = {"predator": self.n_pred, "prey": self.n_prey}
        self.num_rays, self.view_distance = r["num_rays"], r["view_distance"]
        pair = [k if isinstance(k, tuple) else (k, k) for k in (r["k_predators"], r["k_prey"])]
        self.k_team = np.array(pair, np.int64).T  # [observer team, seen team]
        self.k_landmarks = r["k_landmarks"]
        self.own_position = r["own_position"]
        self.density = r.get("density")  # preset mpe only
        self.own_credit = r.get("predator_credit") == "own"
        if self.preset == "seed":
            self.capture_radius, self.remove_caught = r["capture_radius"], r["remove_caught"]
            self.bodies = seed.bodies(self.n_pred, self.n_prey, self.num_landmarks,
                                      r["arena_size"], r)  # fmt: skip
        else:
            pred = np.arange(self.n_pred + self.n_prey) < self.n_pred
            self.half = h = arena_half_width(self.n_pred + self.n_prey, self.density)
            walled = self.density is not None
            self.bodies = Bodies(
                size=np.where(pred, r["predator_size"], r["prey_size"]),
                accel=np.where(pred, 3.0, 4.0),
                max_speed=np.where(pred, 1.0, 1.3),
                landmark_size=np.full(self.num_landmarks, r["obstacle_size"]),
                box=2 * h if walled else 0.0,
                arena=(0.0, 2 * h, 0.0, 2 * h) if walled else (-1.0, 1.0, -1.0, 1.0),
            )
        n, L = self.n_pred + self.n_prey, self.num_landmarks
        if self.obs_mode == "mpe":
            base = 4 + 2 * L + 2 * (n - 1)
            self.obs_dims = {"predator": base + 2 * self.n_prey,
                             "prey": base + 2 * (self.n_prey - 1)}  # fmt: skip
        else:
            self.obs_dims = {
                team: self.num_rays if self.obs_mode == "rays"
                else local_dim(self.k_team[u], self.k_landmarks)
                for u, team in enumerate(self.teams)
            }  # fmt: skip
            if self.obs_mode == "local":
                self.obs_layouts = {
                    team: local_layout(self.teams, self.k_team[u], self.k_landmarks)
                    for u, team in enumerate(self.teams)
                }

    @property
    def capture_ends_episode(self) -> bool:
        """Preset seed: a capture (with remove_caught, the last one) ends the episode, so
        the steps it takes rate the teams better than the touches do."""
        return self.preset == "seed"

    @property
    def fused_step(self):
        """The one-kernel step of preset mpe with mpe observations (`tag_mpe.fused_mpe_step`);
        None for the others, which take VecEnv's generic path."""
        if self.preset == "mpe" and self.obs_mode == "mpe" and self.density is None:
            return fused_mpe_step(self)
        return None

    def reset(self, state: State, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        if self.preset == "seed":
            pos, lm = seed.reset(k, self.n_pred, self.num_landmarks, self.bodies,
                                 self.capture_radius, rng)  # fmt: skip
            state.pos[idx], state.landmark_pos[idx] = pos, lm
            return
        c, h = (0.0, 1.0) if self.density is None else (self.half, self.half)
        state.pos[idx] = c + rng.uniform(-h, h, size=(k, self.num_agents, 2))
        lm = rng.uniform(-0.9 * h, 0.9 * h, size=(k, self.num_landmarks, 2))
        state.landmark_pos[idx] = c + lm

    def _unit_state(self, state: State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pos, vel, landmark_pos in units of the arena's half-width, centred on the arena
        (the identity for preset mpe, whose arena is [-1, 1]^2)."""
        x0, x1, y0, y1 = self.bodies.arena
        if (x0, x1, y0, y1) == (-1.0, 1.0, -1.0, 1.0):
            return state.pos, state.vel, state.landmark_pos
        centre, half = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), (x1 - x0) / 2
        return (state.pos - centre) / half, state.vel / half, (state.landmark_pos - centre) / half

    def _centre(self) -> np.ndarray:
        x0, x1, y0, y1 = self.bodies.arena
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2])

    def observe(self, state: State) -> dict[str, np.ndarray]:
        E, N = state.pos.shape[:2]
        if self.obs_mode == "mpe":
            pos, vel, lm = self._unit_state(state)
            pred = np.empty((E, self.n_pred, self.obs_dims["predator"]), np.float32)
            prey = np.empty((E, self.n_prey, self.obs_dims["prey"]), np.float32)
            mpe_observe(pos, vel, lm, self.n_pred, pred, prey)
            return {"predator": pred, "prey": prey}
        out = np.empty((E, N, max(self.obs_dims.values())), np.float32)  # [E, N, D]
        if self.obs_mode == "rays":
            ray_observe(state.pos, state.alive, self.n_pred, self.num_rays, self.view_distance,
                        out)  # fmt: skip
        else:
            starts = np.array([0, self.n_pred, N], np.int64)
            if self.preset == "seed":  # everything in box half-widths from the centre
                (pos, vel, lm), centre, inv_half = self._unit_state(state), np.zeros(2), 1.0
            else:  # world units; own position in half-widths from the centre
                pos, vel, lm = state.pos, state.vel, state.landmark_pos
                centre, inv_half = self._centre(), 1.0 / self.half
            if not self.own_position:
                inv_half = 0.0
            local_observe(pos, vel, lm, state.alive, starts, self.k_team, self.k_landmarks,
                          centre, inv_half, False, False, out)  # fmt: skip
        d_pred, d_prey = self.obs_dims["predator"], self.obs_dims["prey"]
        return {"predator": out[:, : self.n_pred, :d_pred], "prey": out[:, self.n_pred :, :d_prey]}

    def outcome(self, state: State) -> Outcome:
        if self.preset == "seed":
            pred_r, prey_r, touches, terminated = seed.seed_outcome(
                state.pos, state.alive, self.n_pred, self.capture_radius, self.bodies.box,
                self.remove_caught,
            )  # fmt: skip
            return Outcome({"predator": pred_r, "prey": prey_r}, touches, terminated)
        touches, per_agent = touching_pairs(state.pos, state.alive, self.bodies.size, self.n_pred)
        bound_pos = state.pos
        if self.density is not None:  # the penalty band at the same distance from the walls
            bound_pos = np.maximum(np.abs(state.pos - self._centre()) - (self.half - 1.0), 0.0)
        pred_r, prey_r = mpe_rewards(bound_pos, per_agent, touches, self.n_pred, self.own_credit)
        terminated = np.zeros(state.pos.shape[0], dtype=bool)
        return Outcome({"predator": pred_r, "prey": prey_r}, touches, terminated)
